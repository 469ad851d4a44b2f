import { RateLimitedError } from '../errors.js';
import { Emitter } from '../events.js';
import { BasePolicy, RUN, type CallContext, type CommonOptions, type ResilienceMetrics } from '../policy.js';
import type { RateLimitDecision, RateLimiter } from './types.js';

export interface RateLimitPolicyOptions extends CommonOptions {
  /** Budget key (tenant, user); for keyed and shared limiters. Default ''. */
  key?: string;
  /** Permits each call takes. Default 1. */
  permits?: number;
}

export interface RateLimitRejectEvent {
  key: string;
  retryAfterMs: number;
}

/**
 * Turns a {@link RateLimiter} into a policy: a denied call is not attempted and rejects with
 * {@link RateLimitedError} (whose `retryAfterMs` an enclosing Retry honours).
 *
 * @example
 * const limited = new RateLimitPolicy(new TokenBucket({ capacity: 10, refillPerSecond: 5 }));
 * await limited.execute(() => sendSms(to, text));
 */
export class RateLimitPolicy extends BasePolicy {
  readonly name: string;
  private readonly key: string;
  private readonly permits: number;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly rejects = new Emitter<RateLimitRejectEvent>();
  /** Subscribes to refused calls. */
  readonly onReject = this.rejects.on;

  constructor(
    readonly limiter: RateLimiter,
    options: RateLimitPolicyOptions = {},
  ) {
    super();
    this.name = options.name ?? 'rate-limit';
    this.key = options.key ?? '';
    this.permits = options.permits ?? 1;
    this.metrics = options.metrics;
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    const d = this.limiter.tryAcquire(this.key, this.permits);
    if (d instanceof Promise) return d.then((decision) => this.proceed(decision, ctx, depth));
    return this.proceed(d, ctx, depth);
  }

  private proceed(d: RateLimitDecision, ctx: CallContext, depth: number): Promise<unknown> {
    if (d.allowed) return ctx.invoke(depth + 1);
    if (this.rejects.size > 0) this.rejects.emit({ key: this.key, retryAfterMs: d.retryAfterMs });
    this.metrics?.record({ policy: 'rate-limit', name: this.name, event: 'rejected' });
    return Promise.reject(new RateLimitedError(this.name, d.retryAfterMs));
  }
}
