import { createHash } from 'node:crypto';
import { errorFingerprint } from '../../../store/dead-letter-fingerprint.js';
import type { DeadLetterEntry, DeadLetterKey, DeadLetterSearch } from '../../../store/dead-letter-store.js';
import { SUMMARY_MESSAGE_MAX } from '../../../store/dead-letter-summary.js';
import type { RedisClient } from '../connection.js';
import { reconcileDerived } from './dead-letter-backfill.js';
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
 * A search record is `<aggregate hash or 16 '-'><event hash><time, 15 digits><a><b><c><body>`
 * (a, b, c: 8 digits each, so the header is 71 bytes and the script reads it by position). The
 * body is the lower-cased text the console's index searches with `q` (ids, type, group, topic,
 * handler, fingerprint, `<error name>: <message>`), lower-cased by JavaScript as the index does, so
 * non-ASCII text matches exactly as there. `a` is that text's length in bytes; the error text
 * (`errorText` filter) is `c` bytes from byte `b` of the body: a suffix of the text, or appended
 * after it should lower-casing the whole ever differ from lower-casing the error alone. The header
 * lets the scripts remove the id-zset members without reading the entry.
 */

const NONE = '-'.repeat(16);

/** 16 hex digits of the SHA-1 of an id value: the fixed-width prefix of its zset members. */
export function valueHash(value: string): string {
  return createHash('sha1').update(value).digest('hex').slice(0, 16);
}

/** Lengths in the record header: fixed width, so the script reads them without searching. */
function width8(n: number): string {
  // A record's text is ids, names and 500 characters of error: never near 100 MB.
  return String(Math.min(n, 99_999_999)).padStart(8, '0');
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
  const errorFrom = suffix ? textBytes - errorBytes : textBytes;
  return `${header}${width8(textBytes)}${width8(errorFrom)}${width8(errorBytes)}${body}`;
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
 * KEYS: the zset walked (the listing index, or an id zset whose members carry a 16-byte prefix),
 * search records, dimension map. ARGV: prefix length (0 or 16), whether there is a text needle and
 * the needle, the same for the error text, the aggregate and event id hashes (`''`: none), whether
 * to return each match's dimension, how many matches to return (`-1`: all; `0`: count only), the
 * number of allowed dimensions and those (none: any), then min, max, reverse and budget of the
 * walk. Returns `{last, count, member1, [dim1], ...}`: `last` is the last member walked when the
 * budget was used up (`''`: the range is done), `count` how many of the walked entries match, then
 * the first matches as listing members (`<time>\0<id>`).
 */
const MATCH = `
local strip = tonumber(ARGV[1])
local hasText, text = ARGV[2] == '1', ARGV[3]
local hasErr, err = ARGV[4] == '1', ARGV[5]
local agg, ev = ARGV[6], ARGV[7]
local wantDims = ARGV[8] == '1'
local room = tonumber(ARGV[9])
local ndims = tonumber(ARGV[10])
local dims = {}
for i = 11, 10 + ndims do dims[ARGV[i]] = true end
local at = 11 + ndims
local min, max, rev, budget = ARGV[at], ARGV[at + 1], ARGV[at + 2] == '1', tonumber(ARGV[at + 3])
local walked
if rev then walked = redis.call('ZREVRANGEBYLEX', KEYS[1], max, min, 'LIMIT', 0, budget)
else walked = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', 0, budget) end
local n = #walked
local last = ''
if n == budget then last = walked[n] end
if n == 0 then return {last, 0} end
local members, ids, ok = {}, {}, {}
for i = 1, n do
  local m = string.sub(walked[i], strip + 1)
  members[i] = m
  ids[i] = string.sub(m, 17)
  ok[i] = true
end
local dimOf
if ndims > 0 or wantDims then
  dimOf = redis.call('HMGET', KEYS[3], unpack(ids))
  if ndims > 0 then
    for i = 1, n do if not (dimOf[i] and dims[dimOf[i]]) then ok[i] = false end end
  end
end
if hasText or hasErr or agg ~= '' or ev ~= '' then
  local recs = redis.call('HMGET', KEYS[2], unpack(ids))
  for i = 1, n do
    local rec = recs[i]
    if ok[i] and not rec then ok[i] = false end
    if ok[i] and agg ~= '' and string.sub(rec, 1, 16) ~= agg then ok[i] = false end
    if ok[i] and ev ~= '' and string.sub(rec, 17, 32) ~= ev then ok[i] = false end
    -- The first occurrence from a region's start ends inside it when any occurrence does.
    if ok[i] and hasText then
      local s, e = string.find(rec, text, 72, true)
      if not s or e > 71 + tonumber(string.sub(rec, 48, 55)) then ok[i] = false end
    end
    if ok[i] and hasErr then
      local from = 72 + tonumber(string.sub(rec, 56, 63))
      local s, e = string.find(rec, err, from, true)
      if not s or e >= from + tonumber(string.sub(rec, 64, 71)) then ok[i] = false end
    end
  end
end
local out = {last, 0}
local count = 0
for i = 1, n do
  if ok[i] then
    count = count + 1
    if room ~= 0 then
      out[#out + 1] = members[i]
      if wantDims then out[#out + 1] = dimOf[i] or '' end
      room = room - 1
    end
  end
end
out[2] = count
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
   * How many entries match the search, and the first `room` of them (`Infinity`: all) in listing
   * order (`newest`: descending) strictly after `after`. `dims` are the failure dimensions the
   * search's store fields allow (`undefined`: no such field); `wantDims` returns each match's.
   */
  async matches(
    search: DeadLetterSearch,
    options: {
      dims: readonly string[] | undefined;
      newest: boolean;
      after?: { at: number; id: string } | undefined;
      room: number;
      wantDims: boolean;
    },
  ): Promise<{ total: number; matches: SearchMatch[] }> {
    await this.fresh();
    const { dims, newest, after } = options;
    // An id search walks its id's members (already in listing order), any other the listing index.
    const byId =
      search.eventId !== undefined
        ? { key: this.keys.events, prefix: valueHash(search.eventId) }
        : search.aggregateId !== undefined
          ? { key: this.keys.aggregates, prefix: valueHash(search.aggregateId) }
          : { key: this.keys.index, prefix: '' };
    const p = byId.prefix;
    const min = search.since !== undefined ? `[${p}${time15(search.since)}` : p ? `[${p}` : '-';
    const max = search.until !== undefined ? `(${p}${time15(search.until)}` : p ? `(${p}~` : '+';
    const head = (room: number): string[] => [
      String(p.length),
      search.text !== undefined ? '1' : '0',
      search.text?.toLowerCase() ?? '',
      search.errorText !== undefined ? '1' : '0',
      search.errorText?.toLowerCase() ?? '',
      search.aggregateId !== undefined ? valueHash(search.aggregateId) : '',
      search.eventId !== undefined ? valueHash(search.eventId) : '',
      options.wantDims ? '1' : '0',
      String(room),
      String(dims?.length ?? 0),
      ...(dims ?? []),
    ];
    let total = 0;
    const matches: SearchMatch[] = [];
    const walk = async (from: string, to: string, collect: boolean): Promise<void> => {
      let lo = from;
      let hi = to;
      for (;;) {
        const room = !collect ? 0 : options.room === Infinity ? -1 : options.room - matches.length;
        const flat = (await this.matchScript(
          byId.key,
          this.keys.records,
          this.keys.dims,
          ...head(room),
          lo,
          hi,
          newest ? '1' : '0',
          WALK,
        )) as (string | number)[];
        total += Number(flat[1]);
        const step = options.wantDims ? 2 : 1;
        for (let i = 2; i < flat.length; i += step) {
          const m = String(flat[i]);
          matches.push({
            at: Number(m.slice(0, 15)),
            id: m.slice(16),
            dim: options.wantDims ? String(flat[i + 1]) : '',
          });
        }
        const last = String(flat[0]);
        if (!last) return;
        if (newest) hi = `(${last}`;
        else lo = `(${last}`;
      }
    };
    if (!after) {
      await walk(min, max, true);
      return { total, matches };
    }
    // Entries up to the cursor are counted only, the rest collected: the ranges split at the cursor.
    const cursor = `${p}${time15(after.at)}\u0000${after.id}`;
    const belowMax = max === '+' || cursor < max.slice(1);
    const aboveMin = min === '-' || cursor >= min.slice(1);
    if (newest) {
      await walk(aboveMin ? `[${cursor}` : min, max, false);
      await walk(min, belowMax ? `(${cursor}` : max, true);
    } else {
      await walk(min, belowMax ? `[${cursor}` : max, false);
      await walk(aboveMin ? `(${cursor}` : min, max, true);
    }
    return { total, matches };
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

  private backfill(): Promise<void> {
    return reconcileDerived({
      client: this.client,
      keys: this.keys,
      derived: this.keys.records,
      argsFor: (id, e, args) => void args.push(id, searchRecord(e)),
      index: (args) => this.indexScript(...this.recordKeys(), ...args),
      dropOrphans: (ids) => this.orphansScript(...this.recordKeys(), ...ids),
    });
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
