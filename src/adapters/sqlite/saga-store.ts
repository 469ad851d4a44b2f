import type { SqliteConnection } from './connection.js';
import { ClosedError, ConfigError } from '../../core/errors.js';
import { SagaLeaseLostError } from '../../saga/errors.js';
import { deserializeRecord, serializeRecord, type SagaRecord } from '../../saga/record.js';
import type { SagaCommitOptions, SagaFilter, SagaPage, SagaStore } from '../../saga/store.js';
import { acquireDatabase, type DatabaseHandle, type SqliteDatabase } from './database.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';

/**
 * Created on first use rather than as a numbered migration, so the saga tables do not take a schema
 * version of their own (see ADR 0801). The record is one JSON column; the columns beside it are what
 * the store queries on.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS herald_sagas (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  version INTEGER NOT NULL,
  wake_at INTEGER,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS herald_sagas_due ON herald_sagas (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS herald_sagas_created ON herald_sagas (created_at DESC, id DESC);
`;

interface Row {
  state: string;
  lease_owner: string | null;
  lease_until: number;
}

const COLUMNS = 'state, lease_owner, lease_until';

/** Effects receive the connection's better-sqlite3 `Database`, inside the commit's IMMEDIATE transaction. */
export type SqliteSagaTx = SqliteConnection;

/**
 * Saga store in a Herald SQLite file (the broker's file or another). Every operation is one
 * IMMEDIATE transaction, so leases hold across processes; a step's effects run in the transaction
 * that records its completion, so they commit together or not at all.
 *
 * @example
 * const store = new SqliteSagaStore({ path: '.herald/events.db' });
 * ctx.effect<SqliteSagaTx>((db) => db.prepare('UPDATE stock SET reserved = reserved + 1 WHERE sku = ?').run(sku));
 */
export class SqliteSagaStore implements SagaStore<SqliteSagaTx> {
  readonly name = 'sqlite';
  private readonly handle: DatabaseHandle;
  private closed = false;

  constructor(options: SqliteConnectionOptions) {
    this.handle = acquireDatabase(resolveConnectionOptions(options));
    const db = this.handle.database;
    try {
      db.write('creating the saga tables', () => db.db.exec(SCHEMA));
    } catch (err) {
      this.handle.release();
      throw err;
    }
  }

  private get db(): SqliteDatabase {
    if (this.closed) throw new ClosedError(`SqliteSagaStore(${this.handle.database.path})`);
    return this.handle.database;
  }

  async create(record: SagaRecord): Promise<boolean> {
    const db = this.db;
    const stored = { ...record, version: 0 };
    const info = db.run('saga create', () =>
      db
        .statement(
          `INSERT INTO herald_sagas (id, type, status, version, wake_at, created_at, state)
           VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        )
        .run(record.id, record.type, record.status, record.wakeAt, record.createdAt, serializeRecord(stored)),
    );
    if (info.changes === 0) return false;
    record.version = 0;
    return true;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    const db = this.db;
    const row = db.run('saga get', () =>
      db.statement(`SELECT ${COLUMNS} FROM herald_sagas WHERE id = ?`).get(id),
    ) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  async acquire(id: string, owner: string, leaseMs: number): Promise<SagaRecord | undefined> {
    const db = this.db;
    const now = Date.now();
    const row = db.run('saga acquire', () =>
      db
        .statement(
          `UPDATE herald_sagas SET lease_owner = ?, lease_until = ?
           WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)
           RETURNING ${COLUMNS}`,
        )
        .get(owner, now + leaseMs, id, owner, now),
    ) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  async claimDue(
    owner: string,
    leaseMs: number,
    limit: number,
    types: readonly string[],
  ): Promise<SagaRecord[]> {
    if (types.length === 0 || limit <= 0) return [];
    const db = this.db;
    const now = Date.now();
    const marks = types.map(() => '?').join(', ');
    const rows = db.write('saga claim', () =>
      db
        .statement(
          `UPDATE herald_sagas SET lease_owner = ?, lease_until = ?
           WHERE id IN (
             SELECT id FROM herald_sagas
             WHERE wake_at IS NOT NULL AND wake_at <= ? AND type IN (${marks})
               AND (lease_owner IS NULL OR lease_until <= ?)
             ORDER BY wake_at LIMIT ?)
           RETURNING ${COLUMNS}, wake_at`,
        )
        .all(owner, now + leaseMs, now, ...types, now, limit),
    ) as (Row & { wake_at: number })[];
    // RETURNING gives no order guarantee.
    return rows.sort((a, b) => a.wake_at - b.wake_at).map(toRecord);
  }

  async commit(record: SagaRecord, owner: string, options: SagaCommitOptions<SqliteSagaTx>): Promise<void> {
    const db = this.db;
    const now = Date.now();
    const version = record.version + 1;
    const until = options.leaseMs > 0 ? now + options.leaseMs : 0;
    const state = serializeRecord({ ...record, version });
    db.write('saga commit', () => {
      const current = db
        .statement('SELECT version, lease_owner FROM herald_sagas WHERE id = ?')
        .get(record.id) as { version: number; lease_owner: string | null } | undefined;
      if (!current || current.version !== record.version || current.lease_owner !== owner) {
        throw new SagaLeaseLostError(record.id, owner);
      }
      for (const effect of options.effects ?? []) effect(db.db);
      db.statement(
        `UPDATE herald_sagas SET status = ?, version = ?, wake_at = ?, lease_owner = ?, lease_until = ?, state = ?
         WHERE id = ?`,
      ).run(record.status, version, record.wakeAt, until > 0 ? owner : null, until, state, record.id);
    });
    record.version = version;
    if (until > 0) record.lease = { owner, until };
    else delete record.lease;
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const db = this.db;
    const info = db.run('saga renew', () =>
      db
        .statement('UPDATE herald_sagas SET lease_until = ? WHERE id = ? AND lease_owner = ?')
        .run(Date.now() + leaseMs, id, owner),
    );
    return info.changes > 0;
  }

  async release(id: string, owner: string): Promise<void> {
    const db = this.db;
    db.run('saga release', () =>
      db
        .statement(
          'UPDATE herald_sagas SET lease_owner = NULL, lease_until = 0 WHERE id = ? AND lease_owner = ?',
        )
        .run(id, owner),
    );
  }

  async list(filter: SagaFilter = {}, page: { limit?: number; cursor?: string } = {}): Promise<SagaPage> {
    const db = this.db;
    const limit = page.limit ?? 50;
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.type) {
      where.push('type = ?');
      args.push(filter.type);
    }
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (page.cursor) {
      const [at, id] = decodeCursor(page.cursor);
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      args.push(at, at, id);
    }
    const sql = `SELECT ${COLUMNS}, created_at, id FROM herald_sagas ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    const rows = db.run('saga list', () => db.statement(sql).all(...args, limit + 1)) as (Row & {
      created_at: number;
      id: string;
    })[];
    const items = rows.slice(0, limit).map(toRecord);
    if (rows.length <= limit) return { items };
    const last = rows[limit - 1]!;
    return { items, nextCursor: encodeCursor(last.created_at, last.id) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.release();
  }
}

function toRecord(row: Row): SagaRecord {
  return deserializeRecord(
    row.state,
    row.lease_owner !== null ? { owner: row.lease_owner, until: row.lease_until } : undefined,
  );
}

export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through to the error
  }
  throw new ConfigError('cursor', `is not a cursor returned by list: ${JSON.stringify(cursor)}`);
}
