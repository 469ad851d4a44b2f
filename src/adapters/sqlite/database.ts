import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { sqliteDriver } from './driver.js';
import {
  SqliteCannotOpenError,
  SqliteForeignDatabaseError,
  SqliteReadOnlyError,
  SqliteSchemaVersionError,
  translateSqliteError,
} from './errors.js';
import type { ResolvedConnectionOptions } from './options.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type Statement = Database.Statement<unknown[], unknown>;

/**
 * One open connection to a Herald database file, with a statement cache and error translation.
 * better-sqlite3 is synchronous, so a transaction here never interleaves with another one of the
 * same connection; callers keep each one short.
 */
export class SqliteDatabase {
  private readonly statements = new Map<string, Statement>();

  constructor(
    readonly db: Database.Database,
    readonly path: string,
    readonly busyTimeoutMs: number,
  ) {}

  /** A cached prepared statement. */
  statement(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` (no transaction of its own), translating driver errors into typed ones. */
  run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw translateSqliteError(err, this.path, this.busyTimeoutMs, operation);
    }
  }

  /** Runs `fn` in a write (IMMEDIATE) transaction: it takes the write lock up front, so it never deadlocks. */
  write<T>(operation: string, fn: () => T): T {
    return this.run(operation, () => this.db.transaction(fn).immediate());
  }

  /**
   * Like {@link write}, but returns {@link BUSY} at once when another connection holds the write
   * lock, instead of waiting in SQLite's busy handler. That handler sleeps (1, 2, 5, 10 ms, ...)
   * with the event loop blocked; the transport's consumer path retries on a timer instead, so the
   * process keeps running its handlers while another process commits (ADR 0205).
   */
  writeUnlessBusy<T>(operation: string, fn: () => T): T | typeof BUSY {
    return this.run(operation, () => {
      this.statement('PRAGMA busy_timeout = 0').get();
      try {
        this.statement('BEGIN IMMEDIATE').run();
      } catch (err) {
        if (isBusy(err)) return BUSY;
        throw err;
      } finally {
        this.statement(`PRAGMA busy_timeout = ${this.busyTimeoutMs}`).get();
      }
      try {
        const value = fn();
        this.statement('COMMIT').run();
        return value;
      } catch (err) {
        if (this.db.inTransaction) this.statement('ROLLBACK').run();
        throw err;
      }
    });
  }
}

/** Returned by {@link SqliteDatabase.writeUnlessBusy} when the write lock is held elsewhere. */
export const BUSY: unique symbol = Symbol('busy');

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

interface Entry {
  readonly database: SqliteDatabase;
  refs: number;
}

const open = new Map<string, Entry>();

/** A counted reference to a shared connection; `release()` closes it when the last user is done. */
export interface DatabaseHandle {
  readonly database: SqliteDatabase;
  release(): void;
}

/**
 * Opens (or shares) the connection to a file: one connection per file and settings per process,
 * shared by the transport and the stores. Creates and migrates the schema; throws a typed error
 * when the file cannot be used.
 */
export function acquireDatabase(options: ResolvedConnectionOptions): DatabaseHandle {
  const file = path.resolve(options.path);
  const id = `${file}\0${options.busyTimeoutMs}\0${options.synchronous}`;
  let entry = open.get(id);
  if (!entry) {
    entry = { database: openDatabase(file, options), refs: 0 };
    open.set(id, entry);
  }
  entry.refs++;
  const e = entry;
  let released = false;
  return {
    database: e.database,
    release() {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      open.delete(id);
      try {
        e.database.db.close();
      } catch {
        // Closing can only fail on a connection that is already unusable; nothing left to free.
      }
    },
  };
}

function openDatabase(file: string, options: ResolvedConnectionOptions): SqliteDatabase {
  const fail = (err: unknown): Error => translateSqliteError(err, file, options.busyTimeoutMs, 'opening');
  const Driver = sqliteDriver();
  checkAccess(file);
  let db: Database.Database;
  try {
    db = new Driver(file, { timeout: options.busyTimeoutMs });
  } catch (err) {
    throw fail(err);
  }
  try {
    // Inspect before changing anything: a foreign file must be left exactly as it was.
    checkOwnership(db, file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db, file);
    return new SqliteDatabase(db, file, options.busyTimeoutMs);
  } catch (err) {
    db.close();
    throw fail(err);
  }
}

/**
 * SQLite silently falls back to read-only when it cannot write a file, and then fails later with a
 * vaguer error; checking up front names the exact problem.
 */
function checkAccess(file: string): void {
  const dir = path.dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SqliteCannotOpenError(file, new Error(`directory ${dir} does not exist`));
  }
  if (!writable(dir)) throw new SqliteReadOnlyError(file, new Error(`directory ${dir} is not writable`));
  if (existsSync(file) && !writable(file))
    throw new SqliteReadOnlyError(file, new Error(`${file} is not writable`));
}

function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function header(db: Database.Database): { applicationId: number; version: number; tables: string[] } {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as {
      name: string;
    }[]
  ).map((r) => r.name);
  return { applicationId, version, tables };
}

function checkOwnership(db: Database.Database, file: string): void {
  const { applicationId, version, tables } = header(db);
  if (applicationId === APPLICATION_ID) {
    if (version > SCHEMA_VERSION) throw new SqliteSchemaVersionError(file, version, SCHEMA_VERSION);
    return;
  }
  if (applicationId !== 0) {
    throw new SqliteForeignDatabaseError(file, `application_id is 0x${applicationId.toString(16)}`);
  }
  if (tables.length > 0) {
    const shown = tables.slice(0, 3).join(', ') + (tables.length > 3 ? ', ...' : '');
    throw new SqliteForeignDatabaseError(file, `it has tables ${shown}`);
  }
  if (version !== 0) throw new SqliteForeignDatabaseError(file, `user_version is ${version}`);
}

function migrate(db: Database.Database, file: string): void {
  if (header(db).version === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Re-read under the write lock: another process may have migrated meanwhile.
    checkOwnership(db, file);
    const { version } = header(db);
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
