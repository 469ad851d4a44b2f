import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import type { SqliteConnection } from './connection.js';
import { ConfigError } from '../../core/errors.js';
import { outboxRecord, type OutboxEvent, type OutboxRecord } from '../../outbox/message.js';
import type { OutboxLag, OutboxRow, OutboxSource } from '../../outbox/source.js';

/*
 * The outbox lives in the application's own SQLite file, next to its tables, so a write joins the
 * application's transaction. SQLite has one writer at a time, so rowid order is commit order and
 * the relay, reading by position, keeps every aggregate's order. See ADR 0947.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS herald_outbox (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  topic TEXT NOT NULL CHECK (topic <> ''),
  key TEXT,
  headers TEXT NOT NULL,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS herald_outbox_unsent ON herald_outbox (position) WHERE sent_at IS NULL;
CREATE TABLE IF NOT EXISTS herald_outbox_relay (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  lease_until INTEGER NOT NULL
);
`;

export interface SqliteOutboxOptions {
  /** `source` of the events' envelopes (the service name). Default `outbox`. */
  readonly service?: string;
}

export interface SqliteOutboxSourceOptions {
  /**
   * How long the relay role lasts without renewal (each relay round renews it). A standby takes
   * over this long after the active relay died. Default 10 000.
   */
  readonly leaseMs?: number;
  /** How often an idle relay looks for commits (a cheap `PRAGMA data_version`). Default 20. */
  readonly checkIntervalMs?: number;
}

interface Row {
  position: number;
  id: string;
  topic: string;
  key: string | null;
  headers: string;
  body: Buffer;
}

/**
 * The transactional outbox on SQLite (better-sqlite3). Create it over the connection your
 * transactions run on, and publish inside them; the rows commit or roll back with your writes.
 *
 * @example
 * const db = new Database('app.db');
 * const outbox = new SqliteOutbox(db, { service: 'orders' });
 * db.transaction(() => {
 *   db.prepare('INSERT INTO orders (id, total) VALUES (?, ?)').run(id, total);
 *   outbox.publish({ topic: 'orders', type: 'order.placed', aggregateId: id, payload: { total } });
 * })();
 * // elsewhere (or another process): new OutboxRelay({ source: SqliteOutbox.open('app.db').source(), transport }).start()
 */
export class SqliteOutbox {
  private readonly service: string;
  private readonly insert: Database.Statement;
  private readonly owned: boolean;
  /** Writes through this connection, which PRAGMA data_version does not count. */
  private writes = 0;

  constructor(
    readonly database: SqliteConnection,
    options: SqliteOutboxOptions = {},
    owned = false,
  ) {
    if (!(database instanceof Database))
      throw new ConfigError(
        'database',
        'must be a better-sqlite3 Database (the one your transactions run on)',
      );
    if (
      options.service !== undefined &&
      (typeof options.service !== 'string' || options.service.length === 0)
    )
      throw new ConfigError('service', 'must be a non-empty string');
    this.service = options.service ?? 'outbox';
    this.owned = owned;
    database.exec(SCHEMA);
    this.insert = database.prepare(
      'INSERT INTO herald_outbox (id, topic, key, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
  }

  /** Opens a file of its own (WAL, busy timeout) for a relay process; creates the tables when missing. */
  static open(path: string, options: SqliteOutboxOptions = {}): SqliteOutbox {
    if (typeof path !== 'string' || path.length === 0)
      throw new ConfigError('path', 'must be the path of the application database file');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    try {
      return new SqliteOutbox(db, options, true);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Writes events into the outbox; they are published by the relay once (and only if) the
   * enclosing transaction commits. Synchronous, like better-sqlite3. Returns the event ids.
   */
  publish(...events: OutboxEvent[]): string[] {
    const records = events.map((e) => outboxRecord(this.service, e));
    this.publishRecords(records);
    return records.map((r) => r.message.id);
  }

  /** Writes ready-made messages (id, key, headers, body as the transport will carry them). */
  publishRecords(records: readonly OutboxRecord[]): void {
    const now = Date.now();
    this.writes++;
    const write = (): void => {
      for (const { topic, message: m } of records)
        this.insert.run(
          m.id,
          topic,
          m.key ?? null,
          JSON.stringify(m.headers),
          Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength),
          now,
        );
    };
    // Inside the caller's transaction this joins it; outside, the records commit together on their own.
    const db = this.database as Database.Database;
    if (db.inTransaction) write();
    else db.transaction(write)();
  }

  /** What a relay reads. */
  source(options: SqliteOutboxSourceOptions = {}): OutboxSource {
    return new SqliteOutboxSource(this.database as Database.Database, options, this.owned, () => this.writes);
  }
}

class SqliteOutboxSource implements OutboxSource {
  readonly name: string;
  private readonly holder = randomBytes(8).toString('base64url');
  private readonly leaseMs: number;
  private readonly checkIntervalMs: number;
  private lastVersion = -1;
  private lastLocal = -1;

  constructor(
    private readonly db: Database.Database,
    options: SqliteOutboxSourceOptions,
    private readonly owned: boolean,
    private readonly localWrites: () => number,
  ) {
    this.name = `sqlite outbox ${db.name}`;
    this.leaseMs = positive('leaseMs', options.leaseMs, 10_000);
    this.checkIntervalMs = positive('checkIntervalMs', options.checkIntervalMs, 20);
  }

  async acquire(): Promise<boolean> {
    const now = Date.now();
    return this.db
      .transaction(() => {
        const taken = this.db
          .prepare(
            `UPDATE herald_outbox_relay SET holder = ?, lease_until = ?
            WHERE name = 'relay' AND (holder = ? OR lease_until < ?)`,
          )
          .run(this.holder, now + this.leaseMs, this.holder, now).changes;
        if (taken > 0) return true;
        return (
          this.db
            .prepare(
              `INSERT OR IGNORE INTO herald_outbox_relay (name, holder, lease_until) VALUES ('relay', ?, ?)`,
            )
            .run(this.holder, now + this.leaseMs).changes > 0
        );
      })
      .immediate();
  }

  async release(): Promise<void> {
    this.db.prepare(`DELETE FROM herald_outbox_relay WHERE name = 'relay' AND holder = ?`).run(this.holder);
  }

  async claim(limit: number): Promise<OutboxRow[]> {
    this.lastVersion = this.db.pragma('data_version', { simple: true }) as number;
    this.lastLocal = this.localWrites();
    const rows = this.db
      .prepare(
        'SELECT position, id, topic, key, headers, body FROM herald_outbox WHERE sent_at IS NULL ORDER BY position LIMIT ?',
      )
      .all(limit) as Row[];
    return rows.map((r) => {
      const headers = decodeHeaders(r.headers);
      const body = new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength);
      return {
        position: r.position,
        topic: r.topic,
        message: r.key === null ? { id: r.id, headers, body } : { id: r.id, key: r.key, headers, body },
      };
    });
  }

  async markSent(rows: readonly OutboxRow[]): Promise<void> {
    const mark = this.db.prepare('UPDATE herald_outbox SET sent_at = ? WHERE position = ?');
    const now = Date.now();
    this.db
      .transaction(() => {
        for (const r of rows) mark.run(now, r.position);
      })
      .immediate();
  }

  async cleanup(olderThanMs: number): Promise<number> {
    return this.db
      .prepare('DELETE FROM herald_outbox WHERE sent_at IS NOT NULL AND sent_at < ?')
      .run(Date.now() - olderThanMs).changes;
  }

  async lag(): Promise<OutboxLag> {
    const r = this.db
      .prepare('SELECT count(*) AS n, min(created_at) AS oldest FROM herald_outbox WHERE sent_at IS NULL')
      .get() as { n: number; oldest: number | null };
    return { pending: r.n, oldestAgeMs: r.oldest === null ? 0 : Math.max(0, Date.now() - r.oldest) };
  }

  /** Waits for a commit by another connection (PRAGMA data_version changes), checking every few ms. */
  async waitForWork(maxMs: number, signal: AbortSignal): Promise<void> {
    const until = Date.now() + maxMs;
    while (!signal.aborted && Date.now() < until) {
      if (this.localWrites() !== this.lastLocal) return;
      if ((this.db.pragma('data_version', { simple: true }) as number) !== this.lastVersion) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.checkIntervalMs, until - Date.now())));
    }
  }

  async close(): Promise<void> {
    await this.release();
    if (this.owned) this.db.close();
  }
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new ConfigError(field, `must be an integer >= 1, got ${String(value)}`);
  return value;
}

/** Stored headers that are not a JSON object of strings make the consumer dead-letter the message (`decode`). */
function decodeHeaders(text: string): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      !Array.isArray(parsed) &&
      Object.values(parsed).every((v) => typeof v === 'string')
    )
      return parsed as Record<string, string>;
  } catch {
    // fall through
  }
  return {
    'content-type': 'application/vnd.herald.undecodable-headers',
    'x-herald-raw-headers': String(text).slice(0, 1000),
  };
}
