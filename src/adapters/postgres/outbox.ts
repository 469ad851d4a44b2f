import pg from 'pg';
import { ConfigError } from '../../core/errors.js';
import { outboxRecord, type OutboxEvent, type OutboxRecord } from '../../outbox/message.js';
import type { OutboxLag, OutboxRow, OutboxSource } from '../../outbox/source.js';
import { decodeHeaders } from './codec.js';
import { connect, num, type PostgresConnection } from './connection.js';
import { resolveConnectionOptions, type PostgresConnectionOptions } from './options.js';

/** Anything with pg's `query`: the client of your open transaction (or a pool, for one-statement transactions). */
export interface PgQueryable {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<unknown>;
}

export interface PostgresOutboxOptions extends PostgresConnectionOptions {
  /** `source` of the events' envelopes (the service name). Default `outbox`. */
  readonly service?: string;
}

/** Writes into the outbox inside one transaction of yours. */
export interface PostgresOutboxWriter {
  /** Writes events; they are published by the relay once (and only if) your transaction commits. */
  publish(...events: OutboxEvent[]): Promise<string[]>;
  /** Writes ready-made messages (id, key, headers, body as the transport will carry them). */
  publishRecords(records: readonly OutboxRecord[]): Promise<void>;
}

/**
 * The transactional outbox on PostgreSQL: an `outbox` table in the Herald schema. Write events with
 * the client of your own transaction; an `OutboxRelay` over `source()` forwards the committed ones.
 *
 * @example
 * const outbox = await PostgresOutbox.connect({ connectionString, service: 'orders' });
 * const client = await pool.connect();
 * await client.query('BEGIN');
 * await client.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [id, total]);
 * await outbox.in(client).publish({ topic: 'orders', type: 'order.placed', aggregateId: id, payload: { total } });
 * await client.query('COMMIT'); // or ROLLBACK: then nothing is ever published
 */
export class PostgresOutbox {
  private readonly service: string;
  private readonly channel: string;

  private constructor(
    private readonly db: PostgresConnection,
    private readonly options: PostgresOutboxOptions,
  ) {
    this.service = options.service ?? 'outbox';
    this.channel = `herald_outbox_${db.schema}`;
  }

  /** Connects (BackendUnreachableError naming the URL within `connectTimeoutMs`) and creates the table when missing. */
  static async connect(options: PostgresOutboxOptions): Promise<PostgresOutbox> {
    const { service, ...connection } = options;
    if (service !== undefined && (typeof service !== 'string' || service.length === 0))
      throw new ConfigError('service', 'must be a non-empty string');
    return new PostgresOutbox(await connect(resolveConnectionOptions(connection)), options);
  }

  /** The schema holding the `outbox` table. */
  get schema(): string {
    return this.db.schema;
  }

  /** A writer bound to `client`, the connection your transaction runs on. */
  in(client: PgQueryable): PostgresOutboxWriter {
    if (!client || typeof client.query !== 'function')
      throw new ConfigError('client', 'must be a pg client (the one your transaction runs on)');
    return {
      publish: async (...events) => {
        const records = events.map((e) => outboxRecord(this.service, e));
        await this.write(client, records);
        return records.map((r) => r.message.id);
      },
      publishRecords: (records) => this.write(client, records),
    };
  }

  private async write(client: PgQueryable, records: readonly OutboxRecord[]): Promise<void> {
    if (records.length === 0) return;
    await client.query({
      name: `herald-outbox-write-${this.db.schema}`,
      text: `SELECT ${this.db.s}.outbox_write($1, $2, $3, $4, $5, $6, $7)`,
      values: [
        records.map((r) => r.topic),
        records.map((r) => r.message.id),
        records.map((r) => r.message.key ?? null),
        records.map((r) => JSON.stringify(r.message.headers)),
        records.map((r) =>
          Buffer.from(r.message.body.buffer, r.message.body.byteOffset, r.message.body.byteLength),
        ),
        Date.now(),
        this.channel,
      ],
    });
  }

  /** What a relay reads. Each call gives a source with its own session (for the relay lock and LISTEN). */
  source(): OutboxSource {
    return new PostgresOutboxSource(this.db, this.channel, this.options);
  }

  /** Closes the pool (unless it is yours). Sources close with their relay. */
  async close(): Promise<void> {
    await this.db.end();
  }
}

interface Row {
  position: string;
  id: string;
  topic: string;
  key: string | null;
  headers: string;
  body: Buffer;
}

/**
 * The relay's side. The relay role is a session-level advisory lock held on a dedicated
 * connection, which also LISTENs for commits: if the relay process dies, its connection closes,
 * PostgreSQL frees the lock, and a standby takes over on its next attempt.
 */
class PostgresOutboxSource implements OutboxSource {
  readonly name: string;
  private session: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private holding = false;
  private wake: (() => void) | undefined;
  private notified = false;
  private readonly lockKey: string;

  constructor(
    private readonly db: PostgresConnection,
    private readonly channel: string,
    private readonly options: PostgresOutboxOptions,
  ) {
    this.name = `postgres outbox ${db.schema}.outbox`;
    this.lockKey = `herald.outbox-relay:${db.schema}`;
  }

  private async client(): Promise<pg.Client> {
    if (this.session) return this.session;
    this.connecting ??= (async () => {
      const client = new pg.Client(
        this.options.connectionString !== undefined
          ? {
              connectionString: this.options.connectionString,
              connectionTimeoutMillis: this.options.connectTimeoutMs ?? 3000,
            }
          : { ...(this.db.pool.options as pg.ClientConfig) },
      );
      client.on('error', () => {
        // The session is gone, and the lock with it: start over on the next round.
        if (this.session === client) this.session = undefined;
        this.holding = false;
        void client.end().catch(() => undefined);
      });
      client.on('notification', () => {
        this.notified = true;
        this.wake?.();
      });
      try {
        await client.connect();
        await client.query(`LISTEN "${this.channel}"`);
        // A "sent" mark lost in a server crash only means the rows are sent again (at-least-once);
        // not waiting for the WAL flush on every batch roughly doubles the relay's rate.
        await client.query('SET synchronous_commit = off');
      } catch (err) {
        void client.end().catch(() => undefined);
        throw err;
      }
      this.session = client;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  async acquire(): Promise<boolean> {
    const client = await this.client();
    if (this.holding) return true;
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [
      this.lockKey,
    ]);
    this.holding = rows[0]!.ok;
    return this.holding;
  }

  async release(): Promise<void> {
    const client = this.session;
    this.session = undefined;
    this.holding = false;
    if (client) await client.end().catch(() => undefined); // ends the session: the lock goes with it
  }

  async claim(limit: number): Promise<OutboxRow[]> {
    const client = await this.client();
    this.notified = false;
    const { rows } = await client.query<Row>({
      name: 'herald-outbox-claim',
      text: `SELECT position, id, topic, key, headers, body FROM ${this.db.s}.outbox
              WHERE sent_at IS NULL ORDER BY position LIMIT $1`,
      values: [limit],
    });
    return rows.map((r) => {
      const headers = decodeHeaders(r.headers);
      const body = new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength);
      return {
        position: num(r.position),
        topic: r.topic,
        message: r.key === null ? { id: r.id, headers, body } : { id: r.id, key: r.key, headers, body },
      };
    });
  }

  async markSent(rows: readonly OutboxRow[]): Promise<void> {
    const client = await this.client();
    await client.query({
      name: 'herald-outbox-mark',
      text: `UPDATE ${this.db.s}.outbox SET sent_at = $2 WHERE position = ANY($1::bigint[])`,
      values: [rows.map((r) => r.position), Date.now()],
    });
  }

  async cleanup(olderThanMs: number): Promise<number> {
    const result = await this.db.pool.query(
      `DELETE FROM ${this.db.s}.outbox WHERE sent_at IS NOT NULL AND sent_at < $1`,
      [Date.now() - olderThanMs],
    );
    return result.rowCount ?? 0;
  }

  async lag(): Promise<OutboxLag> {
    const { rows } = await this.db.pool.query<{ n: string; oldest: string | null }>(
      `SELECT count(*) AS n, min(created_at) AS oldest FROM ${this.db.s}.outbox WHERE sent_at IS NULL`,
    );
    const r = rows[0]!;
    return {
      pending: num(r.n),
      oldestAgeMs: r.oldest === null ? 0 : Math.max(0, Date.now() - num(r.oldest)),
    };
  }

  waitForWork(maxMs: number, signal: AbortSignal): Promise<void> {
    if (this.notified || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  async close(): Promise<void> {
    await this.release();
  }
}
