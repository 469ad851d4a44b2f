import {
  decodeCursor,
  matchesDeadLetterFilter,
  pageLimit,
  pageOrder,
  encodeCursor,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterKey,
  type DeadLetterPageRequest,
  type DeadLetterSearch,
  type DeadLetterSummary,
  type DeadLetterStore,
  type FailureCounts,
  type Page,
} from '../../../store/dead-letter-store.js';
import { summarizeEntry } from '../../../store/dead-letter-summary.js';
import type { RedisClient } from '../connection.js';
import { dimensionOf, RedisFailureCounts, UNINDEX_LUA } from './dead-letter-failures.js';
import {
  keysOf,
  RedisDeadLetterSearch,
  searchRecord,
  SEARCH_LUA,
  type SearchMatch,
} from './dead-letter-search.js';

/*
 * Layout (one hash tag, so the scripts can touch every key in a cluster):
 *   <base>:e  hash  id -> entry JSON (body base64)
 *   <base>:m  hash  id -> its index member
 *   <base>:z  zset  members `<deadLetteredAt, 15 digits>\0<id>`, all score 0: lexical order is the
 *             listing order (deadLetteredAt, then id), and a page cursor maps to an exclusive
 *             ZRANGE BYLEX bound, so paging is keyset-based and stable under inserts and removals.
 *   <base>:d, <base>:fr, <base>:f:<dim>  the failure counts (see dead-letter-failures.ts), moved in
 *             the same script as the entry.
 *   <base>:s, <base>:ia, <base>:ii  the search records and aggregate/event id zsets (see
 *             dead-letter-search.ts), written and removed in the same script as the entry.
 * KEYS of the add and remove scripts: e, m, z, d, fr, s, ia, ii (add: then the entry's dimension
 * zset); the zset of an entry's previous dimension is named from `d` inside the script (same hash
 * tag, so the same slot).
 */
const ADD = `${UNINDEX_LUA}${SEARCH_LUA}
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('ZREM', KEYS[3], old) end
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[4] then unindex(KEYS[4], KEYS[5], ARGV[7], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[9], ARGV[6], ARGV[1])
index_search(KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[8])
return 1
`;

const REMOVE = `${UNINDEX_LUA}${SEARCH_LUA}
local n = 0
for i = 2, #ARGV do
  local m = redis.call('HGET', KEYS[2], ARGV[i])
  if m then
    redis.call('ZREM', KEYS[3], m)
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
  unindex(KEYS[4], KEYS[5], ARGV[1], ARGV[i])
  unsearch(KEYS[6], KEYS[7], KEYS[8], ARGV[i])
end
return n
`;

/** Every dimension zset goes too, UNLINKed in slices (Lua's unpack has a stack limit). */
const PURGE_ALL = `
local n = redis.call('HLEN', KEYS[1])
local dims = redis.call('HKEYS', KEYS[5])
for i = 1, #dims, 500 do
  local slice = {}
  for j = i, math.min(i + 499, #dims) do slice[#slice + 1] = ARGV[1] .. dims[j] end
  redis.call('UNLINK', unpack(slice))
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return n
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

const CHUNK = 500;

function member(at: number, id: string): string {
  return `${String(Math.max(0, Math.floor(at))).padStart(15, '0')}\u0000${id}`;
}

function encode(entry: DeadLetterEntry): string {
  return JSON.stringify({
    ...entry,
    message: { ...entry.message, body: Buffer.from(entry.message.body).toString('base64') },
  });
}

function decode(json: string): DeadLetterEntry {
  const raw = JSON.parse(json) as DeadLetterEntry & { message: { body: string } };
  return {
    ...raw,
    message: { ...raw.message, body: new Uint8Array(Buffer.from(raw.message.body, 'base64')) },
  };
}

/** Fields answered by the per-dimension zsets; a filter of time alone walks the listing index. */
function byDimension(filter: DeadLetterFilter | undefined): filter is DeadLetterFilter {
  return (
    filter !== undefined &&
    (filter.group ??
      filter.topic ??
      filter.eventType ??
      filter.handler ??
      filter.reason ??
      filter.fingerprint) !== undefined
  );
}

/**
 * Dead-letter store on Redis. A filter on group, topic, event type, handler, reason or fingerprint
 * reads the zsets of the matching failure dimensions (ADR 0975); a time range alone walks the
 * listing index. Either way a page reads only its own entries, in both orders.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  private readonly entries: string;
  private readonly members: string;
  private readonly index: string;
  private readonly dims: string;
  private readonly registry: string;
  private readonly dimPrefix: string;
  private readonly records: string;
  private readonly aggregates: string;
  private readonly eventIds: string;
  private readonly failures: RedisFailureCounts;
  private readonly searches: RedisDeadLetterSearch;
  private readonly addScript: Script;
  private readonly removeScript: Script;
  private readonly purgeScript: Script;

  /** @param base key base including a hash tag, e.g. `{herald:dlq}`. */
  constructor(
    private readonly client: RedisClient,
    base: string,
  ) {
    this.entries = `${base}:e`;
    this.members = `${base}:m`;
    this.index = `${base}:z`;
    this.dims = `${base}:d`;
    this.registry = `${base}:fr`;
    this.dimPrefix = `${base}:f:`;
    this.records = `${base}:s`;
    this.aggregates = `${base}:ia`;
    this.eventIds = `${base}:ii`;
    client.defineCommand('herald_dlq_add', { lua: ADD, numberOfKeys: 9 });
    client.defineCommand('herald_dlq_remove', { lua: REMOVE, numberOfKeys: 8 });
    client.defineCommand('herald_dlq_purge', { lua: PURGE_ALL, numberOfKeys: 8 });
    const commands = client as unknown as Record<string, Script>;
    this.addScript = commands.herald_dlq_add!.bind(client);
    this.removeScript = commands.herald_dlq_remove!.bind(client);
    this.purgeScript = commands.herald_dlq_purge!.bind(client);
    this.failures = new RedisFailureCounts(client, {
      entries: this.entries,
      index: this.index,
      dims: this.dims,
      registry: this.registry,
      dimPrefix: this.dimPrefix,
    });
    this.searches = new RedisDeadLetterSearch(client, {
      entries: this.entries,
      index: this.index,
      dims: this.dims,
      records: this.records,
      aggregates: this.aggregates,
      events: this.eventIds,
    });
  }

  /** The keys every add, remove and purge script takes, in their order. */
  private keys(): string[] {
    return [
      this.entries,
      this.members,
      this.index,
      this.dims,
      this.registry,
      this.records,
      this.aggregates,
      this.eventIds,
    ];
  }

  async add(entry: DeadLetterEntry): Promise<void> {
    const dim = dimensionOf(entry);
    await this.addScript(
      ...this.keys(),
      this.dimPrefix + dim.id,
      entry.id,
      encode(entry),
      member(entry.deadLetteredAt, entry.id),
      dim.id,
      dim.descriptor,
      entry.deadLetteredAt,
      this.dimPrefix,
      searchRecord(entry, dim.fingerprint),
    );
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const json = await this.client.hget(this.entries, id);
    return json === null ? undefined : decode(json);
  }

  async list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>> {
    const limit = pageLimit(page);
    const newest = pageOrder(page) === 'newest';
    const after = decodeCursor(page?.cursor);
    const items: DeadLetterEntry[] = [];
    if (byDimension(filter)) {
      const { ids, more } = await this.failures.page(filter, after, newest, limit);
      if (ids.length > 0)
        for (const json of await this.client.hmget(this.entries, ...ids))
          if (json !== null) items.push(decode(json));
      const last = items[items.length - 1];
      return more && last ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) } : { items };
    }
    for await (const e of this.scan(filter, after && member(after.at, after.id), newest)) {
      if (items.length === limit) {
        const last = items[items.length - 1]!;
        return { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) };
      }
      items.push(e);
    }
    return { items };
  }

  async count(filter?: DeadLetterFilter): Promise<number> {
    if (!filter || Object.values(filter).every((v) => v === undefined)) return this.client.hlen(this.entries);
    if (byDimension(filter)) return this.failures.count(filter);
    const { min, max } = this.lexRange(filter);
    return this.client.zlexcount(this.index, min, max);
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += CHUNK) {
      n += (await this.removeScript(...this.keys(), this.dimPrefix, ...ids.slice(i, i + CHUNK))) as number;
    }
    return n;
  }

  async purge(filter?: DeadLetterFilter): Promise<number> {
    if (!filter || Object.values(filter).every((v) => v === undefined)) {
      return (await this.purgeScript(...this.keys(), this.dimPrefix)) as number;
    }
    if (byDimension(filter)) return this.remove(await this.failures.ids(filter));
    const ids: string[] = [];
    for await (const e of this.scan(filter)) ids.push(e.id);
    return this.remove(ids);
  }

  /**
   * Counts per failure dimension kept by the add and remove scripts; reads one entry per
   * fingerprint (its newest, for the sample error). Entries written before these counts existed are
   * indexed on first use, 1,000 per script call (ADR 0973).
   */
  async failureCounts(filter?: DeadLetterFilter): Promise<FailureCounts> {
    return this.failures.counts(filter);
  }

  /**
   * Matches free text, error text and ids without reading entries (ADR 0976): a Lua script walks
   * the listing index over the time range (an aggregate or event id: that id's members), 2,000
   * entries per call, testing each entry's search record (and its failure dimension when the search
   * has store fields); it returns how many match and only the page's ids, whose entries are then
   * read. Entries written before the records existed are indexed on first
   * use, 1,000 per script call.
   */
  async search(
    search: DeadLetterSearch,
    page?: DeadLetterPageRequest,
  ): Promise<Page<DeadLetterSummary> & { readonly total: number }> {
    const limit = pageLimit(page);
    const newest = pageOrder(page) === 'newest';
    const after = decodeCursor(page?.cursor);
    const { total, matches } = await this.matches(search, {
      newest,
      after,
      room: limit + 1,
      wantDims: false,
    });
    const ids = matches.slice(0, limit).map((m) => m.id);
    const items: DeadLetterSummary[] = [];
    if (ids.length > 0)
      for (const json of await this.client.hmget(this.entries, ...ids))
        if (json !== null) items.push(summarizeEntry(JSON.parse(json) as DeadLetterEntry));
    // An entry removed between the two reads is left out of the page (the total still counts it).
    const last = items[items.length - 1];
    return matches.length > limit && last
      ? { items, total, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items, total };
  }

  /** Every match of a search, oldest first, with its group, topic, type, reason and fingerprint: one walk. */
  async searchKeys(search: DeadLetterSearch): Promise<readonly DeadLetterKey[]> {
    const registry = await this.failures.matching({});
    const { matches } = await this.matches(search, { newest: false, room: Infinity, wantDims: true });
    return keysOf(matches, (dim) => registry.get(dim));
  }

  private async matches(
    search: DeadLetterSearch,
    options: {
      newest: boolean;
      after?: { at: number; id: string } | undefined;
      room: number;
      wantDims: boolean;
    },
  ): Promise<{ total: number; matches: SearchMatch[] }> {
    let dims: string[] | undefined;
    if (byDimension(search)) {
      dims = [...(await this.failures.matching(search)).keys()];
      if (dims.length === 0) return { total: 0, matches: [] };
    }
    return this.searches.matches(search, { ...options, dims });
  }

  /** The listing index's bounds for the filter's time range (since inclusive, until exclusive). */
  private lexRange(filter: DeadLetterFilter): { min: string; max: string } {
    return {
      min: filter.since !== undefined ? `[${member(filter.since, '')}` : '-',
      max: filter.until !== undefined ? `(${member(filter.until, '')}` : '+',
    };
  }

  /**
   * Entries in the filter's time range in listing order (`newest`: descending), strictly after the
   * index member `afterMember`.
   */
  private async *scan(
    filter: DeadLetterFilter = {},
    afterMember?: string,
    newest = false,
  ): AsyncGenerator<DeadLetterEntry> {
    let { min, max } = this.lexRange(filter);
    if (afterMember !== undefined) {
      if (!newest && (min === '-' || afterMember >= min.slice(1))) min = `(${afterMember}`;
      if (newest && (max === '+' || afterMember < max.slice(1))) max = `(${afterMember}`;
    }
    for (;;) {
      const batch = newest
        ? await this.client.zrevrangebylex(this.index, max, min, 'LIMIT', 0, CHUNK)
        : await this.client.zrangebylex(this.index, min, max, 'LIMIT', 0, CHUNK);
      if (batch.length === 0) return;
      const ids = batch.map((m) => m.slice(m.indexOf('\u0000') + 1));
      const values = await this.client.hmget(this.entries, ...ids);
      for (const json of values) {
        if (json === null) continue; // removed between the two reads
        const e = decode(json);
        if (matchesDeadLetterFilter(e, filter)) yield e;
      }
      if (batch.length < CHUNK) return;
      if (newest) max = `(${batch[batch.length - 1]!}`;
      else min = `(${batch[batch.length - 1]!}`;
    }
  }
}
