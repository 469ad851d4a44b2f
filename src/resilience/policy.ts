/**
 * The `Policy` contract and the per-call context shared by every policy of a pipeline.
 *
 * One {@link CallContext} travels down a composed pipeline; each policy calls `ctx.invoke(depth + 1)` to
 * run the next policy (or the user's function). That keeps composition free of per-call closures, and
 * the AbortSignal handed to user code is created only when something reads `ctx.signal` (see ADR 0101).
 */

/** What the user's function receives. */
export interface ExecuteContext {
  /** Aborted when the caller's signal aborts, a timeout fires, or a hedge loses. Created on first read. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, incremented by an enclosing retry. */
  readonly attempt: number;
}

/** Per-call options. */
export interface ExecuteOptions {
  /** Cancels the call: waits (retry backoff, bulkhead queue) end early and `ctx.signal` aborts. */
  signal?: AbortSignal;
}

/** A resilience policy: runs `fn` under some protection. */
export interface Policy {
  execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T>;
}

/** Kinds of policy reported through {@link ResilienceMetrics}. */
export type PolicyKind =
  | 'circuit-breaker'
  | 'retry'
  | 'timeout'
  | 'bulkhead'
  | 'fallback'
  | 'hedge'
  | 'rate-limit'
  | 'adaptive-throttle'
  | 'load-shedder'
  | 'degradation'
  | 'http-client'
  | 'grpc-client';

/** One observation for a metrics backend. */
export interface MetricEvent {
  policy: PolicyKind;
  /** The policy's `name` option. */
  name: string;
  /** e.g. `success`, `failure`, `rejected`, `timeout`, `retry`, `state`, `shed`. */
  event: string;
  durationMs?: number;
  /** New state or level, for `state` events. */
  state?: string;
}

/**
 * Optional metrics sink. The resilience core never imports a metrics library; an observability module
 * implements this interface (e.g. with prom-client counters) and passes it as the `metrics` option.
 */
export interface ResilienceMetrics {
  record(event: MetricEvent): void;
}

/** Options every policy accepts. */
export interface CommonOptions {
  /** Name used in errors, events and metrics. */
  name?: string;
  metrics?: ResilienceMetrics;
}

/** @internal Key of the chain-aware run method every built-in policy implements. */
export const RUN: unique symbol = Symbol('herald.resilience.run');

/** @internal A policy that can take part in a composed chain. */
export interface Runnable {
  [RUN](ctx: CallContext, depth: number): Promise<unknown>;
}

/** A signal that never aborts, shared so calls without any cancellation source allocate nothing. */
const NEVER: AbortSignal = new AbortController().signal;

/**
 * @internal The context of a standalone call with no caller signal through a policy that neither
 * retries nor cancels (breaker, bulkhead): nothing in it can differ between calls, so they all share
 * this one frozen object instead of allocating a {@link CallContext} each (ADR 0104).
 */
export const IDLE_CONTEXT: ExecuteContext = Object.freeze({ signal: NEVER, attempt: 1 });

/**
 * @internal True when `value` may be a thenable: such results settle later. Primitives are final,
 * and can be accounted for before the policy returns.
 */
export function isDeferred(value: unknown): boolean {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/**
 * @internal A cancellation scope opened by a policy that can abort its inner calls (timeout, hedge).
 * The AbortController behind it is created only if user code reads `ctx.signal`.
 */
export class SignalScope {
  aborted = false;
  reason: unknown = undefined;
  private ctrl: AbortController | undefined = undefined;
  private linkedTo: AbortSignal | undefined = undefined;
  private onParentAbort: (() => void) | undefined = undefined;

  constructor(
    readonly parent: SignalScope | undefined,
    readonly outer: AbortSignal | undefined,
  ) {}

  isAborted(): boolean {
    if (this.aborted) return true;
    return this.parent ? this.parent.isAborted() : this.outer?.aborted === true;
  }

  abortReason(): unknown {
    if (this.aborted) return this.reason;
    return this.parent ? this.parent.abortReason() : this.outer?.reason;
  }

  signal(): AbortSignal {
    if (this.ctrl) return this.ctrl.signal;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    if (this.aborted) {
      ctrl.abort(this.reason);
      return ctrl.signal;
    }
    const up = this.parent ? this.parent.signal() : this.outer;
    if (up) {
      if (up.aborted) ctrl.abort(up.reason);
      else {
        this.linkedTo = up;
        this.onParentAbort = () => ctrl.abort(up.reason);
        up.addEventListener('abort', this.onParentAbort, { once: true });
      }
    }
    return ctrl.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.ctrl?.abort(reason);
  }

  /** Unhooks from the parent signal, so long-lived caller signals do not collect listeners. */
  dispose(): void {
    if (this.onParentAbort) this.linkedTo!.removeEventListener('abort', this.onParentAbort);
    this.onParentAbort = undefined;
    this.linkedTo = undefined;
  }
}

/** @internal The state of one call travelling through a pipeline. */
export class CallContext implements ExecuteContext {
  attempt = 1;
  scope: SignalScope | undefined = undefined;

  constructor(
    readonly fn: (ctx: ExecuteContext) => unknown,
    readonly chain: readonly Runnable[],
    readonly outer: AbortSignal | undefined,
  ) {}

  get signal(): AbortSignal {
    if (this.scope) return this.scope.signal();
    return this.outer ?? NEVER;
  }

  /** The signal to wait on, or undefined when nothing can ever abort this call (no allocation). */
  abortSignal(): AbortSignal | undefined {
    return this.scope ? this.scope.signal() : this.outer;
  }

  get aborted(): boolean {
    return this.scope ? this.scope.isAborted() : this.outer?.aborted === true;
  }

  get abortReason(): unknown {
    return this.scope ? this.scope.abortReason() : this.outer?.reason;
  }

  /** A context for a parallel branch of the same chain (hedging, aggressive timeouts). */
  fork(scope: SignalScope): CallContext {
    const child = new CallContext(this.fn, this.chain, this.outer);
    child.attempt = this.attempt;
    child.scope = scope;
    return child;
  }

  /**
   * Like {@link invoke} but without normalising: returns the user's raw result (a value or a
   * thenable) and lets a synchronous throw escape. For policies with a synchronous fast path, which
   * attach their own settlement handlers and so save the promise `invoke` would add.
   */
  call(depth: number): unknown {
    const next = this.chain[depth];
    if (next !== undefined) return next[RUN](this, depth);
    return this.fn(this);
  }

  /** Runs the policy at `depth`, or the user's function once the chain is exhausted. */
  invoke(depth: number): Promise<unknown> {
    const next = this.chain[depth];
    if (next !== undefined) return next[RUN](this, depth);
    try {
      const r = this.fn(this);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** Shared base of the built-in policies: standalone `execute` is a chain of one. */
export abstract class BasePolicy implements Policy, Runnable {
  private readonly self: readonly Runnable[] = [this];

  execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T> {
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this[RUN](new CallContext(fn, this.self, signal), 0) as Promise<T>;
  }

  abstract [RUN](ctx: CallContext, depth: number): Promise<unknown>;
}

/** Sleeps on `clock`, waking early (rejecting with the abort reason) if `signal` aborts. */
export function sleep(
  clock: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void },
  ms: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    if (!signal) {
      clock.setTimeout(resolve, ms);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal.reason);
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
