import { systemClock, type Clock } from '../clock.js';
import { BrokenCircuitError, IsolatedCircuitError, RetryExhaustedError } from '../errors.js';
import { Emitter } from '../events.js';
import {
  BasePolicy,
  RUN,
  isDeferred,
  sleep,
  type CallContext,
  type CommonOptions,
  type ResilienceMetrics,
} from '../policy.js';
import { int, num } from '../validate.js';
import { ExponentialBackoff, type BackoffOptions } from './backoff.js';

export interface RetryOptions extends CommonOptions, BackoffOptions {
  /** Retries after the first attempt. Default 3 (so up to 4 attempts). */
  maxRetries?: number;
  /** Gives up rather than start a delay that would end past this budget. Default: no limit. */
  maxElapsedMs?: number;
  /**
   * Whether an error is worth another attempt. Default: every error except an open or isolated
   * breaker (retrying into one only burns the budget).
   */
  retryOn?: (error: unknown, attempt: number) => boolean;
  /** Whether a successful result should be retried (e.g. HTTP 503). After the last attempt it is returned. */
  retryOnResult?: (result: unknown, attempt: number) => boolean;
  /**
   * Overrides the computed delay, e.g. from a `Retry-After` header. Return undefined to keep the
   * backoff. Errors with a numeric `retryAfterMs` (like RateLimitedError) are honoured without this.
   */
  delayFor?: (failure: { error?: unknown; result?: unknown }, attempt: number) => number | undefined;
  /** Source of jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  clock?: Clock;
}

export interface RetryEvent {
  /** The attempt that just failed (1-based). */
  attempt: number;
  delayMs: number;
  error?: unknown;
  result?: unknown;
}

export interface GiveUpEvent {
  attempts: number;
  reason: 'attempts' | 'elapsed' | 'not-retryable' | 'aborted';
  error?: unknown;
}

const defaultRetryOn = (err: unknown): boolean =>
  !(err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError);

/**
 * Retries failed calls with exponential backoff and jitter, within an attempt and an elapsed-time
 * budget. Aborting the call's signal stops the loop, including mid-delay.
 *
 * @example
 * const retry = new Retry({ maxRetries: 5, initialDelayMs: 50, jitter: 'decorrelated' });
 * retry.onRetry(({ attempt, delayMs }) => log.info({ attempt, delayMs }, 'retrying'));
 * await retry.execute(({ signal }) => fetch(url, { signal }));
 */
export class Retry extends BasePolicy {
  readonly name: string;
  readonly maxRetries: number;
  readonly maxElapsedMs: number;
  readonly backoff: ExponentialBackoff;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly retryOn: (error: unknown, attempt: number) => boolean;
  private readonly retryOnResult: ((result: unknown, attempt: number) => boolean) | undefined;
  private readonly delayFor: RetryOptions['delayFor'];
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly retries = new Emitter<RetryEvent>();
  private readonly giveUps = new Emitter<GiveUpEvent>();
  /** Called before each retry delay (the `onRetry` hook). */
  readonly onRetry = this.retries.on;
  /** Called when the policy stops retrying and rethrows. */
  readonly onGiveUp = this.giveUps.on;

  constructor(options: RetryOptions = {}) {
    super();
    this.name = options.name ?? 'retry';
    this.maxRetries = int('Retry', 'maxRetries', options.maxRetries ?? 3, 0);
    this.maxElapsedMs = num('Retry', 'maxElapsedMs', options.maxElapsedMs ?? Infinity, 0);
    this.backoff = new ExponentialBackoff(options);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.retryOn = options.retryOn ?? defaultRetryOn;
    this.retryOnResult = options.retryOnResult;
    this.delayFor = options.delayFor;
    this.metrics = options.metrics;
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    // The clock only serves the elapsed budget: without one, nothing needs it.
    const started = this.maxElapsedMs === Infinity ? 0 : this.clock.now();
    if (this.retryOnResult !== undefined) return this.loop(ctx, depth, started, 1, false, undefined);
    // First attempt without an async frame: a success passes straight through, and only a failure
    // enters the retry loop (ADR 0105).
    ctx.attempt = 1;
    let r: unknown;
    try {
      r = ctx.call(depth + 1);
    } catch (err) {
      return this.loop(ctx, depth, started, 1, true, err);
    }
    if (!isDeferred(r)) return Promise.resolve(r);
    return Promise.resolve(r).then(undefined, (err: unknown) => this.loop(ctx, depth, started, 1, true, err));
  }

  /**
   * The retry loop from `attempt` on. With `failed`, that attempt already ran and threw `firstError`,
   * so the loop starts at its verdict.
   */
  private async loop(
    ctx: CallContext,
    depth: number,
    started: number,
    attempt: number,
    failed: boolean,
    firstError: unknown,
  ): Promise<unknown> {
    let previous = this.backoff.initialDelayMs;
    for (; ; attempt++) {
      let error: unknown;
      let result: unknown;
      let failedWithError = false;
      if (failed) {
        failed = false;
        this.checkRetryable(ctx, attempt, firstError);
        error = firstError;
        failedWithError = true;
      } else {
        ctx.attempt = attempt;
        try {
          result = await ctx.invoke(depth + 1);
          if (this.retryOnResult === undefined || !this.retryOnResult(result, attempt)) return result;
          if (attempt > this.maxRetries) return result;
        } catch (err) {
          this.checkRetryable(ctx, attempt, err);
          error = err;
          failedWithError = true;
        }
      }
      let delay = this.backoff.delay(attempt, previous, this.random);
      const override =
        this.delayFor?.(failedWithError ? { error } : { result }, attempt) ?? retryAfterOf(error);
      if (override !== undefined) delay = Math.max(0, override);
      previous = delay;
      if (this.maxElapsedMs !== Infinity && this.clock.now() - started + delay > this.maxElapsedMs) {
        if (failedWithError) return this.giveUp(attempt, 'elapsed', error);
        return result;
      }
      if (this.retries.size > 0) {
        this.retries.emit(
          failedWithError ? { attempt, delayMs: delay, error } : { attempt, delayMs: delay, result },
        );
      }
      this.metrics?.record({ policy: 'retry', name: this.name, event: 'retry', durationMs: delay });
      await sleep(this.clock, delay, ctx.abortSignal());
    }
  }

  /** Gives up (throws) unless the error of `attempt` may be retried. */
  private checkRetryable(ctx: CallContext, attempt: number, err: unknown): void {
    if (ctx.aborted) this.giveUp(attempt, 'aborted', err);
    if (!this.retryOn(err, attempt)) this.giveUp(attempt, 'not-retryable', err);
    if (attempt > this.maxRetries) this.giveUp(attempt, 'attempts', err);
  }

  private giveUp(attempts: number, reason: GiveUpEvent['reason'], error: unknown): never {
    if (this.giveUps.size > 0) this.giveUps.emit({ attempts, reason, error });
    this.metrics?.record({ policy: 'retry', name: this.name, event: `give-up:${reason}` });
    if (reason === 'attempts' || reason === 'elapsed') throw new RetryExhaustedError(attempts, error, reason);
    throw error;
  }
}

function retryAfterOf(error: unknown): number | undefined {
  if (error && typeof error === 'object' && 'retryAfterMs' in error) {
    const v = (error as { retryAfterMs: unknown }).retryAfterMs;
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  }
  return undefined;
}
