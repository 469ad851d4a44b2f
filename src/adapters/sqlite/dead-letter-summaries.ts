import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  type DeadLetterFilter,
  type Page,
  type PageRequest,
} from '../../store/dead-letter-store.js';
import { SUMMARY_MESSAGE_MAX, stackTop, type DeadLetterSummary } from '../../store/dead-letter-summary.js';
import type { SqliteDatabase } from './database.js';
import { sqlWhere, whereClause } from './dead-letter-store.js';

interface SummaryRow {
  id: string;
  reason: DeadLetterSummary['reason'];
  topic: string;
  grp: string;
  handler: string;
  event_type: string | null;
  dead_lettered_at: number;
  message_id: string;
  message_key: string | null;
  error_name: string;
  error_message: string;
  error_stack: string | null;
  attempts: number;
  first_failed_at: number;
}

/**
 * `summaries()` of the SQLite dead-letter store: the body BLOB is never read and the entry JSON is
 * picked apart by SQLite (`json_extract`), so a page costs a fraction of `list`.
 */
export function listSummaries(
  db: SqliteDatabase,
  filter: DeadLetterFilter | undefined,
  page: PageRequest | undefined,
): Page<DeadLetterSummary> {
  const limit = pageLimit(page);
  const after = decodeCursor(page?.cursor);
  const where = whereClause(filter);
  if (after) {
    where.sql.push('(dead_lettered_at > ? OR (dead_lettered_at = ? AND id > ?))');
    where.params.push(after.at, after.at, after.id);
  }
  const rows = db.run('dead-letter summaries', () =>
    db.db
      .prepare(
        `SELECT id, reason, topic, grp, handler, event_type, dead_lettered_at,
                json_extract(entry, '$.message.id') AS message_id,
                json_extract(entry, '$.message.key') AS message_key,
                json_extract(entry, '$.error.name') AS error_name,
                substr(json_extract(entry, '$.error.message'), 1, ${SUMMARY_MESSAGE_MAX}) AS error_message,
                substr(json_extract(entry, '$.error.stack'), 1, 4000) AS error_stack,
                json_extract(entry, '$.attempts') AS attempts,
                json_extract(entry, '$.firstFailedAt') AS first_failed_at
         FROM herald_dead_letters ${sqlWhere(where.sql)} ORDER BY dead_lettered_at, id LIMIT ?`,
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
  const top = stackTop(r.error_stack ?? undefined);
  return {
    id: r.id,
    reason: r.reason,
    topic: r.topic,
    group: r.grp,
    handler: r.handler,
    ...(r.event_type !== null ? { eventType: r.event_type } : {}),
    eventId: r.message_id,
    ...(r.message_key !== null ? { aggregateId: r.message_key } : {}),
    errorName: r.error_name,
    errorMessage: r.error_message ?? '',
    ...(top !== undefined ? { stackTop: top } : {}),
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at,
    deadLetteredAt: r.dead_lettered_at,
  };
}
