/**
 * Type tests, checked by `npm run typecheck` (never run): batch handlers and `consume()` are typed
 * from the event definitions. A line marked @ts-expect-error fails the typecheck if it compiles.
 */
import { z } from 'zod';
import { createHerald, defineEvent, MemoryTransport } from '../../src/index.js';

const Placed = defineEvent('shop.order.placed', {
  schema: z.object({ orderId: z.string(), total: z.number() }),
});

export async function batchHandlerIsTyped(): Promise<void> {
  const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
  herald.subscribe({
    group: 'g',
    events: [Placed],
    batch: { maxSize: 10, maxWaitMs: 5 },
    handler: (events) => {
      const total: number = events.reduce((sum, e) => sum + e.payload.total, 0);
      // @ts-expect-error the payload has no such field
      void events[0]!.payload.missing;
      return { failed: total > 0 ? [] : [[events[0]!.id, new Error('empty')]] };
    },
  });
}

export async function consumeIsTyped(): Promise<void> {
  const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
  for await (const event of herald.consume({ group: 'g', events: [Placed] })) {
    const id: string = event.payload.orderId;
    // @ts-expect-error total is a number
    const wrong: string = event.payload.total;
    void id;
    void wrong;
  }
}
