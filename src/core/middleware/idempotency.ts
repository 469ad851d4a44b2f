import { ConfigError } from '../../contracts/errors.js';
import type { ConsumerMiddleware } from '../consumer/context.js';
import { DeferredError } from '../consumer/errors.js';
import type { IdempotencyStore } from '../../store/idempotency-store.js';

export { DeferredError };

export interface IdempotencyOptions {
  /** How long a processed event id is remembered; default 7 days. */
  readonly ttlMs?: number;
  /** How long a reservation lasts if the processor dies mid-handler; default 5 minutes. */
  readonly leaseMs?: number;
}

/**
 * Runs the handler at most once per (group, event id) for `ttlMs`. The reservation is taken before
 * the handler and completed after it, so a crash mid-handler frees the event after `leaseMs`
 * instead of losing it.
 */
export function idempotencyMiddleware(
  store: IdempotencyStore,
  options: IdempotencyOptions = {},
): ConsumerMiddleware {
  const ttlMs = options.ttlMs ?? 7 * 24 * 3600_000;
  const leaseMs = options.leaseMs ?? 5 * 60_000;
  for (const [field, v] of [
    ['ttlMs', ttlMs],
    ['leaseMs', leaseMs],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0)
      throw new ConfigError(`idempotency.${field}`, `must be a number > 0, got ${String(v)}`);
  }
  return async (ctx, next) => {
    const key = `${ctx.group}:${ctx.event.id}`;
    const state = await store.reserve(key, leaseMs);
    if (state === 'done') {
      ctx.skipped = 'duplicate';
      return;
    }
    if (state === 'in-progress') {
      throw new DeferredError(
        `event ${ctx.event.id} is being processed by another member of ${ctx.group}`,
        Math.min(leaseMs, 5000),
      );
    }
    try {
      await next();
    } catch (err) {
      await store.release(key);
      throw err;
    }
    await store.complete(key, ttlMs);
  };
}
