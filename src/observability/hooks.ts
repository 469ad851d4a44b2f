import type { Context } from '@opentelemetry/api';
import type { PublishContext, PublishMiddleware } from '../core/bus.js';
import type { ConsumeContext, ConsumerMiddleware } from '../core/consumer/context.js';

/** Called after the wrapped work: `error` is undefined on success. */
export type Exit = (error: unknown) => void;

/**
 * @internal Not an extension point: Herald is extended with middleware and observers (ADR 0007).
 * This is how the observability middleware runs tracing and logging inside one async layer.
 *
 * Synchronous before/after hooks around one unit of work. Several instruments share one async
 * middleware this way instead of stacking one each: every async layer costs promises, and with an
 * AsyncLocalStorage context manager active (Node 20) every promise is dearer.
 */
export interface Hooks<C> {
  /** Before the work; may return a context to run it in (tracing) and an exit callback. */
  enter(ctx: C): { context?: Context; exit?: Exit } | Exit | undefined;
}

export type PublishHooks = Hooks<PublishContext>;
export type ConsumeHooks = Hooks<ConsumeContext>;

type WithContext = (ctx: Context, fn: () => Promise<void>) => Promise<void>;

/** One middleware running every hook's enter, the work (in the context a hook asked for), then every exit in reverse. */
export function fuse<C>(
  hooks: readonly Hooks<C>[],
  withContext: WithContext,
): ((ctx: C, next: () => Promise<void>) => Promise<void>) | undefined {
  if (hooks.length === 0) return undefined;
  return (ctx, next) => {
    // Allocated only when some hook wants to hear the outcome: most calls (unsampled, info logs) do not.
    let exits: Exit[] | undefined;
    let runIn: Context | undefined;
    for (const h of hooks) {
      const r = h.enter(ctx);
      if (r === undefined) continue;
      if (typeof r === 'function') (exits ??= []).push(r);
      else {
        if (r.context) runIn = r.context;
        if (r.exit) (exits ??= []).push(r.exit);
      }
    }
    if (exits === undefined) return runIn ? withContext(runIn, next) : next();
    const after = exits;
    // Exits run inside the context too (a reaction runs in the context its `then` was called in),
    // so their log lines carry the span's ids. One `then`, not an async function: a promise less.
    const work = (): Promise<void> => {
      let running: Promise<void>;
      try {
        running = next();
      } catch (err) {
        running = Promise.reject(err as Error);
      }
      return running.then(
        () => {
          for (let i = after.length - 1; i >= 0; i--) after[i]!(undefined);
        },
        (err: unknown) => {
          for (let i = after.length - 1; i >= 0; i--) after[i]!(err);
          throw err;
        },
      );
    };
    return runIn ? withContext(runIn, work) : work();
  };
}

export function fusePublish(
  hooks: readonly PublishHooks[],
  withContext: WithContext,
): PublishMiddleware | undefined {
  return fuse(hooks, withContext);
}

export function fuseConsume(
  hooks: readonly ConsumeHooks[],
  withContext: WithContext,
): ConsumerMiddleware | undefined {
  return fuse(hooks, withContext);
}
