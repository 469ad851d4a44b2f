import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import type { SqliteDatabaseError } from '../../../src/adapters/sqlite/index.js';
import {
  SCHEMA_VERSION,
  SqliteBusyError,
  SqliteCannotOpenError,
  SqliteForeignDatabaseError,
  SqliteNotADatabaseError,
  SqliteSchemaVersionError,
  SqliteTransport,
  sqliteStores,
} from '../../../src/adapters/sqlite/index.js';
import { msg, tempDir, until } from './helpers.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = tempDir('herald-sqlite-bad-');
after(() => tmp.cleanup());

/** Asserts `fn` throws an error of `type` that names `file` and says what to do. */
function assertFileError(
  fn: () => unknown,
  type: new (...args: never[]) => SqliteDatabaseError,
  file: string,
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal(err.path, file);
    assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
    return true;
  });
}

describe('SQLite bad input', () => {
  test('a text file is rejected as not a database, and left untouched', () => {
    const file = tmp.file('notes.txt');
    writeFileSync(file, 'these are my notes, not a database\n'.repeat(20));
    assertFileError(() => new SqliteTransport({ path: file }), SqliteNotADatabaseError, file);
    assertFileError(() => sqliteStores({ path: file }), SqliteNotADatabaseError, file);
    assert.equal(readFileSync(file, 'utf8'), 'these are my notes, not a database\n'.repeat(20));
  });

  test('a Herald file with a corrupt header is rejected as not a database', async () => {
    const file = tmp.file('corrupt.db');
    const t = new SqliteTransport({ path: file });
    await t.publish('x', [msg('1')]);
    await t.close();
    const bytes = readFileSync(file);
    bytes.write('garbage garbage!', 0); // the 16-byte "SQLite format 3" magic
    writeFileSync(file, bytes);
    assertFileError(() => new SqliteTransport({ path: file }), SqliteNotADatabaseError, file);
  });

  test('an SQLite database of some other application is refused and not modified', () => {
    const file = tmp.file('other-app.db');
    const other = new Database(file);
    other.exec(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('Ada')",
    );
    other.close();
    assertFileError(() => new SqliteTransport({ path: file }), SqliteForeignDatabaseError, file);
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('journal_mode', { simple: true }), 'delete', 'journal mode unchanged');
    assert.deepEqual(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all(), [
      { name: 'customers' },
    ]);
    check.close();
  });

  test('a file written by a newer schema version is refused with both versions named', async () => {
    const file = tmp.file('future.db');
    await new SqliteTransport({ path: file }).close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(
      () => new SqliteTransport({ path: file }),
      (err: unknown) =>
        err instanceof SqliteSchemaVersionError &&
        err.found === SCHEMA_VERSION + 1 &&
        err.supported === SCHEMA_VERSION &&
        /upgrade herald/.test(err.message),
    );
  });

  test('app tables added to a Herald file later are fine', async () => {
    const file = tmp.file('shared.db');
    await new SqliteTransport({ path: file }).close();
    const raw = new Database(file);
    raw.exec('CREATE TABLE my_app_table (id INTEGER PRIMARY KEY)');
    raw.close();
    const t = new SqliteTransport({ path: file });
    await t.publish('x', [msg('1')]);
    await t.close();
  });

  test('a missing directory gives SqliteCannotOpenError', () => {
    const file = path.join(tmp.dir, 'no-such-dir', 'events.db');
    assertFileError(() => new SqliteTransport({ path: file }), SqliteCannotOpenError, file);
  });

  /** Opens `file` in a child process without root's power to ignore permissions. */
  async function openUnprivileged(
    file: string,
  ): Promise<{ ok: boolean; name?: string; code?: string; path?: string; message?: string }> {
    const asRoot = process.getuid?.() === 0;
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'fixtures', 'open-database.ts'), file],
      {
        cwd: path.join(here, '..', '..', '..'),
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      },
    );
    return JSON.parse(stdout) as { ok: boolean };
  }

  test('a read-only file or directory gives SqliteReadOnlyError naming the file', async () => {
    const dir = path.join(tmp.dir, 'ro');
    mkdirSync(dir);
    chmodSync(tmp.dir, 0o755); // let the unprivileged child reach it
    const existing = path.join(dir, 'existing.db');
    await new SqliteTransport({ path: existing }).close();
    chmodSync(existing, 0o444);
    chmodSync(dir, 0o555);
    try {
      for (const file of [existing, path.join(dir, 'new.db')]) {
        const result = await openUnprivileged(file);
        assert.equal(result.ok, false, `${file} must not open for writing`);
        assert.equal(result.name, 'SqliteReadOnlyError');
        assert.equal(result.code, 'HERALD_SQLITE_READ_ONLY');
        assert.equal(result.path, file);
        assert.match(result.message!, /write access/);
      }
    } finally {
      chmodSync(dir, 0o755);
      chmodSync(existing, 0o644);
    }
    // Control: once the directory is writable for the child, the same open succeeds.
    chmodSync(dir, 0o777);
    try {
      assert.deepEqual(await openUnprivileged(path.join(dir, 'new.db')), { ok: true });
    } finally {
      chmodSync(dir, 0o755);
    }
  });

  test('a file locked by another connection past busyTimeoutMs gives SqliteBusyError; polling survives it', async () => {
    const file = tmp.file('locked.db');
    const t = new SqliteTransport({ path: file, busyTimeoutMs: 100, pollIntervalMs: 10, onError: () => {} });
    const got: string[] = [];
    await t.subscribe('x', { group: 'g', prefetch: 4 }, async (d) => {
      got.push(d.message.id);
      await d.ack();
    });
    const locker = new Database(file);
    locker.exec('BEGIN EXCLUSIVE');
    try {
      await assert.rejects(t.publish('x', [msg('1')]), (err: unknown) => {
        assert.ok(err instanceof SqliteBusyError, String(err));
        assert.equal(err.path, file);
        assert.equal(err.busyTimeoutMs, 100);
        assert.match(err.message, /busyTimeoutMs/);
        return true;
      });
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    await t.publish('x', [msg('2')]);
    await until(() => got.length === 1);
    assert.deepEqual(got, ['2']);
    await t.close();
  });

  test('opening a file locked exclusively (rollback journal) past busyTimeoutMs gives SqliteBusyError', () => {
    const file = tmp.file('locked-at-open.db');
    const locker = new Database(file);
    locker.exec('CREATE TABLE IF NOT EXISTS t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
    try {
      assertFileError(() => new SqliteTransport({ path: file, busyTimeoutMs: 50 }), SqliteBusyError, file);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    assert.ok(existsSync(file));
  });
});
