/**
 * Run with `node --allow-natives-syntax --import tsx`: publishes events through the memory
 * transport and prints whether every observer payload, and every typed event a handler received,
 * shares one hidden class (how many of the later half do not). See test/core/shapes.test.ts.
 */
import { z } from 'zod';
import { createHerald, defineEvent, MemoryTransport, type DeliveryInfo } from '../../src/index.js';

// Built at run time so the TypeScript loader never parses V8's `%` syntax.
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

const N = 300;
const Placed = defineEvent('shop.order.placed', {
  schema: z.object({ orderId: z.string(), total: z.number() }),
});
const herald = await createHerald({ service: 'probe', transport: new MemoryTransport() });
const handled: DeliveryInfo[] = [];
const events: object[] = [];
herald.observe({ onHandled: (info) => void handled.push(info) });
herald.subscribe({ group: 'g', events: [Placed], handler: (event) => void events.push(event) });
await herald.start();
for (let i = 0; i < N; i++)
  await herald.publish(Placed, { orderId: `o${i}`, total: i + 0.5 }, { aggregateId: `a${i % 8}` });
while (handled.length < N) await new Promise((r) => setTimeout(r, 5));
await herald.stop();
// The first objects may predate a field generalisation while V8 warms up; the later half must agree.
const outliers = (list: object[]): number =>
  list.slice(list.length / 2).filter((o) => !sameMap(o, list[list.length - 1]!)).length;
process.stdout.write(
  JSON.stringify({
    infos: handled.length,
    infoOutliers: outliers(handled),
    events: events.length,
    eventOutliers: outliers(events),
  }),
);
