import { ClosedError, ConfigError } from '../../core/errors.js';
import type { IdempotencyStore, ReserveResult } from '../../store/idempotency-store.js';
import type { SqliteConnection } from './connection.js';
import { acquireDatabase, type DatabaseHandle, type SqliteDatabase } from './database.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';

const SWEEP_EVERY_WRITES = 1024;
const SWEEP_BATCH = 1000;

/**
 * Idempotency store in a Herald SQLite file. `reserve` is atomic across processes (one IMMEDIATE
 * transaction), so two members of a group never both acquire one key. Expired keys are swept in
 * bounded batches as writes go by.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly handle: DatabaseHandle;
  private readonly now: () => number;
  private writes = 0;
  private closed = false;

  /** @param options.now clock for tests; defaults to Date.now. */
  constructor(options: SqliteConnectionOptions & { now?: () => number }) {
    const { now, ...connection } = options;
    this.handle = acquireDatabase(resolveConnectionOptions(connection));
    this.now = now ?? Date.now;
  }

  private get db(): SqliteDatabase {
    if (this.closed) throw new ClosedError(`SqliteIdempotencyStore(${this.handle.database.path})`);
    return this.handle.database;
  }

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const db = this.db;
    const now = this.now();
    const result = db.write('idempotency reserve', (): ReserveResult => {
      const row = db.statement('SELECT state, expires_at FROM herald_idempotency WHERE key = ?').get(key) as
        { state: string; expires_at: number } | undefined;
      if (row && row.expires_at > now) return row.state === 'done' ? 'done' : 'in-progress';
      db.statement('INSERT OR REPLACE INTO herald_idempotency (key, state, expires_at) VALUES (?, ?, ?)').run(
        key,
        'reserved',
        now + leaseMs,
      );
      return 'acquired';
    });
    this.maybeSweep(now);
    return result;
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    const db = this.db;
    const now = this.now();
    db.run('idempotency complete', () => this.markDone(db, key, now + ttlMs));
    this.maybeSweep(now);
  }

  private markDone(db: SqliteDatabase, key: string, expiresAt: number): void {
    db.statement('INSERT OR REPLACE INTO herald_idempotency (key, state, expires_at) VALUES (?, ?, ?)').run(
      key,
      'done',
      expiresAt,
    );
  }

  /**
   * Runs `effect` and marks `key` done in one IMMEDIATE transaction on this store's connection, so
   * a handler's writes to tables in the same SQLite file and the "done" mark commit (or roll back)
   * together: a crash can never leave the effect applied but the event unmarked, which would run it
   * again on redelivery. `effect` gets the better-sqlite3 connection and must be synchronous (a
   * transaction cannot span an await); what it returns is returned. Errors it throws roll
   * everything back and come out unchanged.
   *
   * @example
   * handler: (event, ctx) => {
   *   stores.idempotency.completeIn(`${ctx.group}:${event.id}`, ttlMs, (db) =>
   *     db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?').run(event.payload.amount, event.payload.id),
   *   );
   * }
   */
  completeIn<T>(key: string, ttlMs: number, effect: (db: SqliteConnection) => T): T {
    if (typeof effect !== 'function')
      throw new ConfigError('effect', 'must be a synchronous function (db) => ... doing your writes');
    const db = this.db;
    const now = this.now();
    let failure: { error: unknown } | undefined;
    let result: T;
    try {
      result = db.write('idempotency completeIn', () => {
        let value: T;
        try {
          value = effect(db.db);
        } catch (error) {
          // Thrown as is, not as a storage error: it is the caller's own, and rolls back the write.
          failure = { error };
          throw error;
        }
        if (value instanceof Promise)
          throw new ConfigError(
            'effect',
            'returned a promise: it runs inside an SQLite transaction, which cannot span an await; make it synchronous',
          );
        this.markDone(db, key, now + ttlMs);
        return value;
      });
    } catch (err) {
      throw failure ? failure.error : err;
    }
    this.maybeSweep(now);
    return result;
  }

  async release(key: string): Promise<void> {
    const db = this.db;
    db.run('idempotency release', () =>
      db.statement("DELETE FROM herald_idempotency WHERE key = ? AND state = 'reserved'").run(key),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.release();
  }

  private maybeSweep(now: number): void {
    if (++this.writes % SWEEP_EVERY_WRITES !== 0) return;
    const db = this.db;
    db.run('idempotency sweep', () =>
      db
        .statement(
          'DELETE FROM herald_idempotency WHERE key IN (SELECT key FROM herald_idempotency WHERE expires_at <= ? LIMIT ?)',
        )
        .run(now, SWEEP_BATCH),
    );
  }
}
