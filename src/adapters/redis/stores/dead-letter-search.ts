import { createHash } from 'node:crypto';
import { errorFingerprint } from '../../../store/dead-letter-fingerprint.js';
import type { DeadLetterEntry, DeadLetterKey, DeadLetterSearch } from '../../../store/dead-letter-store.js';
import { SUMMARY_MESSAGE_MAX } from '../../../store/dead-letter-summary.js';
import type { RedisClient } from '../connection.js';
import type { Descriptor } from './dead-letter-failures.js';

/*
 * Searches kept at write time (ADR 0976). Keys, under the store's hash tag:
 *   <base>:s   hash  id -> search record (below)
 *   <base>:ia  zset  `<hash of aggregate id, 16 hex><deadLetteredAt, 15 digits>\0<id>`, all score 0
 *   <base>:ii  zset  the same for the event id
 * The id zsets are one key each (not a key per value), so a purge UNLINKs three keys; a lookup is
 * the lexical range of the value's 16-hex prefix, already in listing order. The hash makes the
 * prefix fixed-width whatever the value holds (a NUL, a `~`), and bounds the member's length.
 *
 * A search record is `<aggregate hash or 16 '-'><event hash><time, 15 digits><a>,<b>,<c>:<body>`:
 * the body is the lower-cased text the console's index searches with `q` (ids, type, group, topic,
 * handler, fingerprint, `<error name>: <message>`), lower-cased by JavaScript as the index does, so
 * non-ASCII text matches exactly as there. `a` is the body's length in bytes; the error text
 * (`errorText` filter) is `c` bytes from byte `b` of the body: a suffix of the text, or appended
 * after it should lower-casing the whole ever differ from lower-casing the error alone. The header
 * lets the scripts remove the id-zset members without reading the entry.
 */

const NONE = '-'.repeat(16);

/** 16 hex digits of the SHA-1 of an id value: the fixed-width prefix of its zset members. */
export function valueHash(value: string): string {
  return createHash('sha1').update(value).digest('hex').slice(0, 16);
}

function time15(at: number): string {
  return String(Math.max(0, Math.floor(at))).padStart(15, '0');
}

/** The search record of an entry (see the layout above). */
export function searchRecord(entry: DeadLetterEntry, fingerprint = errorFingerprint(entry.error)): string {
  const errorText = `${entry.error.name}: ${entry.error.message.slice(0, SUMMARY_MESSAGE_MAX)}`.toLowerCase();
  // Exactly the console index's `toRow` text, so `q` matches what it matches.
  const text =
    `${entry.id}\n${entry.message.id}\n${entry.message.key ?? ''}\n${entry.eventType ?? ''}\n${entry.group}\n${entry.topic}\n${entry.handler}\n${fingerprint}\n${errorText}`.toLowerCase();
  const textBytes = Buffer.byteLength(text);
  const errorBytes = Buffer.byteLength(errorText);
  const suffix = text.endsWith(errorText);
  const body = suffix ? text : text + errorText;
  const header =
    (entry.message.key !== undefined ? valueHash(entry.message.key) : NONE) +
    valueHash(entry.message.id) +
    time15(entry.deadLetteredAt);
  return `${header}${textBytes},${suffix ? textBytes - errorBytes : textBytes},${errorBytes}:${body}`;
}

/**
 * Lua `index_search(s, ia, ii, id, rec)` and `unsearch(s, ia, ii, id)`: write and remove an entry's
 * record and id-zset members; shared by the store's add, remove and purge scripts.
 */
export const SEARCH_LUA = `
local function search_members(rec, id)
  local t = string.sub(rec, 33, 47)
  local a = string.sub(rec, 1, 16)
  if a == '${NONE}' then a = nil else a = a .. t .. '\\0' .. id end
  return a, string.sub(rec, 17, 32) .. t .. '\\0' .. id
end
local function unsearch(s, ia, ii, id)
  local rec = redis.call('HGET', s, id)
  if not rec then return end
  local a, e = search_members(rec, id)
  if a then redis.call('ZREM', ia, a) end
  redis.call('ZREM', ii, e)
  redis.call('HDEL', s, id)
end
local function index_search(s, ia, ii, id, rec)
  unsearch(s, ia, ii, id)
  local a, e = search_members(rec, id)
  if a then redis.call('ZADD', ia, 0, a) end
  redis.call('ZADD', ii, 0, e)
  redis.call('HSET', s, id, rec)
end
`;

/**
 * KEYS: listing index, search records, dimension map. ARGV: mode (`z`: walk the listing index from
 * min to max, `budget` members; `m`: check the listing members given), then whether there is a text
 * needle and the needle, the same for the error text, the aggregate and event id hashes (`''`: none),
 * the number of allowed dimensions and those (none: any), then min, max, reverse, budget (`z`) or
 * the members (`m`). Returns
 * `{last, member1, dim1, member2, dim2, ...}`: `last` is the last member walked (`''` when the range
 * is done; always `''` in mode `m`), then each matching listing member with its dimension id.
 */
const MATCH = `
local mode = ARGV[1]
local hasText, text = ARGV[2] == '1', ARGV[3]
local hasErr, err = ARGV[4] == '1', ARGV[5]
local agg, ev = ARGV[6], ARGV[7]
local ndims = tonumber(ARGV[8])
local dims = {}
for i = 9, 8 + ndims do dims[ARGV[i]] = true end
local at = 9 + ndims
local needRec = hasText or hasErr or agg ~= '' or ev ~= ''
local out = {''}
local function check(m)
  local id = string.sub(m, 17)
  local dim = redis.call('HGET', KEYS[3], id)
  if ndims > 0 and not (dim and dims[dim]) then return end
  if needRec then
    local rec = redis.call('HGET', KEYS[2], id)
    if not rec then return end
    if agg ~= '' and string.sub(rec, 1, 16) ~= agg then return end
    if ev ~= '' and string.sub(rec, 17, 32) ~= ev then return end
    local c1 = string.find(rec, ',', 48, true)
    local c2 = string.find(rec, ',', c1 + 1, true)
    local colon = string.find(rec, ':', c2 + 1, true)
    local textLen = tonumber(string.sub(rec, 48, c1 - 1))
    local errFrom = colon + 1 + tonumber(string.sub(rec, c1 + 1, c2 - 1))
    local errLen = tonumber(string.sub(rec, c2 + 1, colon - 1))
    -- The first occurrence from the region's start ends inside the region when any occurrence does.
    if hasText then
      local s, e = string.find(rec, text, colon + 1, true)
      if not s or e > colon + textLen then return end
    end
    if hasErr then
      local s, e = string.find(rec, err, errFrom, true)
      if not s or e > errFrom + errLen - 1 then return end
    end
  end
  out[#out + 1] = m
  out[#out + 1] = dim or ''
end
if mode == 'm' then
  for i = at, #ARGV do check(ARGV[i]) end
  return out
end
local min, max, rev, budget = ARGV[at], ARGV[at + 1], ARGV[at + 2] == '1', tonumber(ARGV[at + 3])
local batch
if rev then batch = redis.call('ZREVRANGEBYLEX', KEYS[1], max, min, 'LIMIT', 0, budget)
else batch = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', 0, budget) end
for _, m in ipairs(batch) do check(m) end
if #batch == budget then out[1] = batch[#batch] end
return out
`;

/** KEYS: entries, records, aggregate zset, event zset. ARGV: (id, record) pairs of unindexed entries. */
const INDEX = `${SEARCH_LUA}
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 and redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    index_search(KEYS[2], KEYS[3], KEYS[4], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
`;

/** KEYS: as INDEX. ARGV: ids; drops the records of those whose entry is gone. */
const DROP_ORPHANS = `${SEARCH_LUA}
local n = 0
for i = 1, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    unsearch(KEYS[2], KEYS[3], KEYS[4], ARGV[i])
    n = n + 1
  end
end
return n
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** Entries a match script walks per call: a few milliseconds of Redis time, so it is never blocked long. */
const WALK = 2_000;
/** Ids checked per call when a search starts from an aggregate or event id. */
const CHECK = 1_000;
const BACKFILL_BATCH = 1_000;

export interface SearchKeys {
  readonly entries: string;
  readonly index: string;
  readonly dims: string;
  readonly records: string;
  readonly aggregates: string;
  readonly events: string;
}

/** A matching entry: its listing member's sort key and its failure dimension. */
export interface SearchMatch {
  readonly at: number;
  readonly id: string;
  readonly dim: string;
}

/**
 * The matching half of the Redis store's `search`: walks the listing index (or an id zset) in
 * Lua, `WALK` entries per call, and returns only the matches; the caller pages them.
 */
export class RedisDeadLetterSearch {
  private readonly matchScript: Script;
  private readonly indexScript: Script;
  private readonly orphansScript: Script;
  private reconciling: Promise<void> | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: SearchKeys,
  ) {
    client.defineCommand('herald_dlq_search', { lua: MATCH, numberOfKeys: 3 });
    client.defineCommand('herald_dlq_search_index', { lua: INDEX, numberOfKeys: 4 });
    client.defineCommand('herald_dlq_search_orphans', { lua: DROP_ORPHANS, numberOfKeys: 4 });
    const commands = client as unknown as Record<string, Script>;
    this.matchScript = commands.herald_dlq_search!.bind(client);
    this.indexScript = commands.herald_dlq_search_index!.bind(client);
    this.orphansScript = commands.herald_dlq_search_orphans!.bind(client);
  }

  /**
   * Every entry matching the search, in listing order (`newest`: descending). `dims` are the
   * failure dimensions the filter's store fields allow (`undefined`: no such field).
   */
  async matches(
    search: DeadLetterSearch,
    dims: readonly string[] | undefined,
    newest: boolean,
  ): Promise<SearchMatch[]> {
    await this.fresh();
    const head = [
      search.text !== undefined ? '1' : '0',
      search.text?.toLowerCase() ?? '',
      search.errorText !== undefined ? '1' : '0',
      search.errorText?.toLowerCase() ?? '',
      search.aggregateId !== undefined ? valueHash(search.aggregateId) : '',
      search.eventId !== undefined ? valueHash(search.eventId) : '',
      String(dims?.length ?? 0),
      ...(dims ?? []),
    ];
    const out: SearchMatch[] = [];
    const collect = (flat: string[]): void => {
      for (let i = 1; i < flat.length; i += 2) {
        const m = flat[i]!;
        out.push({ at: Number(m.slice(0, 15)), id: m.slice(16), dim: flat[i + 1]! });
      }
    };
    const since = search.since !== undefined ? time15(search.since) : undefined;
    const until = search.until !== undefined ? time15(search.until) : undefined;
    const byId =
      search.eventId !== undefined
        ? { key: this.keys.events, prefix: valueHash(search.eventId) }
        : search.aggregateId !== undefined
          ? { key: this.keys.aggregates, prefix: valueHash(search.aggregateId) }
          : undefined;
    if (byId) {
      // The value's members, already in listing order; the other conditions are checked in Lua.
      const p = byId.prefix;
      let min = since !== undefined ? `[${p}${since}` : `[${p}`;
      let max = until !== undefined ? `(${p}${until}` : `(${p}~`;
      for (;;) {
        const batch = newest
          ? await this.client.zrevrangebylex(byId.key, max, min, 'LIMIT', 0, CHECK)
          : await this.client.zrangebylex(byId.key, min, max, 'LIMIT', 0, CHECK);
        if (batch.length === 0) break;
        const members = batch.map((m) => m.slice(16));
        collect((await this.matchScript(...this.matchKeys(), 'm', ...head, ...members)) as string[]);
        if (batch.length < CHECK) break;
        if (newest) max = `(${batch[batch.length - 1]!}`;
        else min = `(${batch[batch.length - 1]!}`;
      }
      return out;
    }
    let min = since !== undefined ? `[${since}` : '-';
    let max = until !== undefined ? `(${until}` : '+';
    for (;;) {
      const flat = (await this.matchScript(
        ...this.matchKeys(),
        'z',
        ...head,
        min,
        max,
        newest ? '1' : '0',
        WALK,
      )) as string[];
      collect(flat);
      const last = flat[0];
      if (!last) return out;
      if (newest) max = `(${last}`;
      else min = `(${last}`;
    }
  }

  private matchKeys(): [string, string, string] {
    return [this.keys.index, this.keys.records, this.keys.dims];
  }

  private recordKeys(): [string, string, string, string] {
    return [this.keys.entries, this.keys.records, this.keys.aggregates, this.keys.events];
  }

  /**
   * Writes the records missing for entries stored before searches existed (or by an older Herald
   * still running) and drops those whose entry such a Herald removed, when the sizes show either.
   */
  private async fresh(): Promise<void> {
    const [entries, records] = await Promise.all([
      this.client.hlen(this.keys.entries),
      this.client.hlen(this.keys.records),
    ]);
    if (entries === records) return;
    this.reconciling ??= this.backfill().finally(() => (this.reconciling = undefined));
    await this.reconciling;
  }

  private async backfill(): Promise<void> {
    let min = '-';
    for (;;) {
      const members = await this.client.zrangebylex(this.keys.index, min, '+', 'LIMIT', 0, BACKFILL_BATCH);
      if (members.length === 0) break;
      const ids = members.map((m) => m.slice(m.indexOf('\u0000') + 1));
      const have = await this.client.hmget(this.keys.records, ...ids);
      const missing = ids.filter((_, i) => have[i] === null);
      if (missing.length > 0) {
        const values = await this.client.hmget(this.keys.entries, ...missing);
        const args: string[] = [];
        values.forEach((json, i) => {
          if (json !== null) args.push(missing[i]!, searchRecord(JSON.parse(json) as DeadLetterEntry));
        });
        if (args.length > 0) await this.indexScript(...this.recordKeys(), ...args);
      }
      if (members.length < BACKFILL_BATCH) break;
      min = `(${members[members.length - 1]!}`;
    }
    const [entries, records] = await Promise.all([
      this.client.hlen(this.keys.entries),
      this.client.hlen(this.keys.records),
    ]);
    if (records <= entries) return;
    let cursor = '0';
    do {
      const [next, flat] = await this.client.hscan(this.keys.records, cursor, 'COUNT', BACKFILL_BATCH);
      cursor = next;
      const ids = flat.filter((_, i) => i % 2 === 0);
      if (ids.length > 0) await this.orphansScript(...this.recordKeys(), ...ids);
    } while (cursor !== '0');
  }
}

/** The keys of matches, their group, topic and fingerprint from the dimension registry. */
export function keysOf(
  matches: readonly SearchMatch[],
  descriptor: (dim: string) => Descriptor | undefined,
): DeadLetterKey[] {
  const out: DeadLetterKey[] = [];
  for (const m of matches) {
    const d = descriptor(m.dim);
    // An entry indexed by no dimension (written meanwhile by a Herald without counts) is left out.
    if (!d) continue;
    out.push({
      id: m.id,
      deadLetteredAt: m.at,
      group: d[2],
      topic: d[1],
      ...(d[3] !== null ? { eventType: d[3] } : {}),
      reason: d[4],
      fingerprint: d[0],
    });
  }
  return out;
}
