import { ClosedError } from '../../core/errors.js';
import { errorFingerprint } from '../../store/dead-letter-fingerprint.js';
import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  pageOrder,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
  type DeadLetterStore,
  type Page,
} from '../../store/dead-letter-store.js';
import { num, type PostgresConnection } from './connection.js';

/** The store's filter plus what PostgreSQL indexes beyond the common interface. */
export interface PostgresDeadLetterFilter extends DeadLetterFilter {
  /** Entries of one aggregate (the message's ordering key). */
  readonly aggregateId?: string;
  /** Entries whose error name or message contains every word of this text (full-text, case-insensitive). */
  readonly errorText?: string;
}

interface Row {
  entry: Omit<DeadLetterEntry, 'message'> & { message: Omit<DeadLetterEntry['message'], 'body'> };
  body: Buffer;
}

/**
 * Dead-letter store in PostgreSQL. Every filter is served by an index (group, type, topic and
 * aggregate by b-tree with the list order as suffix, error words by GIN), so listing and counting
 * stay fast on a million entries; see docs/adapters/postgres.md for the plans.
 */
export class PostgresDeadLetterStore implements DeadLetterStore {
  private closed = false;
  /** Rows from before schema version 4 got their fingerprint (once per store; new rows always have one). */
  private backfill: Promise<void> | undefined;

  constructor(
    private readonly db: PostgresConnection,
    private readonly ownsConnection = false,
  ) {}

  private get s(): string {
    if (this.closed) throw new ClosedError(`PostgresDeadLetterStore(${this.db.display})`);
    return this.db.s;
  }

  async add(entry: DeadLetterEntry): Promise<void> {
    const s = this.s;
    const { body, ...message } = entry.message;
    await this.db.pool.query(
      `INSERT INTO ${s}.dead_letters (id, reason, topic, grp, handler, event_type, aggregate_id, error, dead_lettered_at, entry, body, fingerprint)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (id) DO UPDATE SET reason = EXCLUDED.reason, topic = EXCLUDED.topic, grp = EXCLUDED.grp,
         handler = EXCLUDED.handler, event_type = EXCLUDED.event_type, aggregate_id = EXCLUDED.aggregate_id,
         error = EXCLUDED.error, dead_lettered_at = EXCLUDED.dead_lettered_at, entry = EXCLUDED.entry, body = EXCLUDED.body,
         fingerprint = EXCLUDED.fingerprint`,
      [
        entry.id,
        entry.reason,
        entry.topic,
        entry.group,
        entry.handler,
        entry.eventType ?? null,
        entry.message.key ?? null,
        `${entry.error.name}: ${entry.error.message}`,
        entry.deadLetteredAt,
        JSON.stringify({ ...entry, message }),
        Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        errorFingerprint(entry.error),
      ],
    );
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const { rows } = await this.db.pool.query<Row>(
      `SELECT entry, body FROM ${this.s}.dead_letters WHERE id = $1`,
      [id],
    );
    return rows[0] && toEntry(rows[0]);
  }

  async list(
    filter?: PostgresDeadLetterFilter,
    page?: DeadLetterPageRequest,
  ): Promise<Page<DeadLetterEntry>> {
    const s = this.s;
    await this.fingerprinted(filter);
    const limit = pageLimit(page);
    const newest = pageOrder(page) === 'newest';
    const after = decodeCursor(page?.cursor);
    const where = whereClause(filter);
    if (after) {
      // A row value comparison: the b-tree indexes ending in (dead_lettered_at, id) seek to it,
      // scanning backwards for newest first.
      where.params.push(after.at, after.id);
      where.sql.push(
        `(dead_lettered_at, id) ${newest ? '<' : '>'} ($${where.params.length - 1}, $${where.params.length})`,
      );
    }
    where.params.push(limit + 1);
    const order = newest ? 'dead_lettered_at DESC, id DESC' : 'dead_lettered_at, id';
    const { rows } = await this.db.pool.query<Row>(
      `SELECT entry, body FROM ${s}.dead_letters ${sqlWhere(where.sql)} ORDER BY ${order} LIMIT $${where.params.length}`,
      where.params,
    );
    const items = rows.slice(0, limit).map(toEntry);
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items };
  }

  async count(filter?: PostgresDeadLetterFilter): Promise<number> {
    await this.fingerprinted(filter);
    const where = whereClause(filter);
    const { rows } = await this.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.s}.dead_letters ${sqlWhere(where.sql)}`,
      where.params,
    );
    return num(rows[0]!.n);
  }

  async remove(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.db.pool.query(`DELETE FROM ${this.s}.dead_letters WHERE id = ANY($1::text[])`, [
      [...ids],
    ]);
    return result.rowCount ?? 0;
  }

  async purge(filter?: PostgresDeadLetterFilter): Promise<number> {
    await this.fingerprinted(filter);
    const where = whereClause(filter);
    const result = await this.db.pool.query(
      `DELETE FROM ${this.s}.dead_letters ${sqlWhere(where.sql)}`,
      where.params,
    );
    return result.rowCount ?? 0;
  }

  /**
   * Before the first query by fingerprint: fills in the fingerprint of rows written before schema
   * version 4, 1,000 per statement so no long transaction holds the table.
   */
  private fingerprinted(filter: DeadLetterFilter | undefined): Promise<void> | undefined {
    if (filter?.fingerprint === undefined) return undefined;
    this.backfill ??= (async () => {
      const s = this.s;
      for (;;) {
        const { rows } = await this.db.pool.query<{ id: string; error: DeadLetterEntry['error'] }>(
          `SELECT id, entry->'error' AS error FROM ${s}.dead_letters WHERE fingerprint IS NULL LIMIT 1000`,
        );
        if (rows.length === 0) return;
        await this.db.pool.query(
          `UPDATE ${s}.dead_letters d SET fingerprint = x.f FROM unnest($1::text[], $2::text[]) AS x(i, f)
           WHERE d.id = x.i AND d.fingerprint IS NULL`,
          [rows.map((r) => r.id), rows.map((r) => errorFingerprint(r.error))],
        );
      }
    })().catch((err: unknown) => {
      this.backfill = undefined;
      throw err;
    });
    return this.backfill;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.db.end();
  }
}

function toEntry(row: Row): DeadLetterEntry {
  const body = new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength);
  return { ...row.entry, message: { ...row.entry.message, body } } as DeadLetterEntry;
}

function whereClause(filter: PostgresDeadLetterFilter = {}): { sql: string[]; params: (string | number)[] } {
  const sql: string[] = [];
  const params: (string | number)[] = [];
  const add = (condition: (p: string) => string, value: string | number | undefined): void => {
    if (value === undefined) return;
    params.push(value);
    sql.push(condition(`$${params.length}`));
  };
  add((p) => `grp = ${p}`, filter.group);
  add((p) => `topic = ${p}`, filter.topic);
  add((p) => `event_type = ${p}`, filter.eventType);
  add((p) => `handler = ${p}`, filter.handler);
  add((p) => `reason = ${p}`, filter.reason);
  add((p) => `fingerprint = ${p}`, filter.fingerprint);
  add((p) => `aggregate_id = ${p}`, filter.aggregateId);
  add((p) => `to_tsvector('simple', error) @@ plainto_tsquery('simple', ${p})`, filter.errorText);
  add((p) => `dead_lettered_at >= ${p}`, filter.since);
  add((p) => `dead_lettered_at < ${p}`, filter.until);
  return { sql, params };
}

function sqlWhere(conditions: string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}
