import type { EventEnvelope } from '../contracts/envelope.js';
import type { Page, PageRequest } from './dead-letter-store.js';

/** An event as stored: the envelope plus its place in the store. */
export interface StoredEvent {
  /** Global position, strictly increasing in append order, starting at 1. */
  readonly position: number;
  /** Position within its aggregate, 1, 2, 3, ... (0 when the event has no aggregate). */
  readonly sequence: number;
  readonly event: EventEnvelope;
}

export interface EventQuery {
  readonly types?: readonly string[];
  readonly aggregateId?: string;
  readonly tenantId?: string;
  /** Event time >= from (RFC 3339 or Date). */
  readonly from?: Date | string;
  /** Event time < to. */
  readonly to?: Date | string;
}

export interface AppendOptions {
  /**
   * Optimistic concurrency for single-aggregate appends: the aggregate's current last sequence
   * (0 for a new aggregate). The append fails with ConcurrencyError when it differs.
   */
  readonly expectedSequence?: number;
}

/** Append-only log of events for audit, rebuilding state and replay. */
export interface EventStore {
  /** Appends atomically, in order; an event whose id is already stored is skipped (idempotent). */
  append(events: readonly EventEnvelope[], options?: AppendOptions): Promise<StoredEvent[]>;
  /** Events of one aggregate in sequence order, from `fromSequence` (inclusive, default 1). */
  readAggregate(aggregateId: string, fromSequence?: number): Promise<StoredEvent[]>;
  /** Events matching the query in position order, paged. */
  query(query?: EventQuery, page?: PageRequest): Promise<Page<StoredEvent>>;
  /** Every event after `afterPosition` (exclusive, default 0) in position order: the replay feed. */
  stream(afterPosition?: number, options?: { batchSize?: number }): AsyncIterable<StoredEvent>;
  /** Position of the last appended event (0 when empty). */
  lastPosition(): Promise<number>;
  close?(): Promise<void>;
}

/** True when the stored event satisfies every field of the query. */
export function matchesEventQuery(stored: StoredEvent, query: EventQuery = {}): boolean {
  const e = stored.event;
  if (query.types && query.types.length > 0 && !query.types.includes(e.type)) return false;
  if (query.aggregateId !== undefined && e.aggregateId !== query.aggregateId) return false;
  if (query.tenantId !== undefined && e.tenantId !== query.tenantId) return false;
  const t = Date.parse(e.time);
  if (query.from !== undefined && t < toMillis(query.from)) return false;
  if (query.to !== undefined && t >= toMillis(query.to)) return false;
  return true;
}

export function toMillis(value: Date | string): number {
  return value instanceof Date ? value.getTime() : Date.parse(value);
}
