import { ConfigError, HandlerTimeoutError } from '../errors.js';
import type { ConsumerMiddleware } from '../consumer/context.js';

/**
 * Fails the handler after `timeoutMs` and aborts `ctx.signal`, so cooperative handlers stop their
 * I/O. A handler that ignores the signal keeps running in the background, but its message is
 * already being retried.
 */
export function timeoutMiddleware(timeoutMs: number): ConsumerMiddleware {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ConfigError('timeoutMs', `must be a number > 0, got ${String(timeoutMs)}`);
  }
  return async (ctx, next) => {
    const controller = new AbortController();
    const parent = ctx.signal;
    const onParentAbort = (): void => controller.abort(parent.reason);
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', onParentAbort, { once: true });
    ctx.signal = controller.signal;
    let timer: NodeJS.Timeout | undefined;
    let timedOut: HandlerTimeoutError | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = new HandlerTimeoutError(ctx.handler, timeoutMs);
        controller.abort(timedOut);
        reject(timedOut);
      }, timeoutMs);
    });
    try {
      await Promise.race([next(), expired]);
      // A handler that returns as soon as it sees the abort can win the race: it still timed out.
      if (timedOut) throw timedOut;
    } finally {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParentAbort);
      ctx.signal = parent;
    }
  };
}
