import { systemClock, type Clock } from './clock.js';
import { DeadlineQueue, type DeadlineNode } from './deadline-queue.js';
import { TimeoutError } from './errors.js';
import { Emitter } from './events.js';
import {
  BasePolicy,
  RUN,
  SignalScope,
  type CallContext,
  type CommonOptions,
  type ResilienceMetrics,
} from './policy.js';
import { oneOf, positive } from './validate.js';

/**
 * `cooperative`: at the deadline `ctx.signal` aborts and the call is expected to stop; the policy waits
 * for it, rejecting with {@link TimeoutError} if it then fails (a late success is still returned).
 * `aggressive`: at the deadline the policy rejects at once, aborts the signal and stops waiting.
 */
export type TimeoutStrategy = 'cooperative' | 'aggressive';

export interface TimeoutOptions extends CommonOptions {
  /** Default `'cooperative'`. */
  strategy?: TimeoutStrategy;
  clock?: Clock;
}

/** Emitted when a deadline passes. */
export interface TimeoutEvent {
  timeoutMs: number;
}

class TimeoutScope extends SignalScope implements DeadlineNode {
  prev: DeadlineNode | undefined = undefined;
  next: DeadlineNode | undefined = undefined;
  queued = false;
  timedOut = false;
  /** Set in aggressive mode: rejects the racing promise. */
  reject: ((err: unknown) => void) | undefined = undefined;

  constructor(
    ctx: CallContext,
    readonly deadline: number,
    private readonly policy: Timeout,
  ) {
    super(ctx.scope, ctx.outer);
  }

  expire(): void {
    this.timedOut = true;
    const err = new TimeoutError(this.policy.timeoutMs);
    this.abort(err);
    this.policy.expired(this);
    if (this.reject) this.reject(err);
  }
}

/**
 * Bounds the duration of a call. All pending calls of one Timeout share a single timer (a deadline
 * list), so a timeout costs a list append and unlink per call instead of a timer and an
 * AbortController (ADR 0100).
 *
 * @example
 * const timeout = new Timeout(2_000);
 * await timeout.execute(({ signal }) => fetch(url, { signal }));
 */
export class Timeout extends BasePolicy {
  readonly timeoutMs: number;
  readonly strategy: TimeoutStrategy;
  readonly name: string;
  private readonly clock: Clock;
  private readonly queue: DeadlineQueue;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly timeouts = new Emitter<TimeoutEvent>();
  /** Subscribes to deadline expiries. */
  readonly onTimeout = this.timeouts.on;

  constructor(timeoutMs: number, options: TimeoutOptions = {}) {
    super();
    this.timeoutMs = positive('Timeout', 'timeoutMs', timeoutMs);
    this.strategy = oneOf('Timeout', 'strategy', options.strategy ?? 'cooperative', [
      'cooperative',
      'aggressive',
    ]);
    this.name = options.name ?? 'timeout';
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
    this.queue = new DeadlineQueue(this.clock);
  }

  /** @internal */
  expired(_scope: TimeoutScope): void {
    if (this.timeouts.size > 0) this.timeouts.emit({ timeoutMs: this.timeoutMs });
    this.metrics?.record({ policy: 'timeout', name: this.name, event: 'timeout' });
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    return this.strategy === 'cooperative' ? this.runCooperative(ctx, depth) : this.runAggressive(ctx, depth);
  }

  private async runCooperative(ctx: CallContext, depth: number): Promise<unknown> {
    const scope = new TimeoutScope(ctx, this.clock.now() + this.timeoutMs, this);
    const saved = ctx.scope;
    ctx.scope = scope;
    this.queue.push(scope);
    try {
      return await ctx.invoke(depth + 1);
    } catch (err) {
      if (scope.timedOut && err !== scope.reason) throw new TimeoutError(this.timeoutMs, { cause: err });
      throw err;
    } finally {
      this.queue.remove(scope);
      scope.dispose();
      ctx.scope = saved;
    }
  }

  private runAggressive(ctx: CallContext, depth: number): Promise<unknown> {
    const scope = new TimeoutScope(ctx, this.clock.now() + this.timeoutMs, this);
    // The inner chain gets its own context: we stop waiting for it at the deadline, and it must keep
    // seeing the aborted scope while it winds down (the outer context moves on).
    const inner = ctx.fork(scope);
    const outerSignal = ctx.abortSignal();
    return new Promise<unknown>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const done = (): void => {
        this.queue.remove(scope);
        scope.dispose();
        if (onAbort) outerSignal!.removeEventListener('abort', onAbort);
      };
      scope.reject = (err) => {
        done();
        reject(err);
      };
      if (outerSignal) {
        onAbort = () => {
          scope.abort(outerSignal.reason);
          done();
          reject(outerSignal.reason);
        };
        outerSignal.addEventListener('abort', onAbort, { once: true });
      }
      this.queue.push(scope);
      inner.invoke(depth + 1).then(
        (value) => {
          done();
          resolve(value);
        },
        (err: unknown) => {
          done();
          reject(err);
        },
      );
    });
  }
}
