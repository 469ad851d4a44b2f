import {
  CallContext,
  RUN,
  type ExecuteContext,
  type ExecuteOptions,
  type Policy,
  type Runnable,
} from './policy.js';

/** Anything `wrap` accepts: a built-in policy, a previous `wrap`, or any object with `execute`. */
export type PolicyLike =
  | Policy
  | Runnable
  | { execute(fn: (ctx: ExecuteContext) => unknown, opts?: ExecuteOptions): Promise<unknown> };

/** Adapts a foreign policy (one that only has `execute`) to the chain protocol. */
class ForeignPolicy implements Runnable {
  constructor(private readonly policy: { execute: Policy['execute'] }) {}

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    return this.policy.execute(() => ctx.invoke(depth + 1), { signal: ctx.abortSignal() });
  }
}

/** A composed pipeline; see {@link wrap}. */
export class PolicyWrap implements Policy, Runnable {
  /** The flattened chain, outermost first. */
  readonly policies: readonly Runnable[];

  constructor(policies: readonly PolicyLike[]) {
    const flat: Runnable[] = [];
    for (const p of policies) {
      if (p instanceof PolicyWrap) flat.push(...p.policies);
      else if (RUN in p) flat.push(p);
      else flat.push(new ForeignPolicy(p as Policy));
    }
    this.policies = flat;
  }

  execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T> {
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new CallContext(fn, this.policies, signal).invoke(0) as Promise<T>;
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    // Only reached when a wrap is nested through a foreign adapter; run it as its own chain.
    const inner = new CallContext(() => ctx.invoke(depth + 1), this.policies, ctx.abortSignal());
    return inner.invoke(0);
  }
}

/**
 * Composes policies, outermost first: `wrap(timeout, retry, breaker, bulkhead).execute(fn)` runs the
 * timeout around the retry loop, each attempt through the breaker and then the bulkhead.
 */
export function wrap(...policies: PolicyLike[]): PolicyWrap {
  return new PolicyWrap(policies);
}
