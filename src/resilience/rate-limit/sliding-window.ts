import { systemClock, type Clock } from '../clock.js';
import { int, positive } from '../validate.js';
import type { RateLimitDecision, RateLimiter } from './types.js';

export interface SlidingWindowOptions {
  /** Permits per window. */
  limit: number;
  windowMs: number;
  clock?: Clock;
}

/**
 * Exact sliding window: at most `limit` permits in any interval of `windowMs`, with no burst at window
 * edges (unlike fixed windows). It keeps the timestamps of the last `limit` admitted permits in a ring,
 * so memory is `8 × limit` bytes whatever the traffic; for very large limits prefer the token bucket.
 */
export class SlidingWindowLimiter implements RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly ring: Float64Array;
  private head = 0;
  private size = 0;
  private readonly clock: Clock;

  constructor(options: SlidingWindowOptions) {
    this.limit = int('SlidingWindowLimiter', 'limit', options.limit, 1, 10_000_000);
    this.windowMs = positive('SlidingWindowLimiter', 'windowMs', options.windowMs);
    this.ring = new Float64Array(this.limit);
    this.clock = options.clock ?? systemClock;
  }

  tryAcquire(_key?: string, permits = 1): RateLimitDecision {
    int('SlidingWindowLimiter', 'permits', permits, 1);
    const now = this.clock.now();
    const cutoff = now - this.windowMs;
    // Entries are in admission order, so expired ones are all at the front.
    while (this.size > 0 && this.ring[this.head]! <= cutoff) {
      this.head = (this.head + 1) % this.limit;
      this.size--;
    }
    if (permits > this.limit)
      return { allowed: false, remaining: this.limit - this.size, retryAfterMs: Infinity };
    if (this.size + permits <= this.limit) {
      for (let i = 0; i < permits; i++) this.ring[(this.head + this.size++) % this.limit] = now;
      return { allowed: true, remaining: this.limit - this.size, retryAfterMs: 0 };
    }
    // The request fits once enough of the oldest entries have expired.
    const mustExpire = this.size + permits - this.limit;
    const freesAt = this.ring[(this.head + mustExpire - 1) % this.limit]! + this.windowMs;
    return { allowed: false, remaining: this.limit - this.size, retryAfterMs: Math.max(0, freesAt - now) };
  }
}
