/**
 * The Lua scripts that keep a group's delivery state consistent. Each runs atomically, so a consumer
 * killed at any point leaves either the state before or after a step, never half of one.
 *
 * State of a message in a group:
 * - not yet read: after the group's last-delivered id;
 * - leased: in the group's pending list (PEL) under the consumer holding it; XAUTOCLAIM moves it to
 *   a live member once its lease is idle too long;
 * - parked: acknowledged out of the PEL and listed in `ready`, `delayed` or `held` (and `parked`),
 *   with its attempts so far in `attempts`. Handing it out again re-creates its PEL entry with
 *   `XCLAIM ... FORCE RETRYCOUNT n`, so the PEL's delivery count stays the attempt number.
 * - settled: acknowledged and in none of the lists.
 * With ordering by key, `locks` maps each key to the one message allowed to be leased or parked in
 * ready/delayed; later messages of that key wait in `held` until it is acknowledged — or, when the
 * consumer that reads them holds the key's message itself and nothing of that key is held, they stay
 * in its PEL as followers (listed in `followers`), and the ack of the holder passes the key straight
 * to the oldest one (ADR 0305). Anything that takes the holder away from that consumer (nack,
 * release, reclaim) moves its followers to `held` in the same step, so the order is the same either way.
 */

const HELPERS = `
local function pad(id)
  local d = string.find(id, '-', 1, true)
  local ms, seq = string.sub(id, 1, d - 1), string.sub(id, d + 1)
  return string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function unpad(p)
  local ms = (string.gsub(string.sub(p, 1, 20), '^0+', ''))
  local seq = (string.gsub(string.sub(p, 22), '^0+', ''))
  if ms == '' then ms = '0' end
  if seq == '' then seq = '0' end
  return ms .. '-' .. seq
end
local function heldPrefix(key)
  return string.format('%010d', #key) .. key
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keyRange(prefix)
  return '[' .. prefix, '[' .. prefix .. '\\255'
end
-- Moves every follower of key k (never handed out) out of the PEL into the held set.
local function parkFollowers(s, group, fw, hd, pk, k)
  local prefix = heldPrefix(k)
  local lo, hi = keyRange(prefix)
  local f = redis.call('ZRANGEBYLEX', fw, lo, hi)
  for _, m in ipairs(f) do
    local p = string.sub(m, #prefix + 1)
    redis.call('XACK', s, group, unpad(p))
    redis.call('ZADD', hd, 0, m)
    redis.call('ZADD', pk, 0, p)
  end
  if #f > 0 then redis.call('ZREM', fw, unpack(f)) end
end
`;

/**
 * Moves the due scheduled messages of a topic into its stream, earliest first (ties in scheduling
 * order). A stored value is a 20-digit order number followed by the entry's field/value list,
 * each item written as `<byte length>:<bytes>` (see codec.ts `packFields`).
 */
const MOVE_DUE = `
local function moveDue(s, sc, sb, now)
  local due = redis.call('ZRANGEBYSCORE', sc, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
  if #due == 0 then return end
  local items = {}
  for i = 1, #due, 2 do
    local v = redis.call('HGET', sb, due[i])
    if v then items[#items + 1] = { tonumber(due[i + 1]), string.sub(v, 1, 20), string.sub(v, 21) } end
    redis.call('HDEL', sb, due[i])
    redis.call('ZREM', sc, due[i])
  end
  table.sort(items, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for _, item in ipairs(items) do
    local blob, fields, pos = item[3], {}, 1
    while pos <= #blob do
      local colon = string.find(blob, ':', pos, true)
      local len = tonumber(string.sub(blob, pos, colon - 1))
      fields[#fields + 1] = string.sub(blob, colon + 1, colon + len)
      pos = colon + len + 1
    end
    redis.call('XADD', s, '*', unpack(fields))
  end
end
`;

/**
 * The settle steps, shared by the settle script and the fetch script (which settles what a consumer
 * queued before it fetches, in the same call). Needs the locals s dl rd lk hd pk at wk fw group
 * consumer. `settleOps(first)` runs the operations in ARGV from index `first`, four items each:
 * op(a|n|r) id key delayMs. `a` acknowledges (by anyone: the work is done) and passes the key on to
 * its oldest follower, else to its next held message; `n` (nack) and `r` (release) act only while the
 * consumer still holds the lease, so a late settle of a reclaimed message cannot disturb its new
 * owner, and move the key's followers to the held set. Returns per operation 0/1, or for an ack that
 * passed the key to a follower, that follower's id (the consumer holding it hands it out now).
 */
const SETTLE_OPS = `
local woke = false
-- Passes key on from its holder id (just acknowledged): to its oldest follower (returned, the
-- consumer holding it hands it out), else to its oldest held message (made ready), else frees it.
-- With batch (a batch of acks of distinct keys), the writes that touch only this key are collected
-- there (one ZREM, HSET and HDEL for the whole batch); without it they run here.
local function passOn(key, id, checkFw, checkHd, batch)
  if checkFw or checkHd then
    local prefix = heldPrefix(key)
    local lo, hi = keyRange(prefix)
    if checkFw then
      local f = redis.call('ZRANGEBYLEX', fw, lo, hi, 'LIMIT', 0, 1)
      if f[1] then
        local nid = unpad(string.sub(f[1], #prefix + 1))
        if batch then
          batch.fwRem[#batch.fwRem + 1] = f[1]
          batch.lkSet[#batch.lkSet + 1] = key
          batch.lkSet[#batch.lkSet + 1] = nid
        else
          redis.call('ZREM', fw, f[1])
          redis.call('HSET', lk, key, nid)
        end
        return nid
      end
    end
    if checkHd then
      local nxt = redis.call('ZRANGEBYLEX', hd, lo, hi, 'LIMIT', 0, 1)
      if nxt[1] then
        redis.call('ZREM', hd, nxt[1])
        local nid = unpad(string.sub(nxt[1], #prefix + 1))
        redis.call('HSET', lk, key, nid)
        redis.call('RPUSH', rd, nid)
        woke = true
        return 1
      end
    end
  end
  if batch then batch.free[#batch.free + 1] = key else redis.call('HDEL', lk, key) end
  return 1
end

-- Common case: only acks, no key twice. The acks are independent of each other then, so they run
-- as one XACK, one HMGET of the holders and one HDEL of the freed keys, and the follower and held
-- sets are searched only when they are not empty.
local function settleAcks(first, results)
  local ids, ks, kidx = {}, {}, {}
  for i = first, #ARGV, 4 do
    ids[#ids + 1] = ARGV[i + 1]
    results[#results + 1] = 1
    if ARGV[i + 2] ~= '' then
      ks[#ks + 1] = ARGV[i + 2]
      kidx[#kidx + 1] = #ids
    end
  end
  local acked = redis.call('XACK', s, group, unpack(ids))
  if #ks == 0 then return end
  local holders = redis.call('HMGET', lk, unpack(ks))
  local checkFw = redis.call('EXISTS', fw) == 1
  local checkHd = redis.call('EXISTS', hd) == 1
  local batch = { free = {}, fwRem = {}, lkSet = {} }
  for j, key in ipairs(ks) do
    local id = ids[kidx[j]]
    if holders[j] == id then
      -- Some ids were not pending: one parked (nacked or released by a member that reclaimed it,
      -- so waiting in ready or delayed) keeps its key; the late ack of its former lease is void.
      if acked < #ids and redis.call('ZSCORE', pk, pad(id)) then
        results[kidx[j]] = 0
      else
        results[kidx[j]] = passOn(key, id, checkFw, checkHd, batch)
      end
    end
  end
  if #batch.fwRem > 0 then redis.call('ZREM', fw, unpack(batch.fwRem)) end
  if #batch.lkSet > 0 then redis.call('HSET', lk, unpack(batch.lkSet)) end
  if #batch.free > 0 then redis.call('HDEL', lk, unpack(batch.free)) end
end

local function settleOps(first)
  local results = {}
  if #ARGV < first then return results end
  woke = false
  local acksOnly = true
  local seen = {}
  for i = first, #ARGV, 4 do
    local key = ARGV[i + 2]
    if ARGV[i] ~= 'a' or (key ~= '' and seen[key]) then
      acksOnly = false
      break
    end
    if key ~= '' then seen[key] = true end
  end
  if acksOnly then
    settleAcks(first, results)
  else
    local now = nil
    for i = first, #ARGV, 4 do
      local op, id, key, delay = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
      local done = 0
      if op == 'a' then
        done = redis.call('XACK', s, group, id)
        if done == 1 and key ~= '' and redis.call('HGET', lk, key) == id then
          done = passOn(key, id, true, true, nil)
        end
      else
        local p = redis.call('XPENDING', s, group, id, id, 1, consumer)
        if p[1] then
          local attempts = p[1][4]
          redis.call('XACK', s, group, id)
          if key ~= '' and redis.call('HGET', lk, key) == id then parkFollowers(s, group, fw, hd, pk, key) end
          if op == 'r' then attempts = attempts - 1 end
          if attempts > 0 then redis.call('HSET', at, id, attempts) else redis.call('HDEL', at, id) end
          redis.call('ZADD', pk, 0, pad(id))
          if op == 'n' and delay > 0 then
            if not now then now = nowMs() end
            redis.call('ZADD', dl, now + delay, id)
          elseif op == 'n' then
            redis.call('RPUSH', rd, id)
            woke = true
          else
            redis.call('LPUSH', rd, id)
            woke = true
          end
          done = 1
        end
      end
      results[#results + 1] = done
    end
  end
  if woke then redis.call('XADD', wk, 'MAXLEN', 1, '*', 'w', 1) end
  return results
end
`;

/**
 * Settles a batch of deliveries (see SETTLE_OPS). KEYS: stream delayed ready locks held parked
 * attempts wake followers. ARGV: group consumer, then per operation: op(a|n|r) id key delayMs.
 */
export const SETTLE = `${HELPERS}
local s, dl, rd, lk, hd, pk, at, wk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local fw = KEYS[9]
local group, consumer = ARGV[1], ARGV[2]
${SETTLE_OPS}
return settleOps(3)
`;

/**
 * Hands out up to `room` messages to one consumer: reclaimed leases first, then due retries and
 * other ready messages, then new entries (holding back those whose key is taken). Due scheduled
 * messages of the topic enter the stream first, so they are new entries like any other.
 * KEYS: stream delayed ready locks held parked attempts wake followers scheduled scheduledBodies
 * topicWake. ARGV: group consumer room keyed(1|0) claimIdleMs(-1 = no reclaim) cursor readNew, then
 * settle operations as in the settle script (four items each), run first: a consumer's settles
 * and its next fetch so cost one script call and one round trip. readNew: 1 reads new entries here;
 * 0 does not (the client reads them with a plain XREADGROUP, or reads none); 2 does not and skips the
 * idle step too (the client reads them itself and expects a backlog, so the loop will not block on
 * this reply's last ids; they come back empty).
 * Returns { cursor, lastStreamId, lastWakeId, lastTopicWakeId, msUntilDue(-1 none), newEntriesRead,
 * { per entry: id, (attempt * 2 + follower(0|1)) * 8 + layout, then the values (see `emit` and
 * codec.ts Layout) }, settle results (or their count when every one is 1) };
 * msUntilDue covers retries and scheduled messages. A follower waits in the consumer for its key's
 * holder to be acknowledged.
 */
export const FETCH = `${HELPERS}${MOVE_DUE}
local s, dl, rd, lk, hd, pk, at, wk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local fw, sc, sb, tw = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local group, consumer = ARGV[1], ARGV[2]
local room = tonumber(ARGV[3])
local keyed = ARGV[4] == '1'
local claimIdle = tonumber(ARGV[5])
local cursor = ARGV[6]
local readNew = ARGV[7] == '1'
local idleStep = ARGV[7] ~= '2'
${SETTLE_OPS}
local settled = settleOps(8)
local now = nowMs()
local out, outN = {}, 0
local delivered = 0
local function keyOf(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'k' then return fields[i + 1] end
  end
  return nil
end
-- Flat, not a table per entry: Redis converts every returned table with several lookups, and the
-- client decodes every array it receives.
-- Per entry: its id, then one number for attempt, follower flag and layout (codec.ts Layout), then
-- the values. An entry with exactly Herald's fields in Herald's order goes without its field names;
-- any other entry as its field count and field/value list. Every item returned is one more value for
-- Redis to convert and for the client to decode, so nothing constant is sent.
local function emit(id, attempt, fields, follower)
  local nf = fields and #fields or 0
  local n = outN
  local meta = (attempt * 2 + (follower or 0)) * 8
  out[n + 1] = id
  if nf == 8 and fields[1] == 'i' and fields[3] == 'k' and fields[5] == 'h' and fields[7] == 'b' then
    out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6] = meta, fields[2], fields[4], fields[6], fields[8]
    outN = n + 6
  elseif nf == 6 and fields[1] == 'i' and fields[5] == 'b' and (fields[3] == 'k' or fields[3] == 'h') then
    out[n + 2], out[n + 3], out[n + 4], out[n + 5] = meta + (fields[3] == 'k' and 1 or 2), fields[2], fields[4], fields[6]
    outN = n + 5
  elseif nf == 4 and fields[1] == 'i' and fields[3] == 'b' then
    out[n + 2], out[n + 3], out[n + 4] = meta + 3, fields[2], fields[4]
    outN = n + 4
  else
    out[n + 2], out[n + 3] = meta + 4, nf
    for i = 1, nf do out[n + 3 + i] = fields[i] end
    outN = n + 3 + nf
  end
  delivered = delivered + 1
  room = room - 1
end
local function park(id, k)
  redis.call('XACK', s, group, id)
  local p = pad(id)
  redis.call('ZADD', hd, 0, heldPrefix(k) .. p)
  redis.call('ZADD', pk, 0, p)
end

if claimIdle >= 0 and room > 0 then
  local r = redis.call('XAUTOCLAIM', s, group, consumer, claimIdle, cursor, 'COUNT', room)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    if type(e) == 'table' and e[1] then
      local p = redis.call('XPENDING', s, group, e[1], e[1], 1)
      local attempt = 1
      if p[1] then attempt = p[1][4] end
      local k = nil
      if keyed then k = keyOf(e[2]) end
      local holder = nil
      if k then holder = redis.call('HGET', lk, k) end
      if k and holder and holder ~= e[1] then
        -- A follower of a consumer that stopped renewing: it waits in the held set like any other.
        redis.call('ZREM', fw, heldPrefix(k) .. pad(e[1]))
        park(e[1], k)
      else
        if k and not holder then redis.call('HSET', lk, k, e[1]) end
        -- The holder changes consumer: its followers at the old one wait in the held set now.
        if k then parkFollowers(s, group, fw, hd, pk, k) end
        emit(e[1], attempt, e[2])
      end
    end
  end
end

moveDue(s, sc, sb, now)

local due = redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('RPUSH', rd, unpack(due))
  redis.call('ZREM', dl, unpack(due))
end

while room > 0 do
  local id = redis.call('LPOP', rd)
  if not id then break end
  local n = tonumber(redis.call('HGET', at, id) or '0')
  local c = redis.call('XCLAIM', s, group, consumer, 0, id, 'FORCE', 'RETRYCOUNT', n + 1)
  redis.call('HDEL', at, id)
  redis.call('ZREM', pk, pad(id))
  local e = c[1]
  if type(e) == 'table' and e[1] then emit(e[1], n + 1, e[2]) end
end

local read = 0
if room > 0 and readNew then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', room, 'STREAMS', s, '>')
  local entries = r and r[1] and r[1][2] or {}
  read = #entries
  if not keyed then
    for _, e in ipairs(entries) do emit(e[1], 1, e[2]) end
  elseif read > 0 then
    -- The holders of the batch's keys in one HMGET and the keys it takes in one HSET: per message
    -- only Lua table work, not two commands (a command from Lua costs as much as a dozen table steps).
    local ekeys, ks, seen = {}, {}, {}
    for j, e in ipairs(entries) do
      local k = keyOf(e[2])
      ekeys[j] = k
      if k and not seen[k] then
        seen[k] = true
        ks[#ks + 1] = k
      end
    end
    local holderOf = {}
    if #ks > 0 then
      local h = redis.call('HMGET', lk, unpack(ks))
      for j, k in ipairs(ks) do holderOf[k] = h[j] end
    end
    -- key -> whether this consumer may keep the key's later entries as followers
    local follows = {}
    -- key -> its held/follower member prefix, built once per call (string.format is not cheap)
    local prefixOf = {}
    local locks, fws = {}, {}
    local anyHeld = redis.call('EXISTS', hd) == 1
    for j, e in ipairs(entries) do
      local id, k = e[1], ekeys[j]
      local holder = nil
      if k then holder = holderOf[k] end
      if not holder then
        if k then
          holderOf[k] = id
          locks[#locks + 1] = k
          locks[#locks + 1] = id
          follows[k] = true
        end
        emit(id, 1, e[2])
      else
        local own = follows[k]
        if own == nil then
          own = false
          if redis.call('XPENDING', s, group, holder, holder, 1, consumer)[1] then
            own = true
            if anyHeld then
              prefixOf[k] = heldPrefix(k)
              local lo, hi = keyRange(prefixOf[k])
              own = not redis.call('ZRANGEBYLEX', hd, lo, hi, 'LIMIT', 0, 1)[1]
            end
          end
          follows[k] = own
        end
        if own then
          fws[#fws + 1] = 0
          local prefix = prefixOf[k]
          if not prefix then
            prefix = heldPrefix(k)
            prefixOf[k] = prefix
          end
          fws[#fws + 1] = prefix .. pad(id)
          emit(id, 1, e[2], 1)
        else
          park(id, k)
        end
      end
    end
    if #locks > 0 then redis.call('HSET', lk, unpack(locks)) end
    if #fws > 0 then redis.call('ZADD', fw, unpack(fws)) end
  end
end

local lastS, lastW, lastT, untilDue = '', '', '', -1
if delivered == 0 and read == 0 and idleStep then
  local l = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
  lastS = '0-0'
  if l[1] then lastS = l[1][1] end
  local w = redis.call('XREVRANGE', wk, '+', '-', 'COUNT', 1)
  lastW = '0-0'
  if w[1] then lastW = w[1][1] end
  local t = redis.call('XREVRANGE', tw, '+', '-', 'COUNT', 1)
  lastT = '0-0'
  if t[1] then lastT = t[1][1] end
  for _, z in ipairs({ dl, sc }) do
    local d = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if d[2] then
      local u = math.max(0, tonumber(d[2]) - now)
      if untilDue < 0 or u < untilDue then untilDue = u end
    end
  end
end
-- The common settle reply is all ones (no key passed to a follower): its count says as much.
local allOnes = true
for _, r in ipairs(settled) do
  if r ~= 1 then
    allOnes = false
    break
  end
end
if allOnes then settled = #settled end
return { cursor, lastS, lastW, lastT, untilDue, read, out, settled }
`;

/**
 * Renews the leases a live consumer still holds (resets their idle time without counting a
 * delivery), so XAUTOCLAIM only takes messages from consumers that stopped renewing.
 * KEYS: stream. ARGV: group consumer id... Returns the ids the consumer no longer holds (reclaimed
 * by another member while this process stalled), so it can drop those it has not handed out.
 */
export const TOUCH = `
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if p[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`;

/**
 * Trims a topic stream without dropping anything a group has not settled: the cut never passes a
 * group's last-delivered id, its oldest leased message, or its oldest parked message.
 * KEYS: stream. ARGV: groupKeyPrefix maxLen('' = none) minIdAgeMs('' = none). Returns entries removed.
 */
export const TRIM = `${HELPERS}
local s, gp = KEYS[1], ARGV[1]
local maxLen, minAge = tonumber(ARGV[2]), tonumber(ARGV[3])
local function parse(id)
  local m, q = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(m), tonumber(q)
end
local function less(a, b)
  local am, aq = parse(a)
  local bm, bq = parse(b)
  if am ~= bm then return am < bm end
  return aq < bq
end
local function after(id)
  local m, q = parse(id)
  return string.format('%.0f-%.0f', m, q + 1)
end
local len = redis.call('XLEN', s)
if len == 0 then return 0 end
local cut = nil
if maxLen and len > maxLen then
  local r = redis.call('XRANGE', s, '-', '+', 'COUNT', math.min(len - maxLen, 10000))
  if r[#r] then cut = after(r[#r][1]) end
end
if minAge then
  local c = string.format('%.0f-0', nowMs() - minAge)
  if not cut or less(cut, c) then cut = c end
end
if not cut then return 0 end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local limit = after(last)
  if less(limit, cut) then cut = limit end
  local p = redis.call('XPENDING', s, name)
  if p[1] > 0 and less(p[2], cut) then cut = p[2] end
  local parked = redis.call('ZRANGE', gp .. name .. ':pk', 0, 0)
  if parked[1] then
    local u = unpad(parked[1])
    if less(u, cut) then cut = u end
  end
end
return redis.call('XTRIM', s, 'MINID', cut)
`;

/**
 * Schedules messages: each enters the stream `delayMs` from now on the Redis clock (so client and
 * server clocks need not agree). An id already scheduled is replaced. Bumps the topic's wake
 * stream so blocked members fetch and learn the new due time.
 * KEYS: scheduled scheduledBodies scheduledOrder topicWake. ARGV: delayMs, then id packedFields...
 */
export const SCHEDULE = `${HELPERS}
local sc, sb, so, tw = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local at = nowMs() + tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
local last = redis.call('INCRBY', so, n)
for i = 0, n - 1 do
  local id = ARGV[2 + 2 * i]
  redis.call('ZADD', sc, at, id)
  redis.call('HSET', sb, id, string.format('%020d', last - n + 1 + i) .. ARGV[3 + 2 * i])
end
redis.call('XADD', tw, 'MAXLEN', 1, '*', 'w', 1)
return n
`;

/**
 * Adds a publish batch to the stream (ADR 0311). ARGV: runs of `layout count` and then `count`
 * messages' values in that layout (codec.ts publishArgs); the field names are supplied here.
 * Atomic like the MULTI it replaces: Redis runs a script without interleaving, and an XADD with `*`
 * on a stream key fails only for a reason that fails the first one already (the key holds another
 * type, or the server is over maxmemory, which a script is refused for at its first write), so
 * nothing is half-written. One loop per layout, written out: a generic loop would build an argument
 * table per message for `unpack`, an allocation per message in Lua. KEYS: stream. Returns how many
 * messages were added.
 */
export const PUBLISH = `
local s = KEYS[1]
local i, n, added = 1, #ARGV, 0
while i <= n do
  local layout, count = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if layout == '0' then
    for _ = 1, count do
      redis.call('XADD', s, '*', 'i', ARGV[i], 'k', ARGV[i + 1], 'h', ARGV[i + 2], 'b', ARGV[i + 3])
      i = i + 4
    end
  elseif layout == '1' then
    for _ = 1, count do
      redis.call('XADD', s, '*', 'i', ARGV[i], 'k', ARGV[i + 1], 'b', ARGV[i + 2])
      i = i + 3
    end
  elseif layout == '2' then
    for _ = 1, count do
      redis.call('XADD', s, '*', 'i', ARGV[i], 'h', ARGV[i + 1], 'b', ARGV[i + 2])
      i = i + 3
    end
  else
    for _ = 1, count do
      redis.call('XADD', s, '*', 'i', ARGV[i], 'b', ARGV[i + 1])
      i = i + 2
    end
  end
  added = added + count
end
return added
`;

/**
 * Removes scheduled messages that have not entered the stream. Atomic against the fetch script's
 * move: a message is either removed here or moved there. KEYS: scheduled scheduledBodies.
 * ARGV: ids. Returns how many were removed.
 */
export const CANCEL_SCHEDULED = `
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    n = n + 1
  end
end
return n
`;

/** Deletes a consumer that holds no lease (XGROUP DELCONSUMER would drop its leases). KEYS: stream. ARGV: group consumer. */
export const FORGET_CONSUMER = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if p[1] then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`;

/**
 * Deletes consumers idle for longer than ARGV[2] ms that hold no lease (crashed processes leave
 * their names behind). A live consumer deleted this way is re-created by its next read.
 * KEYS: stream. ARGV: group idleMs. Returns how many were deleted.
 */
export const FORGET_IDLE_CONSUMERS = `
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'pending' then pending = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    n = n + 1
  end
end
return n
`;

type Arg = string | number | Buffer;
type ScriptFn = (...args: Arg[]) => Promise<unknown>;

/** The scripts bound to one client (ioredis sends EVALSHA and falls back to EVAL after a restart). */
export interface Scripts {
  /** Replies with Buffers, for message bodies. */
  fetch(keys: readonly string[], args: readonly Arg[]): Promise<unknown>;
  /** Per operation 0/1, or the id of the follower an ack passed the key to. */
  settle(keys: readonly string[], args: readonly Arg[]): Promise<(number | string)[]>;
  /** Returns how many messages were added. */
  publish(stream: string, args: readonly Arg[]): Promise<number>;
  schedule(keys: readonly string[], args: readonly Arg[]): Promise<number>;
  cancelScheduled(keys: readonly string[], ids: readonly string[]): Promise<number>;
  /** Returns the ids no longer held by the consumer. */
  touch(stream: string, args: readonly Arg[]): Promise<string[]>;
  trim(stream: string, args: readonly Arg[]): Promise<number>;
  forgetConsumer(stream: string, group: string, consumer: string): Promise<number>;
  forgetIdleConsumers(stream: string, group: string, idleMs: number): Promise<number>;
}

interface Definable {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** Registers the scripts on `client` and returns typed callers. */
export function bindScripts(client: Definable): Scripts {
  const define = (name: string, lua: string, numberOfKeys: number): void =>
    client.defineCommand(`herald_${name}`, { lua, numberOfKeys });
  define('fetch', FETCH, 12);
  define('settle', SETTLE, 9);
  define('publish', PUBLISH, 1);
  define('schedule', SCHEDULE, 4);
  define('cancel_scheduled', CANCEL_SCHEDULED, 2);
  define('touch', TOUCH, 1);
  define('trim', TRIM, 1);
  define('forget', FORGET_CONSUMER, 1);
  define('forget_idle', FORGET_IDLE_CONSUMERS, 1);
  const fn = (name: string): ScriptFn => {
    const f = (client as unknown as Record<string, ScriptFn>)[name];
    if (!f) throw new Error(`script ${name} was not registered`);
    return f.bind(client);
  };
  const fetch = fn('herald_fetchBuffer');
  const settle = fn('herald_settle');
  const publish = fn('herald_publish');
  const schedule = fn('herald_schedule');
  const cancelScheduled = fn('herald_cancel_scheduled');
  const touch = fn('herald_touch');
  const trim = fn('herald_trim');
  const forget = fn('herald_forget');
  const forgetIdle = fn('herald_forget_idle');
  return {
    fetch: (keys, args) => fetch(...keys, ...args),
    settle: (keys, args) => settle(...keys, ...args) as Promise<(number | string)[]>,
    publish: (stream, args) => publish(stream, ...args) as Promise<number>,
    schedule: (keys, args) => schedule(...keys, ...args) as Promise<number>,
    cancelScheduled: (keys, ids) => cancelScheduled(...keys, ...ids) as Promise<number>,
    touch: (stream, args) => touch(stream, ...args) as Promise<string[]>,
    trim: (stream, args) => trim(stream, ...args) as Promise<number>,
    forgetConsumer: (stream, group, consumer) => forget(stream, group, consumer) as Promise<number>,
    forgetIdleConsumers: (stream, group, idleMs) => forgetIdle(stream, group, idleMs) as Promise<number>,
  };
}
