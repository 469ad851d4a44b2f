import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { herald, MAIN, type CliResult as Result } from '../support/cli.js';

/**
 * What a new user meets first with the real binary: the version, read-only commands that must not
 * create or overwrite anything, one-line errors, and Ctrl-C through `npm start`.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'herald-front-door-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function oneLine(r: Result): string {
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  return lines[0]!;
}

describe('herald front door', { concurrency: 2 }, () => {
  test('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await herald(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `herald ${pkg.version}\n`);
  });

  test('a read-only command on a missing path exits 1 with one line and creates nothing', async () => {
    const target = join(dir, 'nonexistent', 'dir', 'x.db');
    const r = await herald(['dlq', 'list', '--transport', `sqlite://${target}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(oneLine(r), /no Herald database at .*does not exist/);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(join(dir, 'nonexistent')), false);
  });

  test('stats on a text file exits 1 and leaves the file as it was', async () => {
    const file = join(dir, 'README.md');
    writeFileSync(file, '# not a database\n');
    const r = await herald(['stats', '--transport', `sqlite://${file}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(oneLine(r), /is not an SQLite database/);
    assert.equal(readFileSync(file, 'utf8'), '# not a database\n');
  });

  test('an SQLite file that Herald did not create is refused, even an empty one', async () => {
    for (const [name, setup] of [
      ['empty.db', ''],
      ['app.db', 'CREATE TABLE users (id INTEGER PRIMARY KEY)'],
    ] as const) {
      const file = join(dir, name);
      const db = new Database(file);
      if (setup) db.exec(setup);
      else db.pragma('user_version = 0'); // writes the header: a valid, empty SQLite database
      db.close();
      const before = readFileSync(file);
      const r = await herald(['dlq', 'list', '--transport', `sqlite://${file}`]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(oneLine(r), /Herald did not create|is empty/);
      assert.deepEqual(readFileSync(file), before, `${name} must not be changed`);
    }
  });

  test('stats discovers the topics and groups of a database on its own', async () => {
    const file = join(dir, 'shop.db');
    const { sqlite } = await import('../../src/adapters/sqlite/index.js');
    const t = sqlite({ path: file });
    for (const [topic, group] of [
      ['orders.events', 'billing'],
      ['orders.events', 'shipping'],
      ['payments.events', 'ledger'],
    ] as const) {
      const sub = await t.subscribe(topic, { group, prefetch: 1 }, () => undefined);
      await sub.close();
    }
    await t.publish('orders.events', [{ id: 'm1', headers: {}, body: new Uint8Array() }]);
    await t.close();
    const r = await herald(['stats', '--json', '--transport', `sqlite://${file}`]);
    assert.equal(r.code, 0, r.stderr);
    const rows = (JSON.parse(r.stdout) as { groups: { topic: string; group: string; lag: number }[] }).groups;
    assert.deepEqual(
      rows.map((g) => [g.topic, g.group, g.lag]),
      [
        ['orders.events', 'billing', 1],
        ['orders.events', 'shipping', 1],
        ['payments.events', 'ledger', 0],
      ],
    );
  });

  test('an unreachable Redis exits 1 with one line naming the URL, within the connect timeout', async () => {
    const started = Date.now();
    const r = await herald(['dlq', 'list', '--transport', 'redis://127.0.0.1:6390']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(oneLine(r), /redis:\/\/127\.0\.0\.1:6390.*unreachable/);
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
  });

  test('a missing driver is one line naming the npm install command', async () => {
    // Hide better-sqlite3 from the resolver, as on a fresh `npm install herald` without it.
    const hide = join(dir, 'hide-driver.cjs');
    writeFileSync(
      hide,
      `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'better-sqlite3') {
    const err = new Error("Cannot find module 'better-sqlite3'");
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};`,
    );
    const r = await herald(['publish', 'x.y.z', '--transport', `sqlite://${join(dir, 'd.db')}`], {
      NODE_OPTIONS: `--require ${hide}`,
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(
      oneLine(r),
      'herald publish: the sqlite backend needs the package better-sqlite3, which is not installed: npm install better-sqlite3 [HERALD_DRIVER_MISSING]',
    );
  });

  test('two SIGINTs within milliseconds are one Ctrl-C: summary printed, exit 0', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'demo', '--port', '0', '--rate', '50', '--transport', 'memory://', '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await interrupt(child, () => {
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGINT'), 20); // what a runner forwarding the signal adds
    });
    assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    assert.equal((JSON.parse(run.stdout) as { lost: number }).lost, 0);
  });

  test('Ctrl-C on `npm start` (SIGINT to the process group) prints the summary', async () => {
    // Like a terminal: SIGINT goes to the whole process group; npm forwards it to the demo as well.
    const child = spawn(
      'npm',
      ['start', '--silent', '--', '--port', '0', '--rate', '50', '--transport', 'memory://', '--json'],
      { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await interrupt(child, () => process.kill(-child.pid!, 'SIGINT'));
    const summary = JSON.parse(run.stdout) as { lost: number; published: number };
    assert.equal(summary.lost, 0);
    assert.ok(summary.published > 0);
    assert.doesNotMatch(run.stderr, /exit(ed)? 130/);
  });
});

/** Waits until the demo serves, lets it run a moment, calls `signal`, and collects the result. */
async function interrupt(child: ReturnType<typeof spawn>, signal: () => void): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const serving = new Promise<void>((resolve) =>
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('serving http')) resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await Promise.race([serving, exited]);
  await new Promise((r) => setTimeout(r, 1500));
  signal();
  const code = await exited;
  return { code, stdout, stderr };
}
