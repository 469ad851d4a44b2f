import type pg from 'pg';
import { ClosedError, ConfigError } from '../../core/errors.js';
import { SagaLeaseLostError } from '../../saga/errors.js';
import { deserializeRecord, serializeRecord, type SagaRecord } from '../../saga/record.js';
import type { SagaCommitOptions, SagaFilter, SagaPage, SagaStore } from '../../saga/store.js';
import { decodeCursor, encodeCursor } from '../../store/dead-letter-store.js';
import { connect, num, type PostgresConnection } from './connection.js';
import { resolveConnectionOptions, type PostgresConnectionOptions } from './options.js';

/**
 * What effects receive from the PostgreSQL store. `query(text, values)` queues a statement; the
 * store runs the queued statements in the commit's transaction, after the lease check and with the
 * state write, so they commit together or not at all. Effects are synchronous (ADR 0801): they
 * cannot read results, only write.
 *
 * @example
 * ctx.effect<PostgresSagaTx>((tx) =>
 *   tx.query('UPDATE stock SET reserved = reserved + 1 WHERE sku = $1', [ctx.input.sku]),
 * );
 */
export interface PostgresSagaTx {
  query(text: string, values?: readonly unknown[]): void;
}

interface Row {
  state: string;
  lease_owner: string | null;
  lease_until: string;
}

const COLUMNS = 'state, lease_owner, lease_until';

/**
 * Saga store in a Herald PostgreSQL schema (table `sagas`, created by schema migration 2). Leases
 * hold across processes: `acquire` is one conditional UPDATE, `claimDue` locks due rows with
 * `FOR UPDATE SKIP LOCKED` so concurrent runners never wait for, or claim, each other's sagas, and
 * `commit` is an UPDATE fenced by version and owner. A step's effects (queued SQL, see
 * {@link PostgresSagaTx}) run in the transaction of that UPDATE: a fenced-out commit or a failing
 * statement writes nothing (ADR 0803).
 *
 * @example
 * const store = await PostgresSagaStore.connect({ connectionString: 'postgres://app@db:5432/app' });
 * const runner = new SagaRunner({ store, sagas: [order], bus: herald });
 */
export class PostgresSagaStore implements SagaStore<PostgresSagaTx> {
  readonly name = 'postgres';
  private closed = false;

  /**
   * A store on a connection you already have (e.g. `postgresStores(...).connection`, to share its
   * pool). With `ownsConnection` the store ends the pool on close.
   */
  constructor(
    private readonly db: PostgresConnection,
    private readonly ownsConnection = false,
  ) {}

  /**
   * Opens a pool of its own (BackendUnreachableError naming the URL within `connectTimeoutMs`),
   * creates or upgrades the schema, and returns a store that ends the pool on close.
   */
  static async connect(options: PostgresConnectionOptions): Promise<PostgresSagaStore> {
    return new PostgresSagaStore(await connect(resolveConnectionOptions(options)), true);
  }

  /** The schema holding the `sagas` table. */
  get schema(): string {
    return this.db.schema;
  }

  private get s(): string {
    if (this.closed) throw new ClosedError(`PostgresSagaStore(${this.db.display})`);
    return this.db.s;
  }

  async create(record: SagaRecord): Promise<boolean> {
    const state = serializeRecord({ ...record, version: 0 });
    const result = await this.db.pool.query(
      `INSERT INTO ${this.s}.sagas (id, type, status, version, wake_at, created_at, state)
       VALUES ($1, $2, $3, 0, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
      [record.id, record.type, record.status, record.wakeAt, record.createdAt, state],
    );
    if (result.rowCount === 0) return false;
    record.version = 0;
    return true;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const { rows } = await this.db.pool.query<Row>(`SELECT ${COLUMNS} FROM ${this.s}.sagas WHERE id = $1`, [
      id,
    ]);
    return rows[0] && toRecord(rows[0]);
  }

  async acquire(id: string, owner: string, leaseMs: number): Promise<SagaRecord | undefined> {
    const now = Date.now();
    // Concurrent acquires queue on the row lock; each re-checks the condition on the row the winner
    // wrote, so exactly one of them takes a free lease.
    const { rows } = await this.db.pool.query<Row>(
      `UPDATE ${this.s}.sagas SET lease_owner = $2, lease_until = $3
        WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= $4)
       RETURNING ${COLUMNS}`,
      [id, owner, now + leaseMs, now],
    );
    return rows[0] && toRecord(rows[0]);
  }

  async claimDue(
    owner: string,
    leaseMs: number,
    limit: number,
    types: readonly string[],
  ): Promise<SagaRecord[]> {
    if (types.length === 0 || limit <= 0) return [];
    const s = this.s;
    const now = Date.now();
    const { rows } = await this.db.pool.query<Row & { wake_at: string }>(
      `WITH due AS (
         SELECT id FROM ${s}.sagas
          WHERE wake_at IS NOT NULL AND wake_at <= $3 AND type = ANY($5::text[])
            AND (lease_owner IS NULL OR lease_until <= $3)
          ORDER BY wake_at LIMIT $4
          FOR UPDATE SKIP LOCKED)
       UPDATE ${s}.sagas g SET lease_owner = $1, lease_until = $2
         FROM due WHERE g.id = due.id
       RETURNING g.state, g.lease_owner, g.lease_until, g.wake_at`,
      [owner, now + leaseMs, now, limit, types],
    );
    // RETURNING gives no order guarantee.
    return rows.sort((a, b) => num(a.wake_at) - num(b.wake_at)).map(toRecord);
  }

  async commit(record: SagaRecord, owner: string, options: SagaCommitOptions<PostgresSagaTx>): Promise<void> {
    const s = this.s;
    const version = record.version + 1;
    const until = options.leaseMs > 0 ? Date.now() + options.leaseMs : 0;
    const effects = queued(options.effects ?? []);
    // The fence and the write are one statement: it matches only while `owner` holds the lease (or
    // held it last) and nobody committed since, and it locks the row until the effects are in.
    const write = {
      text: `UPDATE ${s}.sagas SET status = $3, version = $4, wake_at = $5, lease_owner = $6, lease_until = $7, state = $8
              WHERE id = $1 AND version = $9 AND lease_owner = $2`,
      values: [
        record.id,
        owner,
        record.status,
        version,
        record.wakeAt,
        until > 0 ? owner : null,
        until,
        serializeRecord({ ...record, version }),
        record.version,
      ],
    };
    if (effects.length === 0) {
      const result = await this.db.pool.query(write);
      if (result.rowCount === 0) throw new SagaLeaseLostError(record.id, owner);
    } else {
      await this.transaction(async (client) => {
        const result = await client.query(write);
        if (result.rowCount === 0) throw new SagaLeaseLostError(record.id, owner);
        for (const effect of effects) await client.query(effect.text, effect.values as unknown[]);
      });
    }
    record.version = version;
    if (until > 0) record.lease = { owner, until };
    else delete record.lease;
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const result = await this.db.pool.query(
      `UPDATE ${this.s}.sagas SET lease_until = $3 WHERE id = $1 AND lease_owner = $2`,
      [id, owner, Date.now() + leaseMs],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async release(id: string, owner: string): Promise<void> {
    await this.db.pool.query(
      `UPDATE ${this.s}.sagas SET lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2`,
      [id, owner],
    );
  }

  async list(filter: SagaFilter = {}, page: { limit?: number; cursor?: string } = {}): Promise<SagaPage> {
    const s = this.s;
    const limit = page.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1)
      throw new ConfigError('limit', `must be an integer >= 1, got ${String(limit)}`);
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (value: unknown): string => `$${values.push(value)}`;
    if (filter.type) where.push(`type = ${param(filter.type)}`);
    if (filter.status) where.push(`status = ${param(filter.status)}`);
    const after = decodeCursor(page.cursor);
    if (after) where.push(`(created_at, id) < (${param(after.at)}, ${param(after.id)})`);
    const { rows } = await this.db.pool.query<Row & { created_at: string; id: string }>(
      `SELECT ${COLUMNS}, created_at, id FROM ${s}.sagas ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, id DESC LIMIT ${param(limit + 1)}`,
      values,
    );
    const items = rows.slice(0, limit).map(toRecord);
    if (rows.length <= limit) return { items };
    const last = rows[limit - 1]!;
    return { items, nextCursor: encodeCursor(num(last.created_at), last.id) };
  }

  /** Ends the pool when the store opened it ({@link PostgresSagaStore.connect}); a shared one stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.db.end();
  }

  private async transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.db.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((rollback: Error) => (broken = rollback));
      throw err;
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: the pool must not reuse it.
      client.release(broken);
    }
  }
}

/** Runs the effects against a queue; an effect that throws leaves nothing to run. */
function queued(
  effects: readonly ((tx: PostgresSagaTx) => void)[],
): { text: string; values: readonly unknown[] }[] {
  const statements: { text: string; values: readonly unknown[] }[] = [];
  const tx: PostgresSagaTx = {
    query: (text, values = []) => {
      if (typeof text !== 'string' || text.length === 0)
        throw new ConfigError(
          'query',
          'a saga effect must queue SQL text, e.g. tx.query("UPDATE ...", [value])',
        );
      statements.push({ text, values });
    },
  };
  for (const effect of effects) effect(tx);
  return statements;
}

function toRecord(row: Row): SagaRecord {
  return deserializeRecord(
    row.state,
    row.lease_owner !== null ? { owner: row.lease_owner, until: num(row.lease_until) } : undefined,
  );
}
