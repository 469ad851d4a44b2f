import type { DeadLetterFilter, FailureCounts } from '../../store/dead-letter-store.js';
import { errorFingerprint } from '../../store/dead-letter-fingerprint.js';
import { SUMMARY_MESSAGE_MAX, stackTop } from '../../store/dead-letter-summary.js';
import type { SqliteDatabase } from './database.js';
import { sqlWhere, whereClause } from './dead-letter-where.js';

const BACKFILL_BATCH = 1000;

/**
 * Fills in the fingerprint of rows written before schema version 3, a batch per write transaction,
 * so a file upgraded with a large DLQ pays once and other writers are not blocked for long.
 * The covering index makes "is there any left?" a single seek.
 */
export function backfillFingerprints(db: SqliteDatabase): void {
  const any = db.statement('SELECT 1 FROM herald_dead_letters WHERE fingerprint IS NULL LIMIT 1');
  while (db.run('dead-letter fingerprint check', () => any.get()) !== undefined) {
    const done = db.write('dead-letter fingerprint backfill', () => {
      const rows = db
        .statement(
          `SELECT id, json_extract(entry, '$.error.name', '$.error.message', '$.error.stack') AS e
           FROM herald_dead_letters WHERE fingerprint IS NULL LIMIT ${BACKFILL_BATCH}`,
        )
        .all() as { id: string; e: string }[];
      const set = db.statement('UPDATE herald_dead_letters SET fingerprint = ? WHERE id = ?');
      for (const r of rows) {
        const [name, message, stack] = JSON.parse(r.e) as [string, string, string | null];
        set.run(errorFingerprint({ name, message: message ?? '', ...(stack ? { stack } : {}) }), r.id);
      }
      return rows.length < BACKFILL_BATCH;
    });
    if (done) return;
  }
}

interface CountRow {
  fingerprint: string;
  topic: string;
  grp: string;
  event_type: string | null;
  reason: FailureCounts['counts'][number]['reason'];
  n: number;
  first: number;
  last: number;
}

/**
 * `failureCounts()` of the SQLite dead-letter store: one GROUP BY over the covering index
 * `herald_dead_letters_by_failure` (no entry is read), then the newest entry of each fingerprint for
 * its error text (one seek per fingerprint).
 */
export function failureCounts(db: SqliteDatabase, filter: DeadLetterFilter | undefined): FailureCounts {
  const where = whereClause(filter);
  return db.run('dead-letter failure counts', () => {
    const rows = db.db
      .prepare(
        `SELECT fingerprint, topic, grp, event_type, reason, count(*) AS n,
                min(dead_lettered_at) AS first, max(dead_lettered_at) AS last
         FROM herald_dead_letters INDEXED BY herald_dead_letters_by_failure ${sqlWhere(where.sql)}
         GROUP BY fingerprint, topic, grp, event_type, reason`,
      )
      .all(...where.params) as CountRow[];
    const newest = new Map<string, number>();
    for (const r of rows) newest.set(r.fingerprint, Math.max(newest.get(r.fingerprint) ?? 0, r.last));
    const sample = db.statement(
      `SELECT json_extract(entry, '$.error.name', '$.error.message', '$.error.stack') AS e
       FROM herald_dead_letters WHERE fingerprint = ? AND dead_lettered_at = ? LIMIT 1`,
    );
    return {
      counts: rows.map((r) => ({
        fingerprint: r.fingerprint,
        topic: r.topic,
        group: r.grp,
        ...(r.event_type !== null ? { eventType: r.event_type } : {}),
        reason: r.reason,
        count: r.n,
        firstSeen: r.first,
        lastSeen: r.last,
      })),
      samples: [...newest].flatMap(([fp, at]) => {
        const row = sample.get(fp, at) as { e: string } | undefined;
        if (!row) return [];
        const [errorName, message, stack] = JSON.parse(row.e) as [string, string | null, string | null];
        const top = stackTop(stack ?? undefined);
        return [
          {
            fingerprint: fp,
            errorName,
            message: (message ?? '').slice(0, SUMMARY_MESSAGE_MAX),
            ...(top !== undefined ? { stackTop: top } : {}),
          },
        ];
      }),
    };
  });
}
