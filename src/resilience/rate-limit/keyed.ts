import { int } from '../validate.js';
import { LruMap } from './lru.js';
import type { RateLimitDecision, RateLimiter } from './types.js';

export interface KeyedLimiterOptions {
  /** Keys tracked at once; the least recently used key is forgotten beyond it. Default 10 000. */
  maxKeys?: number;
}

/**
 * One limiter per key (tenant, user, IP) with bounded memory: keys live in an LRU of `maxKeys`. An
 * evicted key starts over with a fresh limiter, so size the LRU above the number of keys active within
 * one window, or an attacker cycling keys could reset its own budget.
 *
 * @example
 * const perTenant = new KeyedLimiter(() => new TokenBucket({ capacity: 20, refillPerSecond: 10 }));
 * perTenant.tryAcquire(tenantId);
 */
export class KeyedLimiter<L extends RateLimiter = RateLimiter> implements RateLimiter {
  private readonly limiters: LruMap<string, L>;

  constructor(
    private readonly create: (key: string) => L,
    options: KeyedLimiterOptions = {},
  ) {
    this.limiters = new LruMap(int('KeyedLimiter', 'maxKeys', options.maxKeys ?? 10_000, 1));
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.limiters.size;
  }

  /** The limiter of `key`, created on first use. */
  limiterFor(key: string): L {
    let l = this.limiters.get(key);
    if (!l) {
      l = this.create(key);
      this.limiters.set(key, l);
    }
    return l;
  }

  tryAcquire(key = '', permits = 1): RateLimitDecision | Promise<RateLimitDecision> {
    return this.limiterFor(key).tryAcquire(key, permits);
  }
}
