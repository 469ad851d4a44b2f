import type { Consumer, SubscribeSpec } from './consumer/consumer.js';
import type { HandlerContext } from './consumer/context.js';
import { ConfigError } from './errors.js';
import type { EventEnvelope } from './event.js';

/** A subscription read by `for await`: everything of {@link SubscribeSpec} but the handlers. */
export type ConsumeSpec<P = unknown> = Omit<SubscribeSpec<P>, 'handler' | 'handlers'>;

interface Waiting<P> {
  readonly event: EventEnvelope<P>;
  readonly done: () => void;
}

/**
 * Turns a subscription into an async iterator. Each event is acknowledged when the loop asks for
 * the next one (so an event whose loop body throws is not acknowledged and comes back); leaving the
 * loop (`break`, `return`, a throw) stops the subscription and releases the unacknowledged events
 * without counting a failed attempt. At most `concurrency` events (default 1) are fetched ahead:
 * that is the backpressure.
 *
 * @param subscribe Creates and starts the underlying consumer for a handler.
 */
export function consumeEvents<P>(
  spec: ConsumeSpec<P>,
  subscribe: (spec: SubscribeSpec<P>) => Promise<Consumer>,
): AsyncIterableIterator<EventEnvelope<P>> {
  const given = spec as SubscribeSpec<P>;
  if (given.handler !== undefined || given.handlers !== undefined)
    throw new ConfigError('consume', 'takes no handler: the loop body is the handler');
  const ready: Waiting<P>[] = [];
  let wake: (() => void) | undefined;
  let current: Waiting<P> | undefined;
  let finished = false;
  let consumer: Promise<Consumer> | undefined;

  const handler = (event: EventEnvelope<P>, ctx: HandlerContext): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      ready.push({ event, done: resolve });
      // Shutdown aborts the wait; the consumer then releases the message instead of failing it.
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      wake?.();
    });

  const stop = async (): Promise<IteratorResult<EventEnvelope<P>>> => {
    if (!finished) {
      finished = true;
      wake?.();
      // Drain timeout 0: whatever the loop did not acknowledge goes back, uncounted.
      await (await consumer)?.stop(0);
    }
    return { done: true, value: undefined };
  };

  const iterator: AsyncIterableIterator<EventEnvelope<P>> = {
    async next() {
      current?.done();
      current = undefined;
      if (finished) return { done: true, value: undefined };
      consumer ??= subscribe({ concurrency: 1, ...spec, handler } as SubscribeSpec<P>);
      await consumer;
      while (ready.length === 0 && !finished) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (finished) return { done: true, value: undefined };
      current = ready.shift()!;
      return { done: false, value: current.event };
    },
    return: stop,
    async throw(err?: unknown) {
      await stop();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
