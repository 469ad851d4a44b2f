import { createHash } from 'node:crypto';
import type { DeadLetterEntry, DeadLetterFilter, FailureCounts } from '../../../store/dead-letter-store.js';
import { errorFingerprint } from '../../../store/dead-letter-fingerprint.js';
import { SUMMARY_MESSAGE_MAX, stackTop } from '../../../store/dead-letter-summary.js';
import type { RedisClient } from '../connection.js';
import { reconcileDerived } from './dead-letter-backfill.js';

/*
 * Failure counts kept at write time (ADR 0973). Every entry belongs to one *dimension*: its
 * (fingerprint, topic, group, event type, reason, handler). Keys, under the store's hash tag:
 *   <base>:d        hash  id -> dimension id (16 hex digits of the SHA-1 of its descriptor)
 *   <base>:fr       hash  dimension id -> descriptor JSON [fp, topic, group, eventType|null, reason, handler]
 *   <base>:f:<dim>  zset  ids of the dimension's entries, scored by deadLetteredAt
 * A dimension's zset is its count (ZCARD, or ZCOUNT over a time range) and its first/last time
 * (the ends of the zset), so the counts are the set of entries itself and cannot drift: adding an
 * id twice or removing an absent one changes nothing, and removing the oldest entry moves
 * `firstSeen` without reading any entry. The handler is part of the dimension so a handler filter
 * is answered too; dimensions that differ only by handler are summed in the answer.
 * The scripts that add and remove entries move the id between zsets in the same call.
 */

/** Lua `unindex(d, fr, prefix, id)`: takes `id` out of its dimension; the registry entry goes with the dimension's last id. */
export const UNINDEX_LUA = `
local function unindex(d, fr, prefix, id)
  local dim = redis.call('HGET', d, id)
  if not dim then return end
  local k = prefix .. dim
  redis.call('ZREM', k, id)
  redis.call('HDEL', d, id)
  if redis.call('EXISTS', k) == 0 then redis.call('HDEL', fr, dim) end
end
`;

/**
 * KEYS: entries, dimension map, registry. ARGV: dimension key prefix, then (id, dim, descriptor,
 * deadLetteredAt) per entry. Indexes entries written before the counts existed; skips ids that are
 * gone or already indexed (a concurrent `add` indexed them itself).
 */
const INDEX = `
local prefix = ARGV[1]
local n = 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 and redis.call('HEXISTS', KEYS[2], id) == 0 then
    redis.call('HSET', KEYS[2], id, ARGV[i + 1])
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 2])
    redis.call('ZADD', prefix .. ARGV[i + 1], ARGV[i + 3], id)
    n = n + 1
  end
end
return n
`;

/** KEYS: entries, dimension map, registry. ARGV: prefix, ids. Unindexes ids whose entry is gone. */
const DROP_ORPHANS = `${UNINDEX_LUA}
local n = 0
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    unindex(KEYS[2], KEYS[3], ARGV[1], ARGV[i])
    n = n + 1
  end
end
return n
`;

/**
 * KEYS: entries. ARGV: prefix, min score, max score, then (dim, fingerprint) pairs. Returns
 * `{rows, samples}`: per non-empty dimension {dim, count, first, last}; per fingerprint the error of
 * its newest entry (the greatest (deadLetteredAt, id), as the console index picks it). One script,
 * so counts and samples are one snapshot.
 */
const COUNTS = `
local prefix, min, max = ARGV[1], ARGV[2], ARGV[3]
local rows, best, order = {}, {}, {}
for i = 4, #ARGV, 2 do
  local k = prefix .. ARGV[i]
  local n = redis.call('ZCOUNT', k, min, max)
  if n > 0 then
    local first = redis.call('ZRANGEBYSCORE', k, min, max, 'WITHSCORES', 'LIMIT', 0, 1)
    local last = redis.call('ZREVRANGEBYSCORE', k, max, min, 'WITHSCORES', 'LIMIT', 0, 1)
    rows[#rows + 1] = {ARGV[i], n, first[2], last[2]}
    local fp, at = ARGV[i + 1], tonumber(last[2])
    local b = best[fp]
    if not b then order[#order + 1] = fp end
    if not b or at > b[1] or (at == b[1] and last[1] > b[2]) then best[fp] = {at, last[1]} end
  end
end
local samples = {}
for _, fp in ipairs(order) do
  local json = redis.call('HGET', KEYS[1], best[fp][2])
  if json then
    local e = cjson.decode(json).error
    local message = type(e.message) == 'string' and e.message or ''
    local stack = type(e.stack) == 'string' and e.stack or ''
    samples[#samples + 1] = {fp, tostring(e.name), message, stack}
  end
end
return {rows, samples}
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** A dimension as stored in the registry. */
export type Descriptor = [
  fingerprint: string,
  topic: string,
  group: string,
  eventType: string | null,
  reason: DeadLetterEntry['reason'],
  handler: string,
];

/** The dimension of an entry: its id (used in key names) and its descriptor JSON. */
export function dimensionOf(entry: DeadLetterEntry): { id: string; descriptor: string; fingerprint: string } {
  const fp = errorFingerprint(entry.error);
  const d: Descriptor = [fp, entry.topic, entry.group, entry.eventType ?? null, entry.reason, entry.handler];
  const descriptor = JSON.stringify(d);
  return {
    id: createHash('sha1').update(descriptor).digest('hex').slice(0, 16),
    descriptor,
    fingerprint: fp,
  };
}

export interface FailureKeys {
  readonly entries: string;
  /** The listing index (zset of `<time>\0<id>` members). */
  readonly index: string;
  readonly dims: string;
  readonly registry: string;
  /** Prefix of the per-dimension zsets; the dimension id follows. */
  readonly dimPrefix: string;
}

/** `failureCounts` and the one-time indexing of entries written before it existed. */
export class RedisFailureCounts {
  private readonly indexScript: Script;
  private readonly orphansScript: Script;
  private readonly countsScript: Script;
  private reconciling: Promise<void> | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: FailureKeys,
  ) {
    client.defineCommand('herald_dlq_fc_index', { lua: INDEX, numberOfKeys: 3 });
    client.defineCommand('herald_dlq_fc_orphans', { lua: DROP_ORPHANS, numberOfKeys: 3 });
    client.defineCommand('herald_dlq_fc_counts', { lua: COUNTS, numberOfKeys: 1 });
    const commands = client as unknown as Record<string, Script>;
    this.indexScript = commands.herald_dlq_fc_index!.bind(client);
    this.orphansScript = commands.herald_dlq_fc_orphans!.bind(client);
    this.countsScript = commands.herald_dlq_fc_counts!.bind(client);
  }

  async counts(filter: DeadLetterFilter = {}): Promise<FailureCounts> {
    const dims = await this.matching(filter);
    const args: string[] = [];
    for (const [dim, d] of dims) args.push(dim, d[0]);
    if (args.length === 0) return { counts: [], samples: [] };
    const { min, max } = scoreRange(filter);
    const [rows, samples] = (await this.countsScript(
      this.keys.entries,
      this.keys.dimPrefix,
      min,
      max,
      ...args,
    )) as [[string, number, string, string][], [string, string, string, string][]];
    return { counts: mergeHandlers(rows, dims), samples: samples.map(toSample) };
  }

  /** The dimensions whose entries match the filter's fields (time aside), indexing first if stale. */
  async matching(filter: DeadLetterFilter): Promise<Map<string, Descriptor>> {
    let registry = await this.registry();
    if (registry.stale) {
      await this.reconcile();
      registry = await this.registry();
    }
    const dims = new Map<string, Descriptor>();
    for (const [dim, json] of Object.entries(registry.dims)) {
      const d = JSON.parse(json) as Descriptor;
      if (matches(d, filter)) dims.set(dim, d);
    }
    return dims;
  }

  /** How many entries match: ZCOUNT of each matching dimension, one round trip. */
  async count(filter: DeadLetterFilter): Promise<number> {
    const dims = [...(await this.matching(filter)).keys()];
    if (dims.length === 0) return 0;
    const { min, max } = scoreRange(filter);
    const pipe = this.client.pipeline();
    for (const dim of dims) pipe.zcount(this.keys.dimPrefix + dim, min, max);
    return replies<number>(await pipe.exec()).reduce((a, b) => a + b, 0);
  }

  /**
   * The ids of up to `limit` matching entries in listing order (`newest`: descending), strictly
   * after `after`, plus whether more follow: each matching dimension's zset is read from the
   * cursor's score for `limit + 1` ids, and the runs are merged. Ids with exactly the cursor's score
   * are read whole and compared by id (the zset orders equal scores by id too), so entries sharing
   * a millisecond page correctly; that read costs as many ids as share it.
   */
  async page(
    filter: DeadLetterFilter,
    after: { at: number; id: string } | undefined,
    newest: boolean,
    limit: number,
  ): Promise<{ ids: string[]; more: boolean }> {
    const dims = [...(await this.matching(filter)).keys()];
    if (dims.length === 0) return { ids: [], more: false };
    let { min, max } = scoreRange(filter);
    let ties = false;
    if (after) {
      const inRange =
        (filter.since === undefined || after.at >= filter.since) &&
        (filter.until === undefined || after.at < filter.until);
      if (newest && (filter.until === undefined || after.at < filter.until)) max = `(${after.at}`;
      if (!newest && (filter.since === undefined || after.at >= filter.since)) min = `(${after.at}`;
      ties = inRange;
    }
    const pipe = this.client.pipeline();
    for (const dim of dims) {
      const k = this.keys.dimPrefix + dim;
      if (newest) pipe.zrevrangebyscore(k, max, min, 'WITHSCORES', 'LIMIT', 0, limit + 1);
      else pipe.zrangebyscore(k, min, max, 'WITHSCORES', 'LIMIT', 0, limit + 1);
      if (ties) pipe.zrangebyscore(k, after!.at, after!.at, 'WITHSCORES');
    }
    const sign = newest ? -1 : 1;
    const found: { id: string; at: number }[] = [];
    for (const flat of replies<string[]>(await pipe.exec())) {
      for (let i = 0; i < flat.length; i += 2) {
        const e = { id: flat[i]!, at: Number(flat[i + 1]) };
        if (after && sign * compare(e, after) <= 0) continue;
        found.push(e);
      }
    }
    found.sort((a, b) => sign * compare(a, b));
    return { ids: found.slice(0, limit).map((e) => e.id), more: found.length > limit };
  }

  /** Every matching id, for a purge by filter. */
  async ids(filter: DeadLetterFilter): Promise<string[]> {
    const dims = [...(await this.matching(filter)).keys()];
    if (dims.length === 0) return [];
    const { min, max } = scoreRange(filter);
    const pipe = this.client.pipeline();
    for (const dim of dims) pipe.zrangebyscore(this.keys.dimPrefix + dim, min, max);
    return replies<string[]>(await pipe.exec()).flat();
  }

  /**
   * The registry, and whether the dimension map disagrees with the entries in size: entries written
   * before the counts existed (or by an older Herald still running) are not indexed yet.
   */
  private async registry(): Promise<{ dims: Record<string, string>; stale: boolean }> {
    const replies = await this.client
      .multi()
      .hlen(this.keys.entries)
      .hlen(this.keys.dims)
      .hgetall(this.keys.registry)
      .exec();
    const [entries, indexed, dims] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [number, number, Record<string, string>];
    return { dims, stale: entries !== indexed };
  }

  /** One pass at a time per store, however many callers found it stale. */
  private reconcile(): Promise<void> {
    this.reconciling ??= this.backfill().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  /** Indexes entries written without counts and drops ids whose entry is gone (see `reconcileDerived`). */
  private backfill(): Promise<void> {
    return reconcileDerived({
      client: this.client,
      keys: this.keys,
      derived: this.keys.dims,
      argsFor: (id, e, args) => {
        const dim = dimensionOf(e);
        args.push(id, dim.id, dim.descriptor, e.deadLetteredAt);
      },
      index: (args) => this.indexScript(...this.scriptKeys(), this.keys.dimPrefix, ...args),
      dropOrphans: (ids) => this.orphansScript(...this.scriptKeys(), this.keys.dimPrefix, ...ids),
    });
  }

  private scriptKeys(): [string, string, string] {
    return [this.keys.entries, this.keys.dims, this.keys.registry];
  }
}

/** The filter's time range as zset score bounds (since inclusive, until exclusive). */
function scoreRange(filter: DeadLetterFilter): { min: string; max: string } {
  return {
    min: filter.since !== undefined ? String(filter.since) : '-inf',
    max: filter.until !== undefined ? `(${filter.until}` : '+inf',
  };
}

function compare(a: { at: number; id: string }, b: { at: number; id: string }): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function replies<T>(results: [Error | null, unknown][] | null): T[] {
  return (results ?? []).map(([error, value]) => {
    if (error) throw error;
    return value as T;
  });
}

function matches(d: Descriptor, f: DeadLetterFilter): boolean {
  return (
    (f.fingerprint === undefined || d[0] === f.fingerprint) &&
    (f.topic === undefined || d[1] === f.topic) &&
    (f.group === undefined || d[2] === f.group) &&
    (f.eventType === undefined || d[3] === f.eventType) &&
    (f.reason === undefined || d[4] === f.reason) &&
    (f.handler === undefined || d[5] === f.handler)
  );
}

/** Dimension rows summed over handlers: the answer is per (fingerprint, topic, group, type, reason). */
function mergeHandlers(
  rows: [string, number, string, string][],
  dims: Map<string, Descriptor>,
): FailureCounts['counts'] {
  const out = new Map<
    string,
    { -readonly [K in keyof FailureCounts['counts'][number]]: FailureCounts['counts'][number][K] }
  >();
  for (const [dim, count, first, last] of rows) {
    const d = dims.get(dim)!;
    const key = JSON.stringify(d.slice(0, 5));
    const firstSeen = Number(first);
    const lastSeen = Number(last);
    const c = out.get(key);
    if (c) {
      c.count += count;
      c.firstSeen = Math.min(c.firstSeen, firstSeen);
      c.lastSeen = Math.max(c.lastSeen, lastSeen);
      continue;
    }
    out.set(key, {
      fingerprint: d[0],
      topic: d[1],
      group: d[2],
      ...(d[3] !== null ? { eventType: d[3] } : {}),
      reason: d[4],
      count,
      firstSeen,
      lastSeen,
    });
  }
  return [...out.values()];
}

function toSample([fp, errorName, message, stack]: [
  string,
  string,
  string,
  string,
]): FailureCounts['samples'][number] {
  const top = stackTop(stack || undefined);
  return {
    fingerprint: fp,
    errorName,
    message: message.slice(0, SUMMARY_MESSAGE_MAX),
    ...(top !== undefined ? { stackTop: top } : {}),
  };
}
