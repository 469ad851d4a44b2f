/**
 * Type tests, checked by `npm run typecheck` (never run): a subscription to several definitions
 * types its handler as their union discriminated by `type`, `handlers` entries get their own
 * event, and publish takes the schema's input type. A line marked @ts-expect-error fails the
 * typecheck if it compiles, so a regression of any of these types breaks the build.
 */
import { z } from 'zod';
import { createHerald, defineEvent, MemoryTransport, type EventEnvelope } from '../../src/index.js';

const Placed = defineEvent('shop.order.placed', {
  schema: z.object({ orderId: z.string(), total: z.number(), currency: z.string().default('EUR') }),
});
const Cancelled = defineEvent('shop.order.cancelled', {
  schema: z.object({ orderId: z.string(), reason: z.string() }),
});

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(ok: Equal<A, B>): void => void ok;

export async function handlerIsTheDiscriminatedUnion(): Promise<void> {
  const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
  herald.subscribe({
    group: 'g',
    events: [Placed, Cancelled],
    handler: (event) => {
      same<typeof event.type, 'shop.order.placed' | 'shop.order.cancelled'>(true);
      // Both payloads have orderId.
      const id: string = event.payload.orderId;
      // @ts-expect-error only one of the two events has a total
      void event.payload.total;
      if (event.type === Placed.type) {
        const total: number = event.payload.total;
        // Parsed payload: the default is filled in.
        const currency: string = event.payload.currency;
        // @ts-expect-error a placed order has no reason
        void event.payload.reason;
        void [total, currency];
      } else {
        same<typeof event, EventEnvelope<{ orderId: string; reason: string }, 'shop.order.cancelled'>>(true);
        const reason: string = event.payload.reason;
        void reason;
      }
      void id;
    },
  });
  herald.subscribe({
    group: 'g2',
    events: [Placed, Cancelled],
    handler: (event) => {
      // @ts-expect-error not one of the subscription's types
      if (event.type === 'shop.order.shipped') return;
    },
  });
}

export async function handlersMapEntriesAreTyped(): Promise<void> {
  const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
  herald.subscribe({
    group: 'g',
    events: [Placed, Cancelled],
    handlers: {
      [Placed.type]: (event) => {
        same<
          typeof event,
          EventEnvelope<{ orderId: string; total: number; currency: string }, 'shop.order.placed'>
        >(true);
        const total: number = event.payload.total;
        // @ts-expect-error total is a number
        const wrong: string = event.payload.total;
        void [total, wrong];
      },
      [Cancelled.type]: (event) => {
        const reason: string = event.payload.reason;
        // @ts-expect-error a cancellation has no total
        void event.payload.total;
        void reason;
      },
      // A pattern gets every event of the subscription.
      'shop.*': (event) => {
        const type: 'shop.order.placed' | 'shop.order.cancelled' = event.type;
        void type;
      },
    },
  });
  // @ts-expect-error the entry for placed orders cannot take cancellations
  herald.subscribe({
    group: 'g2',
    events: [Placed, Cancelled],
    handlers: {
      [Placed.type]: (event: EventEnvelope<{ reason: string }>) => void event.payload.reason,
    },
  });
}

export async function publishTakesTheSchemaInput(): Promise<void> {
  const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
  // currency has a default: optional on publish, present in the envelope.
  const placed = await herald.publish(Placed, { orderId: 'o1', total: 3 });
  same<typeof placed.type, 'shop.order.placed'>(true);
  const currency: string = placed.payload.currency;
  await herald.publish(Placed, { orderId: 'o1', total: 3, currency: 'USD' });
  // @ts-expect-error total is required
  await herald.publish(Placed, { orderId: 'o1' });
  // @ts-expect-error total is a number
  await herald.publish(Placed, { orderId: 'o1', total: '3' });
  // @ts-expect-error no such field
  await herald.publish(Cancelled, { orderId: 'o1', reason: 'r', extra: 1 });
  // Type strings stay unchecked.
  await herald.publish('shop.order.placed', { anything: true });
  void currency;
}
