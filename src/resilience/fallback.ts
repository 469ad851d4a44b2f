import { Emitter } from './events.js';
import {
  CallContext,
  RUN,
  type CommonOptions,
  type ExecuteContext,
  type ExecuteOptions,
  type ResilienceMetrics,
  type Runnable,
} from './policy.js';

export interface FallbackOptions extends CommonOptions {
  /** Which errors the fallback replaces. Default: all of them. */
  shouldHandle?: (error: unknown) => boolean;
}

export interface FallbackEvent {
  error: unknown;
}

/**
 * Replaces a failure with a fallback value. Put it outermost so it also covers rejections by the
 * policies inside it (open breaker, full bulkhead, timeout).
 *
 * @example
 * const cached = new Fallback(() => lastKnownPrices);
 * const prices = await cached.execute(() => pricing.fetch());
 */
export class Fallback<R> implements Runnable {
  readonly name: string;
  private readonly shouldHandle: ((error: unknown) => boolean) | undefined;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly self: readonly Runnable[] = [this];
  private readonly fallbacks = new Emitter<FallbackEvent>();
  /** Subscribes to failures replaced by the fallback. */
  readonly onFallback = this.fallbacks.on;

  constructor(
    private readonly handler: (error: unknown) => R | Promise<R>,
    options: FallbackOptions = {},
  ) {
    this.name = options.name ?? 'fallback';
    this.shouldHandle = options.shouldHandle;
    this.metrics = options.metrics;
  }

  execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T | R> {
    return this[RUN](new CallContext(fn, this.self, opts?.signal), 0) as Promise<T | R>;
  }

  async [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    try {
      return await ctx.invoke(depth + 1);
    } catch (error) {
      if (this.shouldHandle && !this.shouldHandle(error)) throw error;
      if (this.fallbacks.size > 0) this.fallbacks.emit({ error });
      this.metrics?.record({ policy: 'fallback', name: this.name, event: 'fallback' });
      return this.handler(error);
    }
  }
}
