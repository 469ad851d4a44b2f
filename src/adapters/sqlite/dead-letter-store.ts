import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterStore,
  type Page,
  type PageRequest,
} from '../../store/dead-letter-store.js';
import { acquireDatabase, type DatabaseHandle, type SqliteDatabase } from './database.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';
import { ClosedError } from '../../core/errors.js';
import type { DeadLetterSummary } from '../../store/dead-letter-summary.js';
import { listSummaries } from './dead-letter-summaries.js';
import { errorFingerprint } from '../../store/dead-letter-fingerprint.js';
import { backfillFingerprints, failureCounts } from './dead-letter-failures.js';
import type { FailureCounts } from '../../store/dead-letter-store.js';
import { sqlWhere, whereClause } from './dead-letter-where.js';

interface Row {
  body: Buffer;
  entry: string;
}

/** The entry minus its message body, which is stored as a BLOB next to it. */
type StoredEntry = Omit<DeadLetterEntry, 'message'> & { message: Omit<DeadLetterEntry['message'], 'body'> };

/** Dead-letter store in a Herald SQLite file. Entries survive restarts and are shared by every process on the file. */
export class SqliteDeadLetterStore implements DeadLetterStore {
  private readonly handle: DatabaseHandle;
  private closed = false;
  /** Rows from before schema version 3 got their fingerprint (once per store; new rows always have one). */
  private backfilled = false;

  constructor(options: SqliteConnectionOptions) {
    this.handle = acquireDatabase(resolveConnectionOptions(options));
  }

  private get db(): SqliteDatabase {
    if (this.closed) throw new ClosedError(`SqliteDeadLetterStore(${this.handle.database.path})`);
    return this.handle.database;
  }

  async add(entry: DeadLetterEntry): Promise<void> {
    const db = this.db;
    const { body, ...message } = entry.message;
    const stored: StoredEntry = { ...entry, message };
    db.run('dead-letter add', () =>
      db
        .statement(
          `INSERT OR REPLACE INTO herald_dead_letters (id, reason, topic, grp, handler, event_type, dead_lettered_at, entry, body, fingerprint)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          entry.id,
          entry.reason,
          entry.topic,
          entry.group,
          entry.handler,
          entry.eventType ?? null,
          entry.deadLetteredAt,
          JSON.stringify(stored),
          Buffer.from(body),
          errorFingerprint(entry.error),
        ),
    );
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const db = this.db;
    const row = db.run('dead-letter get', () =>
      db.statement('SELECT entry, body FROM herald_dead_letters WHERE id = ?').get(id),
    ) as Row | undefined;
    return row && toEntry(row);
  }

  async list(filter?: DeadLetterFilter, page?: PageRequest): Promise<Page<DeadLetterEntry>> {
    const db = this.db;
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor);
    const where = whereClause(filter);
    if (after) {
      where.sql.push('(dead_lettered_at > ? OR (dead_lettered_at = ? AND id > ?))');
      where.params.push(after.at, after.at, after.id);
    }
    const rows = db.run('dead-letter list', () =>
      db.db
        .prepare(
          `SELECT entry, body FROM herald_dead_letters ${sqlWhere(where.sql)} ORDER BY dead_lettered_at, id LIMIT ?`,
        )
        .all(...where.params, limit + 1),
    ) as Row[];
    const items = rows.slice(0, limit).map(toEntry);
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items };
  }

  async count(filter?: DeadLetterFilter): Promise<number> {
    const db = this.db;
    const where = whereClause(filter);
    const row = db.run('dead-letter count', () =>
      db.db
        .prepare(`SELECT count(*) AS n FROM herald_dead_letters ${sqlWhere(where.sql)}`)
        .get(...where.params),
    ) as { n: number };
    return row.n;
  }

  async remove(ids: readonly string[]): Promise<number> {
    const db = this.db;
    return db.write('dead-letter remove', () => {
      const del = db.statement('DELETE FROM herald_dead_letters WHERE id = ?');
      let n = 0;
      for (const id of ids) n += del.run(id).changes;
      return n;
    });
  }

  async purge(filter?: DeadLetterFilter): Promise<number> {
    const db = this.db;
    const where = whereClause(filter);
    return db.run(
      'dead-letter purge',
      () =>
        db.db.prepare(`DELETE FROM herald_dead_letters ${sqlWhere(where.sql)}`).run(...where.params).changes,
    );
  }

  /** Reads only the indexed columns and a few JSON fields: no bodies, no full entry parse. */
  async summaries(filter?: DeadLetterFilter, page?: PageRequest): Promise<Page<DeadLetterSummary>> {
    return listSummaries(this.db, filter, page);
  }

  /** Counts per failure fingerprint from the covering index; no entry is read (ADR 0973). */
  async failureCounts(filter?: DeadLetterFilter & { readonly fingerprint?: string }): Promise<FailureCounts> {
    const db = this.db;
    if (!this.backfilled) {
      backfillFingerprints(db);
      this.backfilled = true;
    }
    return failureCounts(db, filter);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.release();
  }
}

function toEntry(row: Row): DeadLetterEntry {
  const stored = JSON.parse(row.entry) as StoredEntry;
  const body = new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength);
  return { ...stored, message: { ...stored.message, body } };
}
