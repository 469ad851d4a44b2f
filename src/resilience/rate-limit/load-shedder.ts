import { systemClock, type Clock } from '../clock.js';
import { LoadShedError } from '../errors.js';
import { Emitter } from '../events.js';
import { BasePolicy, RUN, type CallContext, type CommonOptions, type ResilienceMetrics } from '../policy.js';
import { RollingBuckets } from '../rolling.js';
import { int, num, positive } from '../validate.js';

export interface LoadShedderOptions extends CommonOptions {
  /** History for throughput and latency. Default 5 000. */
  windowMs?: number;
  /** Buckets in the window. Default 50. */
  buckets?: number;
  /**
   * Extra overload signal (CPU, event-loop lag). Shedding only happens while it returns true, or within
   * `coolOffMs` after it last did. Default: always true, i.e. shed on the in-flight estimate alone.
   */
  overloaded?: () => boolean;
  /** Keeps shedding this long after the last drop, so it does not flap. Default 1 000. */
  coolOffMs?: number;
  /** Never sheds at or below this many in-flight calls. Default 1. */
  minInFlight?: number;
  clock?: Clock;
}

export interface ShedEvent {
  inFlight: number;
  maxInFlight: number;
}

const PASS = 0;
const RT_SUM = 1;

/**
 * Adaptive load shedding in the spirit of go-zero's shedder: by Little's law the service can hold about
 * `maxThroughput × minLatency` calls in flight; calls beyond that only queue and add latency, so they
 * are dropped with {@link LoadShedError}. Throughput is the best completed-calls-per-bucket of the
 * window, latency the best bucket average, both excluding the current bucket.
 */
export class LoadShedder extends BasePolicy {
  readonly name: string;
  private readonly window: RollingBuckets;
  private readonly overloaded: () => boolean;
  private readonly coolOffMs: number;
  private readonly minInFlight: number;
  private readonly clock: Clock;
  private readonly metrics: ResilienceMetrics | undefined;
  private flying = 0;
  private lastDrop = Number.NEGATIVE_INFINITY;
  private readonly sheds = new Emitter<ShedEvent>();
  /** Subscribes to dropped calls. */
  readonly onShed = this.sheds.on;

  constructor(options: LoadShedderOptions = {}) {
    super();
    this.name = options.name ?? 'load-shedder';
    const windowMs = positive('LoadShedder', 'windowMs', options.windowMs ?? 5_000);
    this.window = new RollingBuckets(windowMs, int('LoadShedder', 'buckets', options.buckets ?? 50, 2), 2);
    this.overloaded = options.overloaded ?? (() => true);
    this.coolOffMs = num('LoadShedder', 'coolOffMs', options.coolOffMs ?? 1_000, 0);
    this.minInFlight = int('LoadShedder', 'minInFlight', options.minInFlight ?? 1, 0);
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
  }

  /** Calls currently running. */
  get inFlight(): number {
    return this.flying;
  }

  /** Estimated capacity in calls, or Infinity while the window has no completed bucket. */
  get maxInFlight(): number {
    this.window.advance(this.clock.now());
    let maxPass = 0;
    let minRt = Infinity;
    for (let age = 1; age < this.window.buckets; age++) {
      const pass = this.window.at(age, PASS);
      if (pass === 0) continue;
      if (pass > maxPass) maxPass = pass;
      const rt = this.window.at(age, RT_SUM) / pass;
      if (rt < minRt) minRt = rt;
    }
    if (maxPass === 0) return Infinity;
    // Calls per ms × ms per call; a 0 ms minimum latency would claim no capacity, so floor it at 1 ms.
    return (maxPass / this.window.bucketMs) * Math.max(minRt, 1);
  }

  async [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    const now = this.clock.now();
    if (this.flying > this.minInFlight && (this.overloaded() || now - this.lastDrop < this.coolOffMs)) {
      const max = this.maxInFlight;
      if (this.flying > max) {
        this.lastDrop = now;
        if (this.sheds.size > 0) this.sheds.emit({ inFlight: this.flying, maxInFlight: max });
        this.metrics?.record({ policy: 'load-shedder', name: this.name, event: 'shed' });
        throw new LoadShedError(this.name, this.flying, max);
      }
    }
    this.flying++;
    try {
      return await ctx.invoke(depth + 1);
    } finally {
      this.flying--;
      const end = this.clock.now();
      this.window.add(end, PASS, 1);
      this.window.add(end, RT_SUM, end - now);
    }
  }
}
