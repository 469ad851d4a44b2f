import { ConcurrencyError } from '../../contracts/errors.js';
import type { EventEnvelope } from '../../contracts/envelope.js';
import { decodeCursor, encodeCursor, pageLimit, type Page, type PageRequest } from '../dead-letter-store.js';
import {
  matchesEventQuery,
  type AppendOptions,
  type EventQuery,
  type EventStore,
  type StoredEvent,
} from '../event-store.js';

/** Event store in process memory. */
export class MemoryEventStore implements EventStore {
  private readonly log: StoredEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly byAggregate = new Map<string, StoredEvent[]>();

  async append(events: readonly EventEnvelope[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    if (options.expectedSequence !== undefined) {
      const aggregates = new Set(events.map((e) => e.aggregateId));
      const [aggregateId] = aggregates;
      if (aggregates.size === 1 && aggregateId !== undefined) {
        const actual = this.byAggregate.get(aggregateId)?.length ?? 0;
        if (actual !== options.expectedSequence)
          throw new ConcurrencyError(aggregateId, options.expectedSequence, actual);
      }
    }
    const stored: StoredEvent[] = [];
    for (const event of events) {
      if (this.ids.has(event.id)) continue;
      let sequence = 0;
      if (event.aggregateId !== undefined) {
        let list = this.byAggregate.get(event.aggregateId);
        if (!list) this.byAggregate.set(event.aggregateId, (list = []));
        sequence = list.length + 1;
      }
      const s: StoredEvent = { position: this.log.length + 1, sequence, event: structuredClone(event) };
      this.log.push(s);
      this.ids.add(event.id);
      if (event.aggregateId !== undefined) this.byAggregate.get(event.aggregateId)!.push(s);
      stored.push(s);
    }
    return stored;
  }

  async readAggregate(aggregateId: string, fromSequence = 1): Promise<StoredEvent[]> {
    return (this.byAggregate.get(aggregateId) ?? [])
      .filter((s) => s.sequence >= fromSequence)
      .map((s) => structuredClone(s));
  }

  async query(query?: EventQuery, page?: PageRequest): Promise<Page<StoredEvent>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor)?.at ?? 0;
    const items: StoredEvent[] = [];
    for (let i = after; i < this.log.length; i++) {
      const s = this.log[i]!;
      if (!matchesEventQuery(s, query)) continue;
      if (items.length === limit) {
        const last = items[items.length - 1]!;
        return { items, nextCursor: encodeCursor(last.position, '') };
      }
      items.push(structuredClone(s));
    }
    return { items };
  }

  async *stream(afterPosition = 0, options: { batchSize?: number } = {}): AsyncIterable<StoredEvent> {
    const batch = options.batchSize ?? 500;
    let position = afterPosition;
    for (;;) {
      const slice = this.log.slice(position, position + batch);
      if (slice.length === 0) return;
      for (const s of slice) yield structuredClone(s);
      position = slice[slice.length - 1]!.position;
    }
  }

  async lastPosition(): Promise<number> {
    return this.log.length;
  }
}
