import { systemClock, type Clock } from '../clock.js';
import { ConfigError } from '../../contracts/errors.js';
import { BrokenCircuitError, IsolatedCircuitError } from '../errors.js';
import { Emitter } from '../events.js';
import {
  BasePolicy,
  IDLE_CONTEXT,
  RUN,
  isDeferred,
  type CallContext,
  type CommonOptions,
  type ExecuteContext,
  type ExecuteOptions,
  type ResilienceMetrics,
} from '../policy.js';
import { int, num, positive } from '../validate.js';
import { CountWindow, FAILED, SLOW, TimeWindow, type SlidingWindow, type WindowSnapshot } from './window.js';

/** Breaker states. `isolated` and `forced-closed` are only entered by hand. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated' | 'forced-closed';

/** Which calls the failure and slow-call rates are computed over. */
export type WindowOptions =
  { type: 'count'; size: number } | { type: 'time'; durationMs: number; buckets?: number };

export interface CircuitBreakerOptions extends CommonOptions {
  /** Default `{ type: 'count', size: 10 }`. */
  window?: WindowOptions;
  /** No rate is evaluated before the window holds this many calls. Default 5. */
  minimumCalls?: number;
  /** Failed calls the window must hold before the failure rate can open the breaker. Default 5. */
  failureThreshold?: number;
  /** Opens when failures / calls reaches this (0, 1]. Default 0.5. */
  failureRateThreshold?: number;
  /** A call at least this long counts as slow. Default: slow-call detection off. */
  slowCallDurationMs?: number;
  /** Opens when slow calls / calls reaches this (0, 1]. Default 0.5. */
  slowCallRateThreshold?: number;
  /** How long the breaker stays open before admitting probes. Default 60 000. */
  openDurationMs?: number;
  /** Grows the open duration after each failed half-open round: `openDurationMs × multiplier^n`, capped. */
  openBackoff?: { multiplier?: number; maxMs?: number };
  /** Probe calls admitted at once in half-open. Default 3. */
  halfOpenMaxCalls?: number;
  /** Successful probes needed to close. Default 2. */
  halfOpenSuccessThreshold?: number;
  /** Longest stay in half-open without a verdict before reopening, so it never sticks. Default 60 000. */
  halfOpenMaxWaitMs?: number;
  /** Which errors count as failures. Default: all except the caller's own abort. */
  isFailure?: (err: unknown) => boolean;
  /** Treats some successful results as failures (e.g. an HTTP 503 response). */
  isResultFailure?: (result: unknown) => boolean;
  /** Starts from a state saved with {@link CircuitBreaker.snapshot}. */
  restore?: CircuitBreakerSnapshot;
  clock?: Clock;
}

/** Why the state changed. */
export type StateChangeReason =
  | 'failure-rate'
  | 'slow-call-rate'
  | 'open-elapsed'
  | 'probe-failed'
  | 'probes-succeeded'
  | 'half-open-timeout'
  | 'manual'
  | 'restored';

export interface StateChangeEvent {
  from: CircuitState;
  to: CircuitState;
  reason: StateChangeReason;
  /** Open duration just armed, for transitions to `open`. */
  openForMs?: number;
}

export interface CallOutcomeEvent {
  durationMs: number;
  slow: boolean;
  error?: unknown;
}

export interface RejectEvent {
  state: CircuitState;
  error: BrokenCircuitError | IsolatedCircuitError;
}

/** JSON-safe breaker state, for persistence across restarts or sharing with a peer. */
export interface CircuitBreakerSnapshot {
  version: 1;
  state: CircuitState;
  /** Clock time the current open period ends (state `open`). */
  openUntil: number;
  /** Consecutive failed half-open rounds, drives the open backoff. */
  reopenCount: number;
  window: WindowSnapshot;
}

/** Ticket for a call admitted through {@link CircuitBreaker.tryAcquire}; report exactly one outcome. */
export interface CircuitPermit {
  success(): void;
  failure(error?: unknown): void;
  /** Neither success nor failure (e.g. cancelled by the caller); frees a half-open probe slot. */
  ignore(): void;
}

const OK = 0;
const FAIL = 1;
const IGNORE = 2;

/**
 * Circuit breaker with count- or time-based sliding window, failure-rate and slow-call-rate opening,
 * bounded half-open probing, a half-open deadline, and open-duration backoff. Memory is constant per
 * breaker, and it holds no timers: transitions out of `open` happen on the next call or state read.
 *
 * @example
 * const breaker = new CircuitBreaker({ slowCallDurationMs: 500, openDurationMs: 10_000 });
 * breaker.onStateChange(({ from, to }) => log.warn({ from, to }, 'breaker'));
 * await breaker.execute(() => callInventory());
 */
export class CircuitBreaker extends BasePolicy {
  readonly name: string;
  private readonly clock: Clock;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly window: SlidingWindow;
  private readonly minimumCalls: number;
  private readonly failureThreshold: number;
  private readonly failureRate: number;
  private readonly slowMs: number;
  private readonly slowRate: number;
  private readonly openMs: number;
  private readonly backoffMultiplier: number;
  private readonly backoffMaxMs: number;
  private readonly halfOpenMax: number;
  private readonly halfOpenSuccesses: number;
  private readonly halfOpenMaxWaitMs: number;
  private readonly isFailure: ((err: unknown) => boolean) | undefined;
  private readonly isResultFailure: ((result: unknown) => boolean) | undefined;
  /** Slow-call detection or metrics: every call's duration is needed, so its start time too. */
  private readonly timed: boolean;
  /** A time window needs the clock when an outcome is recorded (not when the call starts). */
  private readonly timeWindow: boolean;

  private current: CircuitState = 'closed';
  /** Bumped on every transition; outcomes of calls admitted in an earlier generation are discarded. */
  private gen = 0;
  private openUntil = 0;
  private reopenCount = 0;
  private halfOpenSince = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  /**
   * Settlement handlers for untimed calls admitted in the current generation, rebuilt on every
   * transition. The generation is the only per-call state such a call needs, so binding it here
   * instead of per call leaves the fast path without a closure or an async frame (ADR 0104).
   */
  private untimedOk!: (value: unknown) => unknown;
  private untimedFailed!: (err: unknown) => never;

  private readonly stateChanges = new Emitter<StateChangeEvent>();
  private readonly successes = new Emitter<CallOutcomeEvent>();
  private readonly failures = new Emitter<CallOutcomeEvent>();
  private readonly rejects = new Emitter<RejectEvent>();
  /** Subscribes to state transitions. */
  readonly onStateChange = this.stateChanges.on;
  /** Subscribes to calls counted as successes. */
  readonly onSuccess = this.successes.on;
  /** Subscribes to calls counted as failures. */
  readonly onFailure = this.failures.on;
  /** Subscribes to calls refused without being attempted. */
  readonly onReject = this.rejects.on;

  constructor(options: CircuitBreakerOptions = {}) {
    super();
    const O = 'CircuitBreaker';
    this.name = options.name ?? 'circuit-breaker';
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
    const w = options.window ?? { type: 'count', size: 10 };
    if (w.type === 'count') this.window = new CountWindow(int(O, 'window.size', w.size, 1));
    else if (w.type === 'time') {
      positive(O, 'window.durationMs', w.durationMs);
      this.window = new TimeWindow(w.durationMs, int(O, 'window.buckets', w.buckets ?? 10, 1, 10_000));
    } else throw new ConfigError(`${O}.window.type`, `must be 'count' or 'time'`);
    this.minimumCalls = int(O, 'minimumCalls', options.minimumCalls ?? 5, 1);
    this.failureThreshold = int(O, 'failureThreshold', options.failureThreshold ?? 5, 1);
    if (w.type === 'count' && this.minimumCalls > w.size) {
      throw new ConfigError(
        `${O}.minimumCalls`,
        `(${this.minimumCalls}) must not exceed window.size (${w.size}), or the breaker can never open`,
      );
    }
    this.failureRate = positive(O, 'failureRateThreshold', options.failureRateThreshold ?? 0.5, 1);
    this.slowMs =
      options.slowCallDurationMs === undefined
        ? Infinity
        : positive(O, 'slowCallDurationMs', options.slowCallDurationMs);
    this.slowRate = positive(O, 'slowCallRateThreshold', options.slowCallRateThreshold ?? 0.5, 1);
    this.openMs = positive(O, 'openDurationMs', options.openDurationMs ?? 60_000);
    this.backoffMultiplier = num(O, 'openBackoff.multiplier', options.openBackoff?.multiplier ?? 1, 1);
    this.backoffMaxMs = num(
      O,
      'openBackoff.maxMs',
      options.openBackoff?.maxMs ?? this.openMs * 32,
      this.openMs,
    );
    this.halfOpenMax = int(O, 'halfOpenMaxCalls', options.halfOpenMaxCalls ?? 3, 1);
    this.halfOpenSuccesses = int(O, 'halfOpenSuccessThreshold', options.halfOpenSuccessThreshold ?? 2, 1);
    this.halfOpenMaxWaitMs = positive(O, 'halfOpenMaxWaitMs', options.halfOpenMaxWaitMs ?? 60_000);
    this.isFailure = options.isFailure;
    this.isResultFailure = options.isResultFailure;
    this.timed = this.slowMs !== Infinity || this.metrics !== undefined;
    this.timeWindow = this.window instanceof TimeWindow;
    this.bindGeneration();
    if (options.restore) this.restore(options.restore);
  }

  /** Current state, after applying any transition that is due (open → half-open, stuck half-open → open). */
  get state(): CircuitState {
    this.refresh(this.clock.now());
    return this.current;
  }

  /** Calls, failures and slow calls currently in the window. */
  get stats(): { calls: number; failures: number; slow: number } {
    this.window.advance(this.clock.now());
    return { calls: this.window.calls, failures: this.window.failures, slow: this.window.slow };
  }

  override execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T> {
    // Untimed closed breaker and no caller signal: the shared context carries all fn can see.
    if (opts?.signal === undefined && this.untimed()) {
      // Taken before fn runs: fn may itself move the breaker to a new generation.
      const ok = this.untimedOk;
      const failed = this.untimedFailed;
      let r: unknown;
      try {
        r = fn(IDLE_CONTEXT);
      } catch (err) {
        return rejectThrough(failed, err);
      }
      return settle(r, ok, failed) as Promise<T>;
    }
    return super.execute(fn, opts);
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    // The caller's signal is needed to tell its abort from a failure, which the shared handlers
    // cannot see: calls with one take the general path.
    if (ctx.outer === undefined && this.untimed()) {
      const ok = this.untimedOk;
      const failed = this.untimedFailed;
      let r: unknown;
      try {
        r = ctx.call(depth + 1);
      } catch (err) {
        return rejectThrough(failed, err);
      }
      return settle(r, ok, failed);
    }
    return this.runTracked(ctx, depth);
  }

  /**
   * True when a call needs neither a start time nor per-call state: closed (or forced closed), no
   * slow-call threshold or metrics, and nobody listening for outcomes (a listener may subscribe at any
   * time, so this is checked per call).
   */
  private untimed(): boolean {
    return (
      (this.current === 'closed' || this.current === 'forced-closed') &&
      !this.timed &&
      this.successes.size === 0 &&
      this.failures.size === 0
    );
  }

  /** Admission through the state machine with timing, for every call the fast path cannot take. */
  private async runTracked(ctx: CallContext, depth: number): Promise<unknown> {
    // Untimed but carrying a caller signal: still no clock read, only the async frame.
    const started = this.untimed() ? -1 : this.clock.now();
    const gen = started === -1 ? this.gen : this.admit(started);
    let result: unknown;
    try {
      result = await ctx.invoke(depth + 1);
    } catch (err) {
      this.complete(gen, started, this.classify(err, ctx.outer), err);
      throw err;
    }
    this.complete(gen, started, this.isResultFailure?.(result) === true ? FAIL : OK, undefined);
    return result;
  }

  /** See {@link untimedOk}. */
  private bindGeneration(): void {
    const gen = this.gen;
    this.untimedOk = (value) => {
      this.complete(gen, -1, this.isResultFailure?.(value) === true ? FAIL : OK, undefined);
      return value;
    };
    this.untimedFailed = (err) => {
      this.complete(gen, -1, this.classify(err, undefined), err);
      throw err;
    };
  }

  /**
   * Low-level admission for integrations that cannot wrap a promise (interceptors, streams).
   * Throws {@link BrokenCircuitError} or {@link IsolatedCircuitError} when the call is refused.
   */
  tryAcquire(): CircuitPermit {
    const started = this.clock.now();
    const gen = this.admit(started);
    let done = false;
    const finish = (outcome: number, err: unknown): void => {
      if (done) return;
      done = true;
      this.complete(gen, started, outcome, err);
    };
    return {
      success: () => finish(OK, undefined),
      failure: (err) => finish(FAIL, err),
      ignore: () => finish(IGNORE, undefined),
    };
  }

  /** Refuses every call until {@link reset}. */
  isolate(): void {
    this.transition('isolated', 'manual', this.clock.now());
  }

  /** Admits every call and never opens until {@link reset}; outcomes are still recorded. */
  forceClose(): void {
    this.transition('forced-closed', 'manual', this.clock.now());
  }

  /** Back to `closed` with an empty window and no backoff. */
  reset(): void {
    this.window.reset();
    this.reopenCount = 0;
    this.transition('closed', 'manual', this.clock.now());
  }

  /** A JSON-safe copy of the state; see {@link restore}. */
  snapshot(): CircuitBreakerSnapshot {
    this.refresh(this.clock.now());
    return {
      version: 1,
      state: this.current,
      openUntil: this.openUntil,
      reopenCount: this.reopenCount,
      window: this.window.snapshot(),
    };
  }

  /**
   * Restores a {@link snapshot}. A restored half-open breaker starts a fresh probe round, since the
   * probes of the saving process will never report back here.
   */
  restore(s: CircuitBreakerSnapshot): void {
    if (s.version !== 1)
      throw new ConfigError('CircuitBreaker.snapshot', `unsupported snapshot version ${String(s.version)}`);
    this.transition(s.state, 'restored', this.clock.now());
    this.window.restore(s.window);
    this.reopenCount = s.reopenCount;
    this.openUntil = s.openUntil;
  }

  private classify(err: unknown, outer: AbortSignal | undefined): number {
    // The caller giving up says nothing about the health of the dependency.
    if (outer?.aborted && (err === outer.reason || (err instanceof Error && err.name === 'AbortError')))
      return IGNORE;
    if (this.isFailure && !this.isFailure(err)) return OK;
    return FAIL;
  }

  private refresh(now: number): void {
    if (this.current === 'open' && now >= this.openUntil) this.transition('half-open', 'open-elapsed', now);
    else if (this.current === 'half-open' && now - this.halfOpenSince >= this.halfOpenMaxWaitMs) {
      this.open(now, 'half-open-timeout');
    }
  }

  /** Returns the generation the call was admitted in, or throws. */
  private admit(now: number): number {
    switch (this.current) {
      case 'closed':
      case 'forced-closed':
        return this.gen;
      case 'isolated':
        return this.reject(new IsolatedCircuitError(this.name));
      case 'open':
        if (now < this.openUntil) return this.reject(new BrokenCircuitError(this.name, this.openUntil - now));
        this.transition('half-open', 'open-elapsed', now);
        break;
      case 'half-open':
        if (now - this.halfOpenSince >= this.halfOpenMaxWaitMs) {
          this.open(now, 'half-open-timeout');
          return this.reject(new BrokenCircuitError(this.name, this.openUntil - now));
        }
        break;
    }
    if (this.probesInFlight >= this.halfOpenMax) return this.reject(new BrokenCircuitError(this.name, 0));
    this.probesInFlight++;
    return this.gen;
  }

  private reject(error: BrokenCircuitError | IsolatedCircuitError): never {
    if (this.rejects.size > 0) this.rejects.emit({ state: this.current, error });
    this.metrics?.record({ policy: 'circuit-breaker', name: this.name, event: 'rejected' });
    throw error;
  }

  private complete(gen: number, started: number, outcome: number, err: unknown): void {
    if (gen !== this.gen) return;
    // Untimed calls (started = -1) read the clock only for a time window's bucket.
    const now = started !== -1 || this.timeWindow ? this.clock.now() : 0;
    const durationMs = started === -1 ? 0 : now - started;
    const slow = durationMs >= this.slowMs;
    if (outcome !== IGNORE) this.report(outcome, durationMs, slow, err);
    switch (this.current) {
      case 'closed':
      case 'forced-closed':
        if (outcome === IGNORE) return;
        this.window.record(now, (outcome === FAIL ? FAILED : 0) | (slow ? SLOW : 0));
        if (this.current === 'closed') this.evaluate();
        return;
      case 'half-open':
        this.probesInFlight--;
        if (outcome === IGNORE) return;
        if (outcome === FAIL || slow) {
          this.reopenCount++;
          this.open(now, 'probe-failed');
        } else if (++this.probeSuccesses >= this.halfOpenSuccesses) {
          this.reopenCount = 0;
          this.window.reset();
          this.transition('closed', 'probes-succeeded', now);
        }
        return;
      default:
        return;
    }
  }

  private report(outcome: number, durationMs: number, slow: boolean, error: unknown): void {
    const emitter = outcome === FAIL ? this.failures : this.successes;
    if (emitter.size > 0) emitter.emit(outcome === FAIL ? { durationMs, slow, error } : { durationMs, slow });
    this.metrics?.record({
      policy: 'circuit-breaker',
      name: this.name,
      event: outcome === FAIL ? 'failure' : 'success',
      durationMs,
    });
  }

  /** Reads the clock itself: `now` is 0 on the untimed fast path. */
  private evaluate(): void {
    const w = this.window;
    if (w.calls < this.minimumCalls) return;
    if (w.failures >= this.failureThreshold && w.failures >= this.failureRate * w.calls) {
      this.open(this.clock.now(), 'failure-rate');
    } else if (this.slowMs !== Infinity && w.slow >= this.slowRate * w.calls) {
      this.open(this.clock.now(), 'slow-call-rate');
    }
  }

  private open(now: number, reason: StateChangeReason): void {
    const duration = Math.min(this.backoffMaxMs, this.openMs * this.backoffMultiplier ** this.reopenCount);
    this.openUntil = now + duration;
    this.transition('open', reason, now, duration);
  }

  private transition(to: CircuitState, reason: StateChangeReason, now: number, openForMs?: number): void {
    const from = this.current;
    this.gen++;
    this.bindGeneration();
    this.current = to;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    if (to === 'half-open') this.halfOpenSince = now;
    if (to === 'closed' || to === 'open') this.window.reset();
    if (from === to && reason !== 'restored' && to !== 'open') return;
    this.stateChanges.emit(openForMs === undefined ? { from, to, reason } : { from, to, reason, openForMs });
    this.metrics?.record({ policy: 'circuit-breaker', name: this.name, event: 'state', state: to });
  }
}

/** Settles an untimed call's result: thenables through the handlers, plain values at once. */
function settle(
  r: unknown,
  ok: (value: unknown) => unknown,
  failed: (err: unknown) => never,
): Promise<unknown> {
  if (isDeferred(r)) return Promise.resolve(r).then(ok, failed);
  // A plain value is final: account for it now rather than a microtask later.
  try {
    return Promise.resolve(ok(r));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Records a synchronous throw through `failed` (which rethrows it) as a rejection. */
function rejectThrough(failed: (err: unknown) => never, err: unknown): Promise<never> {
  try {
    failed(err);
  } catch (e) {
    return Promise.reject(e);
  }
}
