import type { Middleware } from '../contracts/middleware.js';

export type { Middleware };

/**
 * Composes middleware around a terminal function into one function. Built once per subscription or
 * bus, not per message.
 */
export function compose<C>(
  middleware: readonly Middleware<C>[],
  terminal: (ctx: C) => Promise<void>,
): (ctx: C) => Promise<void> {
  if (middleware.length === 0) return terminal;
  return (ctx: C) => {
    let index = -1;
    const dispatch = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new Error('middleware called next() more than once'));
      index = i;
      const fn = middleware[i];
      return fn ? fn(ctx, () => dispatch(i + 1)) : terminal(ctx);
    };
    return dispatch(0);
  };
}
