import { ConcurrencyError } from '../../../core/errors.js';
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
import type { RedisClient } from '../connection.js';

/*
 * Layout (one hash tag for all keys, so an append is one atomic script even in a cluster):
 *   <base>:n         last position (INCR)
 *   <base>:e         hash position -> `<sequence>\n<envelope JSON>`; positions are dense 1..n
 *   <base>:i         hash event id -> position (deduplication)
 *   <base>:q         hash aggregate id -> last sequence
 *   <base>:a:<agg>   list of the aggregate's positions in sequence order
 */
const APPEND = `
local n, e, ids, q = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if ARGV[1] ~= '' then
  local actual = tonumber(redis.call('HGET', q, ARGV[2]) or '0')
  if actual ~= tonumber(ARGV[1]) then return { -1, actual } end
end
local out = {}
for i = 3, #ARGV, 4 do
  local id, list, agg, json = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  if redis.call('HEXISTS', ids, id) == 0 then
    local pos = redis.call('INCR', n)
    local seq = 0
    if list > 0 then
      seq = redis.call('HINCRBY', q, agg, 1)
      redis.call('RPUSH', KEYS[4 + list], pos)
    end
    redis.call('HSET', e, pos, seq .. '\\n' .. json)
    redis.call('HSET', ids, id, pos)
    out[#out + 1] = (i - 3) / 4
    out[#out + 1] = pos
    out[#out + 1] = seq
  end
end
return out
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

const CHUNK = 500;

/** Event store on Redis: an append-only hash of dense positions plus a list per aggregate. */
export class RedisEventStore implements EventStore {
  private readonly counter: string;
  private readonly events: string;
  private readonly ids: string;
  private readonly sequences: string;
  private readonly appendScript: Script;

  /** @param base key base including a hash tag, e.g. `{herald:events}`. */
  constructor(
    private readonly client: RedisClient,
    private readonly base: string,
  ) {
    this.counter = `${base}:n`;
    this.events = `${base}:e`;
    this.ids = `${base}:i`;
    this.sequences = `${base}:q`;
    client.defineCommand('herald_events_append', { lua: APPEND });
    this.appendScript = (client as unknown as Record<string, Script>).herald_events_append!.bind(client);
  }

  async append(events: readonly EventEnvelope[], options: AppendOptions = {}): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const aggregates = [...new Set(events.map((e) => e.aggregateId))];
    const lists = aggregates.filter((a): a is string => a !== undefined);
    const keys = [
      this.counter,
      this.events,
      this.ids,
      this.sequences,
      ...lists.map((a) => this.aggregateKey(a)),
    ];
    const [only] = aggregates;
    const check = options.expectedSequence !== undefined && aggregates.length === 1 && only !== undefined;
    const args: (string | number)[] = [check ? options.expectedSequence! : '', check ? only : ''];
    const bodies = events.map((e) => JSON.stringify(e));
    events.forEach((e, i) => {
      const list = e.aggregateId === undefined ? 0 : lists.indexOf(e.aggregateId) + 1;
      args.push(e.id, list, e.aggregateId ?? '', bodies[i]!);
    });
    const reply = (await this.appendScript(keys.length, ...keys, ...args)) as number[];
    if (reply[0] === -1) throw new ConcurrencyError(only!, options.expectedSequence!, reply[1]!);
    const stored: StoredEvent[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      stored.push({
        position: reply[i + 1]!,
        sequence: reply[i + 2]!,
        event: JSON.parse(bodies[reply[i]!]!) as EventEnvelope,
      });
    }
    return stored;
  }

  async readAggregate(aggregateId: string, fromSequence = 1): Promise<StoredEvent[]> {
    const positions = await this.client.lrange(
      this.aggregateKey(aggregateId),
      Math.max(0, fromSequence - 1),
      -1,
    );
    return this.load(positions);
  }

  async query(query: EventQuery = {}, page?: PageRequest): Promise<Page<StoredEvent>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor)?.at ?? 0;
    const items: StoredEvent[] = [];
    const source =
      query.aggregateId !== undefined
        ? this.aggregateFeed(query.aggregateId, after)
        : this.feed(after, CHUNK);
    for await (const s of source) {
      if (!matchesEventQuery(s, query)) continue;
      if (items.length === limit) {
        const last = items[items.length - 1]!;
        return { items, nextCursor: encodeCursor(last.position, '') };
      }
      items.push(s);
    }
    return { items };
  }

  stream(afterPosition = 0, options: { batchSize?: number } = {}): AsyncIterable<StoredEvent> {
    return this.feed(afterPosition, Math.max(1, Math.min(options.batchSize ?? CHUNK, 10_000)));
  }

  async lastPosition(): Promise<number> {
    return Number((await this.client.get(this.counter)) ?? 0);
  }

  private async *feed(afterPosition: number, batchSize: number): AsyncGenerator<StoredEvent> {
    let position = afterPosition;
    for (;;) {
      const last = await this.lastPosition();
      if (position >= last) return;
      const to = Math.min(last, position + batchSize);
      const positions: number[] = [];
      for (let p = position + 1; p <= to; p++) positions.push(p);
      yield* await this.load(positions);
      position = to;
    }
  }

  private async *aggregateFeed(aggregateId: string, afterPosition: number): AsyncGenerator<StoredEvent> {
    const positions = (await this.client.lrange(this.aggregateKey(aggregateId), 0, -1))
      .map(Number)
      .filter((p) => p > afterPosition);
    for (let i = 0; i < positions.length; i += CHUNK) yield* await this.load(positions.slice(i, i + CHUNK));
  }

  private async load(positions: readonly (number | string)[]): Promise<StoredEvent[]> {
    if (positions.length === 0) return [];
    const values = await this.client.hmget(this.events, ...positions.map(String));
    const out: StoredEvent[] = [];
    values.forEach((value, i) => {
      if (value === null) return;
      const nl = value.indexOf('\n');
      out.push({
        position: Number(positions[i]),
        sequence: Number(value.slice(0, nl)),
        event: JSON.parse(value.slice(nl + 1)) as EventEnvelope,
      });
    });
    return out;
  }

  private aggregateKey(aggregateId: string): string {
    return `${this.base}:a:${aggregateId}`;
  }
}
