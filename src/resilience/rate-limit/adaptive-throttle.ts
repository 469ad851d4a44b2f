import { systemClock, type Clock } from '../clock.js';
import { RateLimitedError } from '../errors.js';
import { Emitter } from '../events.js';
import { BasePolicy, RUN, type CallContext, type CommonOptions, type ResilienceMetrics } from '../policy.js';
import { RollingBuckets } from '../rolling.js';
import { int, num, positive } from '../validate.js';

export interface AdaptiveThrottleOptions extends CommonOptions {
  /** Multiplier K of the SRE formula; lower throttles more aggressively. Default 2. */
  k?: number;
  /** History the ratio is computed over. Default 120 000 (two minutes, as in the SRE book). */
  windowMs?: number;
  /** Buckets the window is split into. Default 60. */
  buckets?: number;
  /** Whether an error means the backend refused the request. Default: every error except the caller's abort. */
  isRejection?: (error: unknown) => boolean;
  /** Source of randomness in [0, 1). Default Math.random. */
  random?: () => number;
  clock?: Clock;
}

export interface ThrottleEvent {
  probability: number;
}

const REQUESTS = 0;
const ACCEPTS = 1;

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"): each client tracks its
 * requests and the backend's accepts, and rejects locally with probability
 * `max(0, (requests − K·accepts) / (requests + 1))`. Locally rejected calls still count as requests, so
 * the client backs off in proportion to how much the backend is refusing, and recovers as it accepts.
 *
 * @example
 * const throttle = new AdaptiveThrottle({ k: 2 });
 * await throttle.execute(() => backend.call());
 */
export class AdaptiveThrottle extends BasePolicy {
  readonly name: string;
  readonly k: number;
  private readonly window: RollingBuckets;
  private readonly isRejection: ((error: unknown) => boolean) | undefined;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly throttled = new Emitter<ThrottleEvent>();
  /** Subscribes to locally rejected calls. */
  readonly onReject = this.throttled.on;

  constructor(options: AdaptiveThrottleOptions = {}) {
    super();
    this.name = options.name ?? 'adaptive-throttle';
    this.k = num('AdaptiveThrottle', 'k', options.k ?? 2, 1);
    const windowMs = positive('AdaptiveThrottle', 'windowMs', options.windowMs ?? 120_000);
    this.window = new RollingBuckets(
      windowMs,
      int('AdaptiveThrottle', 'buckets', options.buckets ?? 60, 1),
      2,
    );
    this.isRejection = options.isRejection;
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
  }

  /** Current local rejection probability. */
  get probability(): number {
    this.window.advance(this.clock.now());
    const requests = this.window.sum(REQUESTS);
    return Math.max(0, (requests - this.k * this.window.sum(ACCEPTS)) / (requests + 1));
  }

  async [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    const p = this.probability;
    const now = this.clock.now();
    this.window.add(now, REQUESTS, 1);
    if (p > 0 && this.random() < p) {
      if (this.throttled.size > 0) this.throttled.emit({ probability: p });
      this.metrics?.record({ policy: 'adaptive-throttle', name: this.name, event: 'rejected' });
      throw new RateLimitedError(this.name, this.window.bucketMs);
    }
    try {
      const result = await ctx.invoke(depth + 1);
      this.window.add(this.clock.now(), ACCEPTS, 1);
      return result;
    } catch (err) {
      // A caller giving up, or an application error the backend did process, is not a refusal.
      const accepted =
        ctx.outer?.aborted === true || (this.isRejection !== undefined && !this.isRejection(err));
      if (accepted) this.window.add(this.clock.now(), ACCEPTS, 1);
      throw err;
    }
  }
}
