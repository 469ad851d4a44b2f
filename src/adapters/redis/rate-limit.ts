/**
 * Redis-backed rate limiters: one budget shared by every process that uses the same key.
 *
 * Each decision is a single Lua script, so read-modify-write is atomic on the server, and the time
 * comes from Redis `TIME`, so processes with skewed clocks still agree (ADR 0103).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RateLimitDecision, RateLimiter } from '../../resilience/rate-limit/types.js';
import { ResilienceConfigError } from '../../resilience/errors.js';

const TOKEN_BUCKET = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local permits = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
local retry = 0
if permits > capacity then
  retry = -1
elseif tokens >= permits then
  tokens = tokens - permits
  allowed = 1
else
  retry = (permits - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return { allowed, tostring(tokens), tostring(retry) }
`;

const SLIDING_WINDOW = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local permits = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if permits > limit then
  return { 0, tostring(limit - count), '-1' }
end
if count + permits <= limit then
  for i = 1, permits do
    redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
  end
  redis.call('PEXPIRE', KEYS[1], math.ceil(window) + 1000)
  return { 1, tostring(limit - count - permits), '0' }
end
local must = count + permits - limit
local oldest = redis.call('ZRANGE', KEYS[1], must - 1, must - 1, 'WITHSCORES')
return { 0, tostring(limit - count), tostring(tonumber(oldest[2]) + window - now) }
`;

class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, key: string, args: (string | number)[]): Promise<[number, string, string]> {
    try {
      return (await client.evalsha(this.sha, 1, key, ...args)) as [number, string, string];
    } catch (err) {
      // First use on this server (or after SCRIPT FLUSH): send the body once, it is cached afterwards.
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return (await client.eval(this.source, 1, key, ...args)) as [number, string, string];
    }
  }
}

const tokenBucketScript = new Script(TOKEN_BUCKET);
const slidingWindowScript = new Script(SLIDING_WINDOW);

function decision([allowed, remaining, retry]: [number, string, string]): RateLimitDecision {
  const retryAfterMs = Number(retry);
  return {
    allowed: allowed === 1,
    remaining: Number(remaining),
    retryAfterMs: retryAfterMs < 0 ? Infinity : retryAfterMs,
  };
}

function checkPermits(owner: string, permits: number): void {
  if (!Number.isInteger(permits) || permits < 1) {
    throw new ResilienceConfigError(`${owner}: permits must be an integer >= 1, got ${String(permits)}`);
  }
}

export interface RedisRateLimiterOptions {
  /** An ioredis client (a Cluster works too when every key maps to one slot). */
  client: Redis;
  /** Prefix of every key written. Default `herald:rl:`. */
  keyPrefix?: string;
}

export interface RedisTokenBucketOptions extends RedisRateLimiterOptions {
  capacity: number;
  refillPerSecond: number;
}

/**
 * Token bucket shared across processes. State is one hash per key (`tokens`, `ts`) that expires once it
 * would be full again, so idle keys cost no memory.
 *
 * @example
 * const limiter = new RedisTokenBucket({ client: redis, capacity: 100, refillPerSecond: 50 });
 * const { allowed, retryAfterMs } = await limiter.tryAcquire(`tenant:${tenantId}`);
 */
export class RedisTokenBucket implements RateLimiter {
  readonly capacity: number;
  readonly refillPerSecond: number;
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(options: RedisTokenBucketOptions) {
    if (!(options.capacity > 0)) {
      throw new ResilienceConfigError(
        `RedisTokenBucket: capacity must be a number > 0, got ${String(options.capacity)}`,
      );
    }
    if (!(options.refillPerSecond > 0)) {
      throw new ResilienceConfigError(
        `RedisTokenBucket: refillPerSecond must be a number > 0, got ${String(options.refillPerSecond)}`,
      );
    }
    this.capacity = options.capacity;
    this.refillPerSecond = options.refillPerSecond;
    this.client = options.client;
    this.prefix = options.keyPrefix ?? 'herald:rl:';
  }

  async tryAcquire(key = '', permits = 1): Promise<RateLimitDecision> {
    checkPermits('RedisTokenBucket', permits);
    const raw = await tokenBucketScript.run(this.client, `${this.prefix}tb:${key}`, [
      this.capacity,
      this.refillPerSecond / 1000,
      permits,
    ]);
    return decision(raw);
  }
}

export interface RedisSlidingWindowOptions extends RedisRateLimiterOptions {
  limit: number;
  windowMs: number;
}

/**
 * Exact sliding window shared across processes: a sorted set of admission times per key, trimmed on
 * every call. Memory per key is bounded by `limit` entries and the key expires after a quiet window.
 */
export class RedisSlidingWindow implements RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly instance = randomUUID();
  private seq = 0;

  constructor(options: RedisSlidingWindowOptions) {
    if (!Number.isInteger(options.limit) || options.limit < 1) {
      throw new ResilienceConfigError(
        `RedisSlidingWindow: limit must be an integer >= 1, got ${String(options.limit)}`,
      );
    }
    if (!(options.windowMs > 0)) {
      throw new ResilienceConfigError(
        `RedisSlidingWindow: windowMs must be a number > 0, got ${String(options.windowMs)}`,
      );
    }
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.client = options.client;
    this.prefix = options.keyPrefix ?? 'herald:rl:';
  }

  async tryAcquire(key = '', permits = 1): Promise<RateLimitDecision> {
    checkPermits('RedisSlidingWindow', permits);
    // Members must be unique or two admissions in the same microsecond would collapse into one.
    const member = `${this.instance}:${this.seq++}`;
    const raw = await slidingWindowScript.run(this.client, `${this.prefix}sw:${key}`, [
      this.limit,
      this.windowMs,
      permits,
      member,
    ]);
    return decision(raw);
  }
}
