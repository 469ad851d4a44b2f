import { headers as natsHeaders } from '@nats-io/transport-node';
import { ConcurrencyError, ConfigError } from '../../../core/errors.js';
import type { EventEnvelope } from '../../../core/event.js';
import {
  decodeCursor,
  encodeCursor,
  pageLimit,
  type Page,
  type PageRequest,
} from '../../../store/dead-letter-store.js';
import {
  matchesEventQuery,
  type AppendOptions,
  type EventQuery,
  type EventStore,
  type StoredEvent,
} from '../../../store/event-store.js';
import type { Connection } from '../connection.js';
import { token } from '../names.js';
import { scan } from './scan.js';
import type { StoreHandles } from './handles.js';

const SEQ = 'Herald-Seq';
const LEFT = 'Herald-Left';
/** A batch whose writer has not written its last event for this long is taken as abandoned. */
const ABANDONED_MS = 3000;

/**
 * Event store on a JetStream stream `<ns>-events`: one message per event on
 * `<ns>.events.<aggregate>.<type>` (aggregate `_` when none), so replay by aggregate or by type is
 * filtered by the server. The position is the stream sequence; the aggregate sequence is a
 * header. Appends are serialized by compare-and-set on the stream's last sequence
 * (docs/adr/0903-nats-event-store.md).
 */
export class NatsEventStore implements EventStore {
  constructor(
    private readonly h: StoreHandles,
    private readonly connection: Connection,
  ) {}

  private subject(ns: string, e: EventEnvelope): string {
    return `${ns}.events.${aggToken(e.aggregateId)}.${token(e.type)}`;
  }

  async append(events: readonly EventEnvelope[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const aggregates = [
      ...new Set(events.map((e) => e.aggregateId).filter((a): a is string => a !== undefined)),
    ];
    if (options.expectedSequence !== undefined && aggregates.length !== 1)
      throw new ConfigError('expectedSequence', 'applies to an append of events of one aggregate');
    const { js, jsm, names } = await this.h.get();
    const stream = names.eventsStream;
    for (let round = 0; ; round++) {
      const state = (await jsm.streams.info(stream)).state;
      const last = state.last_seq;
      if (last > 0 && state.messages > 0) {
        const tail = await jsm.direct.getMessage(stream, { seq: last }).catch(() => null);
        const left = Number(tail?.header.get(LEFT) || 0);
        if (tail && left > 0 && Date.now() - Date.parse(tail.timestamp) < ABANDONED_MS) {
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20)); // another append is mid-batch
          continue;
        }
      }
      const sequences = new Map<string, number>();
      for (const a of aggregates) {
        const m = await jsm.direct.getMessage(stream, {
          last_by_subj: `${names.namespace}.events.${aggToken(a)}.*`,
        });
        sequences.set(a, m ? Number(m.header.get(SEQ)) : 0);
      }
      if (options.expectedSequence !== undefined) {
        const actual = sequences.get(aggregates[0]!)!;
        if (actual !== options.expectedSequence)
          throw new ConcurrencyError(aggregates[0]!, options.expectedSequence, actual);
      }
      let expected = last;
      const stored: StoredEvent[] = [];
      let conflict = false;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        const sequence = e.aggregateId === undefined ? 0 : sequences.get(e.aggregateId)! + 1;
        const hdrs = natsHeaders();
        hdrs.set(SEQ, String(sequence));
        hdrs.set(LEFT, String(events.length - 1 - i));
        let ack;
        try {
          ack = await js.publish(this.subject(names.namespace, e), JSON.stringify(e), {
            msgID: e.id,
            expect: { lastSequence: expected },
            headers: hdrs,
          });
        } catch (err) {
          if (i === 0 && /wrong last sequence/i.test(String(err))) {
            conflict = true; // another writer went first: read again
            break;
          }
          this.connection.report(err, 'event store append');
          throw err;
        }
        if (ack.duplicate) continue; // already stored: skipped
        if (e.aggregateId !== undefined) sequences.set(e.aggregateId, sequence);
        expected = ack.seq;
        stored.push({ position: ack.seq, sequence, event: e });
      }
      if (!conflict) return stored;
      if (round > 1000) throw new Error('event store append: too much contention, try again');
    }
  }

  async readAggregate(aggregateId: string, fromSequence = 1): Promise<StoredEvent[]> {
    const { js, jsm, names } = await this.h.get();
    const out: StoredEvent[] = [];
    const filter = `${names.namespace}.events.${aggToken(aggregateId)}.*`;
    for await (const m of scan(js, jsm, names.eventsStream, filter, 1)) {
      const s = decode(m.seq, m.headers?.get(SEQ), m.data);
      if (s.sequence >= fromSequence) out.push(s);
    }
    return out;
  }

  async query(query: EventQuery = {}, page?: PageRequest): Promise<Page<StoredEvent>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor)?.at ?? 0;
    const { js, jsm, names } = await this.h.get();
    const ns = names.namespace;
    const filter =
      query.aggregateId !== undefined
        ? `${ns}.events.${aggToken(query.aggregateId)}.${query.types?.length === 1 ? token(query.types[0]!) : '*'}`
        : query.types?.length === 1
          ? `${ns}.events.*.${token(query.types[0]!)}`
          : `${ns}.events.>`;
    const items: StoredEvent[] = [];
    for await (const m of scan(js, jsm, names.eventsStream, filter, after + 1)) {
      const s = decode(m.seq, m.headers?.get(SEQ), m.data);
      if (!matchesEventQuery(s, query)) continue;
      if (items.length === limit) {
        const lastItem = items[items.length - 1]!;
        return { items, nextCursor: encodeCursor(lastItem.position, '') };
      }
      items.push(s);
    }
    return { items };
  }

  async *stream(afterPosition = 0, options: { batchSize?: number } = {}): AsyncIterable<StoredEvent> {
    const { js, jsm, names } = await this.h.get();
    const batch = Math.min(Math.max(options.batchSize ?? 256, 1), 1000);
    for await (const m of scan(
      js,
      jsm,
      names.eventsStream,
      `${names.namespace}.events.>`,
      afterPosition + 1,
      batch,
    )) {
      yield decode(m.seq, m.headers?.get(SEQ), m.data);
    }
  }

  async lastPosition(): Promise<number> {
    const { jsm, names } = await this.h.get();
    return (await jsm.streams.info(names.eventsStream)).state.last_seq;
  }
}

function aggToken(aggregateId: string | undefined): string {
  return aggregateId === undefined ? '_' : `a${token(aggregateId)}`;
}

function decode(seq: number, sequence: string | undefined, data: Uint8Array): StoredEvent {
  return {
    position: seq,
    sequence: Number(sequence ?? 0),
    event: JSON.parse(new TextDecoder().decode(data)) as EventEnvelope,
  };
}
