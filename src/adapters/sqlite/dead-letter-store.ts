import {
  encodeCursor,
  pageLimit,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
  type DeadLetterKey,
  type DeadLetterSearch,
  type DeadLetterStore,
  type Page,
} from '../../store/dead-letter-store.js';
import { acquireDatabase, type DatabaseHandle, type SqliteDatabase } from './database.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';
import { ClosedError } from '../../core/errors.js';
import type { DeadLetterSummary } from '../../store/dead-letter-summary.js';
import { listSummaries } from './dead-letter-summaries.js';
import { searchKeys, searchSummaries } from './dead-letter-search.js';
import { errorFingerprint } from '../../store/dead-letter-fingerprint.js';
import { backfillFingerprints, failureCounts } from './dead-letter-failures.js';
import type { FailureCounts } from '../../store/dead-letter-store.js';
import { pageClause, sqlWhere, whereClause } from './dead-letter-where.js';

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

  async list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>> {
    const db = this.fingerprinted(filter?.fingerprint !== undefined);
    const limit = pageLimit(page);
    const where = whereClause(filter);
    const order = pageClause(where, page);
    const rows = db.run('dead-letter list', () =>
      db.db
        .prepare(`SELECT entry, body FROM herald_dead_letters ${sqlWhere(where.sql)} ${order} LIMIT ?`)
        .all(...where.params, limit + 1),
    ) as Row[];
    const items = rows.slice(0, limit).map(toEntry);
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items };
  }

  async count(filter?: DeadLetterFilter): Promise<number> {
    const db = this.fingerprinted(filter?.fingerprint !== undefined);
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
    const db = this.fingerprinted(filter?.fingerprint !== undefined);
    const where = whereClause(filter);
    return db.run(
      'dead-letter purge',
      () =>
        db.db.prepare(`DELETE FROM herald_dead_letters ${sqlWhere(where.sql)}`).run(...where.params).changes,
    );
  }

  /** Reads only the indexed columns and a few JSON fields: no bodies, no full entry parse. */
  async summaries(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterSummary>> {
    return listSummaries(this.fingerprinted(filter?.fingerprint !== undefined), filter, page);
  }

  /** Matches text in SQL, one scan per search, instead of the console loading the DLQ (ADR 0975). */
  async search(
    search: DeadLetterSearch,
    page?: DeadLetterPageRequest,
  ): Promise<Page<DeadLetterSummary> & { readonly total: number }> {
    return searchSummaries(this.fingerprinted(true), search, page);
  }

  /** Every match of a search with its keys, oldest first: the same scan, once (ADR 0976). */
  async searchKeys(search: DeadLetterSearch): Promise<readonly DeadLetterKey[]> {
    return searchKeys(this.fingerprinted(true), search);
  }

  /** Counts per failure fingerprint from the covering index; no entry is read (ADR 0973). */
  async failureCounts(filter?: DeadLetterFilter): Promise<FailureCounts> {
    return failureCounts(this.fingerprinted(true), filter);
  }

  /**
   * The database, with every row's fingerprint filled in first when the query reads it: rows from
   * before schema version 3 have none until then (filled once per store).
   */
  private fingerprinted(reads: boolean): SqliteDatabase {
    const db = this.db;
    if (reads && !this.backfilled) {
      backfillFingerprints(db);
      this.backfilled = true;
    }
    return db;
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
