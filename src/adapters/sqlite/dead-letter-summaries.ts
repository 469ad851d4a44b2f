import {
  encodeCursor,
  pageLimit,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
  type Page,
} from '../../store/dead-letter-store.js';
import { SUMMARY_MESSAGE_MAX, stackTop, type DeadLetterSummary } from '../../store/dead-letter-summary.js';
import type { SqliteDatabase } from './database.js';
import { pageClause, sqlWhere, whereClause } from './dead-letter-where.js';

interface SummaryRow {
  id: string;
  reason: DeadLetterSummary['reason'];
  topic: string;
  grp: string;
  handler: string;
  event_type: string | null;
  dead_lettered_at: number;
  /** One JSON array, so SQLite parses each entry once. */
  fields: string;
}

type Fields = [string, string | null, string, string, string | null, number, number];

/**
 * `summaries()` of the SQLite dead-letter store: the body BLOB is never read and the entry JSON is
 * picked apart by SQLite (`json_extract`), so a page costs a fraction of `list`.
 */
export function listSummaries(
  db: SqliteDatabase,
  filter: DeadLetterFilter | undefined,
  page: DeadLetterPageRequest | undefined,
  /** Only these ids (a search's page, read by key). */
  ids?: readonly string[],
): Page<DeadLetterSummary> {
  const limit = pageLimit(page);
  const where = whereClause(filter);
  if (ids) {
    where.sql.push(`id IN (${ids.map(() => '?').join(', ')})`);
    where.params.push(...ids);
  }
  const order = pageClause(where, page);
  const rows = db.run('dead-letter summaries', () =>
    db.db
      .prepare(
        `SELECT id, reason, topic, grp, handler, event_type, dead_lettered_at,
                json_extract(entry, '$.message.id', '$.message.key', '$.error.name', '$.error.message',
                             '$.error.stack', '$.attempts', '$.firstFailedAt') AS fields
         FROM herald_dead_letters ${sqlWhere(where.sql)} ${order} LIMIT ?`,
      )
      .all(...where.params, limit + 1),
  ) as SummaryRow[];
  const items = rows.slice(0, limit).map(toSummary);
  const last = items[items.length - 1];
  return rows.length > limit && last
    ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
    : { items };
}

function toSummary(r: SummaryRow): DeadLetterSummary {
  const [messageId, key, errorName, errorMessage, stack, attempts, firstFailedAt] = JSON.parse(
    r.fields,
  ) as Fields;
  const top = stackTop(stack ?? undefined);
  return {
    id: r.id,
    reason: r.reason,
    topic: r.topic,
    group: r.grp,
    handler: r.handler,
    ...(r.event_type !== null ? { eventType: r.event_type } : {}),
    eventId: messageId,
    ...(key !== null ? { aggregateId: key } : {}),
    errorName,
    errorMessage: (errorMessage ?? '').slice(0, SUMMARY_MESSAGE_MAX),
    ...(top !== undefined ? { stackTop: top } : {}),
    attempts,
    firstFailedAt,
    deadLetteredAt: r.dead_lettered_at,
  };
}
