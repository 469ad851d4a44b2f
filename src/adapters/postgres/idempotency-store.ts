import { ClosedError } from '../../core/errors.js';
import type { IdempotencyStore, ReserveResult } from '../../store/idempotency-store.js';
import type { PostgresConnection } from './connection.js';

/** Anything that runs a query: a pool, or the client of your open transaction. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** Completions between two sweeps of expired keys. */
const SWEEP_EVERY = 1000;

/**
 * Idempotency store in PostgreSQL: one row per key, `reserved` until its lease expires or `done`
 * until its TTL does. Expired rows are swept now and then by the process that completes keys.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  private closed = false;
  private completions = 0;

  constructor(
    private readonly db: PostgresConnection,
    private readonly ownsConnection = false,
  ) {}

  private get s(): string {
    if (this.closed) throw new ClosedError(`PostgresIdempotencyStore(${this.db.display})`);
    return this.db.s;
  }

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const s = this.s;
    const now = Date.now();
    // The upsert takes the key when it is new or expired; otherwise the row as it was tells why not.
    const { rows } = await this.db.pool.query<{ acquired: boolean; state: string | null }>(
      `WITH taken AS (
         INSERT INTO ${s}.idempotency AS i (key, state, expires_at) VALUES ($1, 'reserved', $2)
         ON CONFLICT (key) DO UPDATE SET state = 'reserved', expires_at = EXCLUDED.expires_at
          WHERE i.expires_at <= $3
         RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM taken) AS acquired,
              (SELECT state FROM ${s}.idempotency WHERE key = $1) AS state`,
      [key, now + Math.max(1, Math.ceil(leaseMs)), now],
    );
    const row = rows[0]!;
    if (row.acquired) return 'acquired';
    return row.state === 'done' ? 'done' : 'in-progress';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.completeIn(this.db.pool, key, ttlMs);
    if (++this.completions % SWEEP_EVERY === 0) void this.sweep().catch(() => undefined);
  }

  /**
   * Marks `key` done through `client`, the connection of a transaction of yours: your writes and
   * the "done" mark then commit (or roll back) together, so a crash can never leave the effect
   * applied but the event unmarked, which would run it again on redelivery.
   *
   * @example
   * await client.query('BEGIN');
   * await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, id]);
   * await idempotency.completeIn(client, `${ctx.group}:${ctx.event.id}`, ttlMs);
   * await client.query('COMMIT');
   */
  async completeIn(client: Queryable, key: string, ttlMs: number): Promise<void> {
    await client.query(
      `INSERT INTO ${this.s}.idempotency (key, state, expires_at) VALUES ($1, 'done', $2)
       ON CONFLICT (key) DO UPDATE SET state = 'done', expires_at = EXCLUDED.expires_at`,
      [key, Date.now() + Math.max(1, Math.ceil(ttlMs))],
    );
  }

  async release(key: string): Promise<void> {
    await this.db.pool.query(`DELETE FROM ${this.s}.idempotency WHERE key = $1 AND state = 'reserved'`, [
      key,
    ]);
  }

  /** Deletes up to 10 000 expired keys; returns how many. Runs by itself every 1000 completions. */
  async sweep(): Promise<number> {
    const result = await this.db.pool.query(
      `DELETE FROM ${this.s}.idempotency WHERE key IN (
         SELECT key FROM ${this.s}.idempotency WHERE expires_at <= $1 LIMIT 10000)`,
      [Date.now()],
    );
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.db.end();
  }
}
