import { systemClock, type Clock } from '../clock.js';
import { int, positive } from '../validate.js';
import type { RateLimitDecision, RateLimiter } from './types.js';

export interface TokenBucketOptions {
  /** Bucket size: the largest burst. */
  capacity: number;
  /** Tokens added per second, continuously. */
  refillPerSecond: number;
  /** Tokens at start. Default: `capacity`. */
  initialTokens?: number;
  clock?: Clock;
}

/**
 * Token bucket: smooth average rate `refillPerSecond` with bursts up to `capacity`. Refill is computed
 * lazily from the clock on each call, so an idle bucket costs nothing. Over any interval of length T
 * it admits at most `capacity + refillPerSecond × T` permits.
 */
export class TokenBucket implements RateLimiter {
  readonly capacity: number;
  readonly refillPerMs: number;
  private tokens: number;
  private last: number;
  private readonly clock: Clock;

  constructor(options: TokenBucketOptions) {
    this.capacity = positive('TokenBucket', 'capacity', options.capacity);
    this.refillPerMs = positive('TokenBucket', 'refillPerSecond', options.refillPerSecond) / 1000;
    this.clock = options.clock ?? systemClock;
    this.tokens = Math.min(this.capacity, options.initialTokens ?? this.capacity);
    this.last = this.clock.now();
  }

  /** Tokens available now. */
  get available(): number {
    this.refill(this.clock.now());
    return this.tokens;
  }

  tryAcquire(_key?: string, permits = 1): RateLimitDecision {
    int('TokenBucket', 'permits', permits, 1);
    this.refill(this.clock.now());
    if (permits > this.capacity) return { allowed: false, remaining: this.tokens, retryAfterMs: Infinity };
    if (this.tokens >= permits) {
      this.tokens -= permits;
      return { allowed: true, remaining: this.tokens, retryAfterMs: 0 };
    }
    return {
      allowed: false,
      remaining: this.tokens,
      retryAfterMs: (permits - this.tokens) / this.refillPerMs,
    };
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.refillPerMs);
      this.last = now;
    }
  }
}
