import { ClosedError, ConcurrencyError } from '../../core/errors.js';
import type { EventEnvelope } from '../../core/event.js';
import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  type Page,
  type PageRequest,
} from '../../store/dead-letter-store.js';
import {
  toMillis,
  type AppendOptions,
  type EventQuery,
  type EventStore,
  type StoredEvent,
} from '../../store/event-store.js';
import { acquireDatabase, type DatabaseHandle, type SqliteDatabase } from './database.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';

interface Row {
  position: number;
  sequence: number;
  envelope: string;
}

/**
 * Event store in a Herald SQLite file. Appends are one IMMEDIATE transaction, so positions and
 * per-aggregate sequences stay gap-free and ordered across processes sharing the file.
 */
export class SqliteEventStore implements EventStore {
  private readonly handle: DatabaseHandle;
  private closed = false;

  constructor(options: SqliteConnectionOptions) {
    this.handle = acquireDatabase(resolveConnectionOptions(options));
  }

  private get db(): SqliteDatabase {
    if (this.closed) throw new ClosedError(`SqliteEventStore(${this.handle.database.path})`);
    return this.handle.database;
  }

  async append(events: readonly EventEnvelope[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    const db = this.db;
    return db.write('event append', () => {
      const lastSequence = (aggregateId: string): number =>
        (
          db
            .statement('SELECT max(sequence) AS s FROM herald_events WHERE aggregate_id = ?')
            .get(aggregateId) as {
            s: number | null;
          }
        ).s ?? 0;
      if (options.expectedSequence !== undefined) {
        const aggregates = new Set(events.map((e) => e.aggregateId));
        const [aggregateId] = aggregates;
        if (aggregates.size === 1 && aggregateId !== undefined) {
          const actual = lastSequence(aggregateId);
          if (actual !== options.expectedSequence)
            throw new ConcurrencyError(aggregateId, options.expectedSequence, actual);
        }
      }
      const exists = db.statement('SELECT 1 FROM herald_events WHERE id = ?');
      const insert = db.statement(
        `INSERT INTO herald_events (id, type, aggregate_id, tenant_id, time_ms, sequence, envelope)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      const stored: StoredEvent[] = [];
      for (const event of events) {
        if (exists.get(event.id) !== undefined) continue;
        const sequence = event.aggregateId === undefined ? 0 : lastSequence(event.aggregateId) + 1;
        const time = Date.parse(event.time);
        const position = Number(
          insert.run(
            event.id,
            event.type,
            event.aggregateId ?? null,
            event.tenantId ?? null,
            Number.isNaN(time) ? null : time,
            sequence,
            JSON.stringify(event),
          ).lastInsertRowid,
        );
        stored.push({ position, sequence, event: structuredClone(event) });
      }
      return stored;
    });
  }

  async readAggregate(aggregateId: string, fromSequence = 1): Promise<StoredEvent[]> {
    const db = this.db;
    const rows = db.run('event readAggregate', () =>
      db
        .statement(
          'SELECT position, sequence, envelope FROM herald_events WHERE aggregate_id = ? AND sequence >= ? ORDER BY sequence',
        )
        .all(aggregateId, fromSequence),
    ) as Row[];
    return rows.map(toStored);
  }

  async query(query: EventQuery = {}, page?: PageRequest): Promise<Page<StoredEvent>> {
    const db = this.db;
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor)?.at ?? 0;
    const sql = ['position > ?'];
    const params: (string | number)[] = [after];
    if (query.types && query.types.length > 0) {
      sql.push(`type IN (${query.types.map(() => '?').join(', ')})`);
      params.push(...query.types);
    }
    if (query.aggregateId !== undefined) {
      sql.push('aggregate_id = ?');
      params.push(query.aggregateId);
    }
    if (query.tenantId !== undefined) {
      sql.push('tenant_id = ?');
      params.push(query.tenantId);
    }
    // An unparseable event time matches every range, as in matchesEventQuery.
    if (query.from !== undefined) {
      sql.push('(time_ms IS NULL OR time_ms >= ?)');
      params.push(toMillis(query.from));
    }
    if (query.to !== undefined) {
      sql.push('(time_ms IS NULL OR time_ms < ?)');
      params.push(toMillis(query.to));
    }
    const rows = db.run('event query', () =>
      db.db
        .prepare(
          `SELECT position, sequence, envelope FROM herald_events WHERE ${sql.join(' AND ')} ORDER BY position LIMIT ?`,
        )
        .all(...params, limit + 1),
    ) as Row[];
    const items = rows.slice(0, limit).map(toStored);
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, nextCursor: encodeCursor(last.position, '') } : { items };
  }

  async *stream(afterPosition = 0, options: { batchSize?: number } = {}): AsyncIterable<StoredEvent> {
    const batch = Math.max(1, Math.min(options.batchSize ?? 500, 10_000));
    let position = afterPosition;
    for (;;) {
      // Read a batch at a time: no statement stays open across a yield, so writers are never blocked.
      const db = this.db;
      const rows = db.run('event stream', () =>
        db
          .statement(
            'SELECT position, sequence, envelope FROM herald_events WHERE position > ? ORDER BY position LIMIT ?',
          )
          .all(position, batch),
      ) as Row[];
      if (rows.length === 0) return;
      for (const row of rows) yield toStored(row);
      position = rows[rows.length - 1]!.position;
    }
  }

  async lastPosition(): Promise<number> {
    const db = this.db;
    const row = db.run('event lastPosition', () =>
      db.statement('SELECT max(position) AS p FROM herald_events').get(),
    ) as { p: number | null };
    return row.p ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handle.release();
  }
}

function toStored(row: Row): StoredEvent {
  return { position: row.position, sequence: row.sequence, event: JSON.parse(row.envelope) as EventEnvelope };
}
