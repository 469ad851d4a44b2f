/** Outcome of a rate-limit check. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Permits left right after this decision (best estimate for distributed limiters). */
  remaining: number;
  /** When denied: milliseconds until the same request would be allowed. 0 when allowed. */
  retryAfterMs: number;
}

/**
 * A rate limiter, local or shared. Local limiters answer synchronously; shared ones (Redis) return a
 * promise. Unkeyed limiters ignore `key`; keyed ones keep one budget per key.
 */
export interface RateLimiter {
  tryAcquire(key?: string, permits?: number): RateLimitDecision | Promise<RateLimitDecision>;
}
