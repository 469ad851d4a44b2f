import {
  decodeCursor,
  pageOrder,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
} from '../../store/dead-letter-store.js';

/** The SQL conditions and parameters of a dead-letter filter, shared by listing and summaries. */
export function whereClause(filter: DeadLetterFilter = {}): { sql: string[]; params: (string | number)[] } {
  const sql: string[] = [];
  const params: (string | number)[] = [];
  const eq = (column: string, value: string | undefined): void => {
    if (value === undefined) return;
    sql.push(`${column} = ?`);
    params.push(value);
  };
  eq('grp', filter.group);
  eq('topic', filter.topic);
  eq('event_type', filter.eventType);
  eq('handler', filter.handler);
  eq('reason', filter.reason);
  eq('fingerprint', filter.fingerprint);
  if (filter.since !== undefined) {
    sql.push('dead_lettered_at >= ?');
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    sql.push('dead_lettered_at < ?');
    params.push(filter.until);
  }
  return { sql, params };
}

export function sqlWhere(conditions: string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

/**
 * The keyset seek and ORDER BY of a page in either order. A row value comparison, so an index
 * ending in (dead_lettered_at, id) seeks to the cursor (forwards or backwards) instead of scanning.
 */
export function pageClause(
  where: { sql: string[]; params: (string | number)[] },
  page: DeadLetterPageRequest | undefined,
): string {
  const newest = pageOrder(page) === 'newest';
  const after = decodeCursor(page?.cursor);
  if (after) {
    where.sql.push(`(dead_lettered_at, id) ${newest ? '<' : '>'} (?, ?)`);
    where.params.push(after.at, after.id);
  }
  return newest ? 'ORDER BY dead_lettered_at DESC, id DESC' : 'ORDER BY dead_lettered_at, id';
}
