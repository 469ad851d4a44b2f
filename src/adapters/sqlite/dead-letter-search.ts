import {
  compareDeadLetters,
  decodeCursor,
  encodeCursor,
  pageLimit,
  pageOrder,
  type DeadLetterKey,
  type DeadLetterPageRequest,
  type DeadLetterSearch,
  type Page,
} from '../../store/dead-letter-store.js';
import type { DeadLetterSummary } from '../../store/dead-letter-summary.js';
import type { SqliteDatabase } from './database.js';
import { listSummaries } from './dead-letter-summaries.js';
import { sqlWhere, whereClause } from './dead-letter-where.js';

/** `<error name>: <error message>` as the console's index searches it (message cut at 500). */
const ERROR_TEXT = `json_extract(entry, '$.error.name') || ': ' || substr(coalesce(json_extract(entry, '$.error.message'), ''), 1, 500)`;

/** The fields free text is matched against, in the order and with the separators of the index. */
const SEARCH_TEXT = [
  'id',
  `json_extract(entry, '$.message.id')`,
  `coalesce(json_extract(entry, '$.message.key'), '')`,
  `coalesce(event_type, '')`,
  'grp',
  'topic',
  'handler',
  'fingerprint',
  ERROR_TEXT,
].join(` || char(10) || `);

/** JavaScript's toLowerCase, so non-ASCII text matches as the index matches it (SQLite's lower() is ASCII only). */
const LOWER = 'herald_lower';
const registered = new WeakSet<object>();

function lower(db: SqliteDatabase): string {
  if (!registered.has(db.db)) {
    db.db.function(LOWER, { deterministic: true }, (v: unknown) =>
      typeof v === 'string' ? v.toLowerCase() : v,
    );
    registered.add(db.db);
  }
  return LOWER;
}

/**
 * `search()` of the SQLite dead-letter store: one scan that matches the text in SQL and returns only
 * the keys of matching rows (their count is the total), then the page's summaries by id. About a
 * quarter of a second at 100,000 entries, every time, and no memory held between searches.
 * Rows must have their fingerprint (the caller fills in rows from before schema version 3).
 */
export function searchSummaries(
  db: SqliteDatabase,
  search: DeadLetterSearch,
  page: DeadLetterPageRequest | undefined,
): Page<DeadLetterSummary> & { total: number } {
  const limit = pageLimit(page);
  const newest = pageOrder(page) === 'newest';
  const after = decodeCursor(page?.cursor);
  const where = searchWhere(db, search);
  const keys = db.run('dead-letter search', () =>
    db.db
      .prepare(
        `SELECT id, dead_lettered_at AS deadLetteredAt FROM herald_dead_letters ${sqlWhere(where.sql)}`,
      )
      .all(...where.params),
  ) as { id: string; deadLetteredAt: number }[];
  const sign = newest ? -1 : 1;
  const rest = after
    ? keys.filter((k) => sign * compareDeadLetters(k, { deadLetteredAt: after.at, id: after.id }) > 0)
    : keys;
  rest.sort((a, b) => sign * compareDeadLetters(a, b));
  const ids = rest.slice(0, limit).map((k) => k.id);
  const byId = new Map<string, DeadLetterSummary>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    for (const s of listSummaries(db, undefined, { limit: chunk.length }, chunk).items) byId.set(s.id, s);
  }
  // A row removed between the two reads is left out of the page (the total still counts it).
  const items = ids.flatMap((id) => byId.get(id) ?? []);
  const last = items[items.length - 1];
  return rest.length > limit && last
    ? { items, total: keys.length, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
    : { items, total: keys.length };
}

/**
 * `searchKeys()` of the SQLite store: the same scan as a search, returning every match's keys
 * oldest first, so a dry run, replay, purge or export by a search scans once.
 */
export function searchKeys(db: SqliteDatabase, search: DeadLetterSearch): DeadLetterKey[] {
  const where = searchWhere(db, search);
  const rows = db.run('dead-letter search keys', () =>
    db.db
      .prepare(
        `SELECT id, dead_lettered_at AS deadLetteredAt, grp AS "group", topic, event_type AS eventType, reason, fingerprint FROM herald_dead_letters ${sqlWhere(where.sql)} ORDER BY dead_lettered_at, id`,
      )
      .all(...where.params),
  ) as (Omit<DeadLetterKey, 'eventType'> & { eventType: string | null })[];
  return rows.map(({ eventType, ...k }) => (eventType === null ? k : { ...k, eventType }));
}

/** The conditions of a search: the filter's columns, then the ids and text matched in SQL. */
function searchWhere(
  db: SqliteDatabase,
  search: DeadLetterSearch,
): { sql: string[]; params: (string | number)[] } {
  const where = whereClause(search);
  const fn = lower(db);
  if (search.aggregateId !== undefined) {
    where.sql.push(`json_extract(entry, '$.message.key') = ?`);
    where.params.push(search.aggregateId);
  }
  if (search.eventId !== undefined) {
    where.sql.push(`json_extract(entry, '$.message.id') = ?`);
    where.params.push(search.eventId);
  }
  if (search.errorText !== undefined) {
    where.sql.push(`instr(${fn}(${ERROR_TEXT}), ?) > 0`);
    where.params.push(search.errorText.toLowerCase());
  }
  if (search.text !== undefined) {
    where.sql.push(`instr(${fn}(${SEARCH_TEXT}), ?) > 0`);
    where.params.push(search.text.toLowerCase());
  }
  return where;
}
