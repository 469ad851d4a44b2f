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
import { num, type PostgresConnection } from './connection.js';

interface Row {
  position: string;
  sequence: number;
  envelope: EventEnvelope;
}

/**
 * Event store in PostgreSQL. Appends hold a transaction-scoped advisory lock of the store, so
 * positions are handed out in commit order: a reader following `stream()` never sees a position
 * appear behind one it has already passed. Queries by type, aggregate and time range use indexes.
 */
export class PostgresEventStore implements EventStore {
  private closed = false;

  constructor(
    private readonly db: PostgresConnection,
    private readonly ownsConnection = false,
  ) {}

  private get s(): string {
    if (this.closed) throw new ClosedError(`PostgresEventStore(${this.db.display})`);
    return this.db.s;
  }

  async append(events: readonly EventEnvelope[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    const s = this.s;
    if (events.length === 0) return [];
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`herald.events:${this.db.schema}`]);
      const lastSequence = async (aggregateId: string): Promise<number> =>
        num(
          (
            await client.query<{ s: number | null }>(
              `SELECT max(sequence) AS s FROM ${s}.events WHERE aggregate_id = $1`,
              [aggregateId],
            )
          ).rows[0]!.s,
        );
      if (options.expectedSequence !== undefined) {
        const aggregates = new Set(events.map((e) => e.aggregateId));
        const [aggregateId] = aggregates;
        if (aggregates.size === 1 && aggregateId !== undefined) {
          const actual = await lastSequence(aggregateId);
          if (actual !== options.expectedSequence)
            throw new ConcurrencyError(aggregateId, options.expectedSequence, actual);
        }
      }
      const existing = new Set(
        (
          await client.query<{ id: string }>(`SELECT id FROM ${s}.events WHERE id = ANY($1::text[])`, [
            events.map((e) => e.id),
          ])
        ).rows.map((r) => r.id),
      );
      const sequences = new Map<string, number>();
      const stored: StoredEvent[] = [];
      for (const event of events) {
        if (existing.has(event.id)) continue;
        existing.add(event.id);
        let sequence = 0;
        if (event.aggregateId !== undefined) {
          sequence = (sequences.get(event.aggregateId) ?? (await lastSequence(event.aggregateId))) + 1;
          sequences.set(event.aggregateId, sequence);
        }
        const time = Date.parse(event.time);
        const { rows } = await client.query<{ position: string }>(
          `INSERT INTO ${s}.events (id, type, aggregate_id, tenant_id, time_ms, sequence, envelope)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING position`,
          [
            event.id,
            event.type,
            event.aggregateId ?? null,
            event.tenantId ?? null,
            Number.isNaN(time) ? null : time,
            sequence,
            JSON.stringify(event),
          ],
        );
        stored.push({ position: num(rows[0]!.position), sequence, event: structuredClone(event) });
      }
      await client.query('COMMIT');
      return stored;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async readAggregate(aggregateId: string, fromSequence = 1): Promise<StoredEvent[]> {
    const { rows } = await this.db.pool.query<Row>(
      `SELECT position, sequence, envelope FROM ${this.s}.events
        WHERE aggregate_id = $1 AND sequence >= $2 ORDER BY sequence`,
      [aggregateId, fromSequence],
    );
    return rows.map(toStored);
  }

  async query(query: EventQuery = {}, page?: PageRequest): Promise<Page<StoredEvent>> {
    const s = this.s;
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor)?.at ?? 0;
    const params: unknown[] = [after];
    const sql = ['position > $1'];
    const add = (condition: (p: string) => string, value: unknown): void => {
      params.push(value);
      sql.push(condition(`$${params.length}`));
    };
    if (query.types && query.types.length > 0) add((p) => `type = ANY(${p}::text[])`, [...query.types]);
    if (query.aggregateId !== undefined) add((p) => `aggregate_id = ${p}`, query.aggregateId);
    if (query.tenantId !== undefined) add((p) => `tenant_id = ${p}`, query.tenantId);
    // An unparseable event time matches every range, as in matchesEventQuery.
    if (query.from !== undefined) add((p) => `(time_ms IS NULL OR time_ms >= ${p})`, toMillis(query.from));
    if (query.to !== undefined) add((p) => `(time_ms IS NULL OR time_ms < ${p})`, toMillis(query.to));
    params.push(limit + 1);
    const { rows } = await this.db.pool.query<Row>(
      `SELECT position, sequence, envelope FROM ${s}.events WHERE ${sql.join(' AND ')}
        ORDER BY position LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(toStored);
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, nextCursor: encodeCursor(last.position, '') } : { items };
  }

  async *stream(afterPosition = 0, options: { batchSize?: number } = {}): AsyncIterable<StoredEvent> {
    const batch = Math.max(1, Math.min(options.batchSize ?? 500, 10_000));
    let position = afterPosition;
    for (;;) {
      const { rows } = await this.db.pool.query<Row>(
        `SELECT position, sequence, envelope FROM ${this.s}.events WHERE position > $1 ORDER BY position LIMIT $2`,
        [position, batch],
      );
      if (rows.length === 0) return;
      for (const row of rows) yield toStored(row);
      position = num(rows[rows.length - 1]!.position);
    }
  }

  async lastPosition(): Promise<number> {
    const { rows } = await this.db.pool.query<{ p: string | null }>(
      `SELECT max(position) AS p FROM ${this.s}.events`,
    );
    return num(rows[0]!.p);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.db.end();
  }
}

function toStored(row: Row): StoredEvent {
  return { position: num(row.position), sequence: row.sequence, event: row.envelope };
}
