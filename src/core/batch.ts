import type { SubscribeSpec } from './consumer/consumer.js';
import type { Handler, HandlerContext } from './consumer/context.js';
import { ConfigError, toError } from './errors.js';
import type { EventEnvelope } from './event.js';

/** When a batch is handed to the handler: at `maxSize` events, or `maxWaitMs` after its first. */
export interface BatchOptions {
  readonly maxSize: number;
  readonly maxWaitMs: number;
}

/** What a batch handler gets next to its events. */
export interface BatchContext {
  readonly group: string;
  readonly topic: string;
  /** Aborted when any event of the batch times out or the consumer stops past its drain timeout. */
  readonly signal: AbortSignal;
  /** The contexts of the events, in the same order. */
  readonly contexts: readonly HandlerContext[];
}

/**
 * What a batch handler returns: the events that failed, by event id, with their errors. Events not
 * named are acknowledged; the failed ones are retried (or dead-lettered) one by one, as if a
 * single-event handler had thrown. Returning nothing means every event succeeded; throwing fails
 * them all.
 */
export interface BatchResult {
  readonly failed?: Iterable<readonly [eventId: string, error: unknown]>;
}

export type BatchHandler<P = unknown> = (
  events: readonly EventEnvelope<P>[],
  ctx: BatchContext,
) => Promise<BatchResult | void> | BatchResult | void;

/** A subscription whose handler takes events in batches. */
export type BatchSubscribeSpec<P = unknown> = Omit<SubscribeSpec<P>, 'handler' | 'handlers'> & {
  readonly batch: BatchOptions;
  readonly handler: BatchHandler<P>;
};

interface Waiting {
  readonly event: EventEnvelope;
  readonly ctx: HandlerContext;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Turns a batch subscription into a plain one whose per-event handler parks each event until its
 * batch is full or due, then settles each event by the batch's result. Everything per event (retry,
 * dead letters, idempotency, per-key order, timeouts) is the ordinary consumer's: with ordering by
 * aggregate a batch holds at most one event per aggregate, because the transport does not deliver
 * the next event of a key before the previous one is settled.
 */
export function batchSubscription<P>(spec: BatchSubscribeSpec<P>): SubscribeSpec<P> {
  const { batch, handler, ...rest } = spec;
  const maxSize = batch?.maxSize;
  const maxWaitMs = batch?.maxWaitMs;
  if (!Number.isInteger(maxSize) || maxSize < 1)
    throw new ConfigError('batch.maxSize', `must be a whole number >= 1, got ${JSON.stringify(maxSize)}`);
  if (typeof maxWaitMs !== 'number' || !Number.isFinite(maxWaitMs) || maxWaitMs < 0)
    throw new ConfigError(
      'batch.maxWaitMs',
      `must be a number of milliseconds >= 0, got ${JSON.stringify(maxWaitMs)}`,
    );
  if (typeof handler !== 'function') throw new ConfigError('handler', 'a batch subscription needs a handler');
  const concurrency = rest.concurrency ?? maxSize;
  if (concurrency < maxSize)
    throw new ConfigError(
      'concurrency',
      `must be at least batch.maxSize (${maxSize}) or a batch can never fill, got ${concurrency}`,
    );

  // One queue per topic: a batch is handed over with one topic, so a handler can write it in bulk.
  const queues = new Map<string, { items: Waiting[]; timer?: NodeJS.Timeout }>();
  const flush = (topic: string): void => {
    const queue = queues.get(topic);
    if (!queue || queue.items.length === 0) return;
    clearTimeout(queue.timer);
    queue.timer = undefined;
    const items = queue.items.splice(0, maxSize);
    const ctx: BatchContext = {
      group: spec.group,
      topic,
      signal: AbortSignal.any(items.map((i) => i.ctx.signal)),
      contexts: items.map((i) => i.ctx),
    };
    Promise.resolve()
      .then(() => handler(items.map((i) => i.event) as EventEnvelope<P>[], ctx))
      .then(
        (result) => {
          const failed = new Map<string, unknown>(result?.failed ?? []);
          for (const item of items) {
            if (failed.has(item.event.id)) item.reject(toError(failed.get(item.event.id)));
            else item.resolve();
          }
        },
        (err: unknown) => {
          for (const item of items) item.reject(err);
        },
      );
    if (queue.items.length >= maxSize) flush(topic);
    else if (queue.items.length > 0) queue.timer = setTimeout(() => flush(topic), maxWaitMs);
  };
  const add: Handler<P> = (event, ctx) =>
    new Promise<void>((resolve, reject) => {
      let queue = queues.get(ctx.topic);
      if (!queue) queues.set(ctx.topic, (queue = { items: [] }));
      queue.items.push({ event: event as EventEnvelope, ctx, resolve, reject });
      if (queue.items.length >= maxSize) flush(ctx.topic);
      else if (queue.items.length === 1) queue.timer = setTimeout(() => flush(ctx.topic), maxWaitMs);
    });
  return { ...rest, concurrency, handler: add };
}
