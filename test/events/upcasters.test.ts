import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  ConfigError,
  createHerald,
  defineEvent,
  MemoryDeadLetterStore,
  MemoryEventStore,
  MemoryTransport,
  replayEvents,
  SchemaVersionError,
  upcast,
  upcaster,
  type EventEnvelope,
  type Upcaster,
} from '../../src/index.js';
import { mulberry32 } from '../resilience/prng.js';
import { waitUntil } from '../support/wait.js';

const v3Schema = z.object({
  orderId: z.string(),
  amount: z.object({ cents: z.number().int(), currency: z.string() }),
});
const OrderPlaced = defineEvent('shop.order.placed', {
  version: 'v3',
  schema: v3Schema,
  upcasters: [
    upcaster('v1', 'v2', (p: { id: string; total: number }) => ({ orderId: p.id, total: p.total })),
    upcaster('v2', 'v3', (p: { orderId: string; total: number }) => ({
      orderId: p.orderId,
      amount: { cents: Math.round(p.total * 100), currency: 'EUR' },
    })),
  ],
});

function envelope(version: string, payload: unknown, n = 1): EventEnvelope {
  return {
    id: `e-${version}-${n}`,
    type: 'shop.order.placed',
    version,
    source: 'legacy',
    aggregateId: `o-${n}`,
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    payload,
    metadata: {},
  };
}

describe('upcasters', () => {
  test('a chain v1 → v2 → v3 brings old events to the current version', () => {
    const e = upcast(OrderPlaced, envelope('v1', { id: 'o-1', total: 12.5 }));
    assert.equal(e.version, 'v3');
    assert.deepEqual(e.payload, { orderId: 'o-1', amount: { cents: 1250, currency: 'EUR' } });
    assert.deepEqual(upcast(OrderPlaced, envelope('v3', { x: 1 })).payload, { x: 1 }, 'current passes as is');
  });

  test('an unknown version is a SchemaVersionError naming the known ones', () => {
    assert.throws(
      () => upcast(OrderPlaced, envelope('v0', {})),
      (err: Error) =>
        err instanceof SchemaVersionError &&
        /version v0: no upcaster path to v3; known versions: v3, v1, v2/.test(err.message),
    );
  });

  test('definitions with a broken chain fail at once, naming the missing link', () => {
    const bad = (upcasters: Upcaster[]) => () =>
      defineEvent('shop.order.placed', { version: 'v3', upcasters });
    assert.throws(bad([upcaster('v1', 'v2', (p) => p)]), /v1 reaches v2, which has no upcaster to v3/);
    assert.throws(bad([upcaster('v1', 'v2', (p) => p), upcaster('v2', 'v1', (p) => p)]), /loop back/);
    assert.throws(bad([upcaster('v3', 'v4', (p) => p)]), /v3 is the current version/);
    assert.throws(
      bad([upcaster('v1', 'v3', (p) => p), upcaster('v1', 'v2', (p) => p)]),
      /two upcasters start at v1/,
    );
    assert.throws(bad([{ from: 'v1', to: 'v3' } as unknown as Upcaster]), ConfigError);
  });

  test('property: random version graphs either define cleanly with every version reaching the current one, or fail naming the missing link', () => {
    const seed = Number(process.env.PROPERTY_SEED ?? 20261130);
    const random = mulberry32(seed);
    let accepted = 0;
    let rejected = 0;
    for (let run = 0; run < 500; run++) {
      const n = 2 + Math.floor(random() * 6);
      const versions = Array.from({ length: n }, (_, i) => `v${i + 1}`);
      const current = versions[n - 1]!;
      const upcasters: Upcaster[] = [];
      const froms = new Set<string>();
      for (const from of versions.slice(0, -1)) {
        if (random() < 0.15) continue; // a missing link
        const to =
          random() < 0.8 ? versions[versions.indexOf(from) + 1]! : versions[Math.floor(random() * n)]!;
        if (to === from) continue;
        froms.add(from);
        upcasters.push(upcaster(from, to, (p: { trail: string[] }) => ({ trail: [...p.trail, to] })));
      }
      // Independent oracle: walk each chain with a step budget.
      const next = new Map(upcasters.map((u) => [u.from, u.to]));
      let expectedProblem: string | undefined;
      for (const start of froms) {
        let at = start;
        for (let steps = 0; at !== current; steps++) {
          const to = next.get(at);
          if (to === undefined) {
            expectedProblem = `reaches ${at}, which has no upcaster`;
            break;
          }
          if (steps > n) {
            expectedProblem = 'loop back';
            break;
          }
          at = to;
        }
        if (expectedProblem) break;
      }
      const define = () => defineEvent('prop.event.happened', { version: current, upcasters });
      if (expectedProblem) {
        rejected++;
        assert.throws(
          define,
          (err: Error) => err instanceof ConfigError && /no upcaster|loop back/.test(err.message),
          `seed ${seed} run ${run}`,
        );
        continue;
      }
      accepted++;
      const definition = define();
      for (const start of [...froms, current]) {
        const e = upcast(definition, { ...envelope(start, { trail: [start] }), type: 'prop.event.happened' });
        assert.equal(e.version, current, `seed ${seed} run ${run}: ${start} must reach ${current}`);
        assert.equal((e.payload as { trail: string[] }).trail.at(-1), current);
      }
    }
    assert.ok(
      accepted > 50 && rejected > 50,
      `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`,
    );
  });

  test('consumers receive old versions upcast and validated; a version with no path goes to the DLQ with reason schema', async () => {
    const transport = new MemoryTransport();
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({ service: 'shop', transport, stores: { deadLetters } });
    const got: EventEnvelope[] = [];
    herald.subscribe({ group: 'billing', events: [OrderPlaced], handler: (e) => void got.push(e) });
    await herald.start();
    // Old producers, written straight to the topic as an older Herald would have.
    for (const [version, payload] of [
      ['v1', { id: 'o-1', total: 1 }],
      ['v2', { orderId: 'o-2', total: 2 }],
      ['v9', { whatever: true }],
    ] as const) {
      await herald.publish({ type: 'shop.order.placed', version, parse: async (p: unknown) => p }, payload);
    }
    await herald.publish(OrderPlaced, { orderId: 'o-3', amount: { cents: 300, currency: 'EUR' } });
    await waitUntil(
      async () => got.length === 3 && (await deadLetters.count()) === 1,
      'three handled, one dead',
    );
    assert.deepEqual(
      got.map((e) => [e.version, (e.payload as { orderId: string }).orderId]),
      [
        ['v3', 'o-1'],
        ['v3', 'o-2'],
        ['v3', 'o-3'],
      ],
    );
    const [dead] = (await deadLetters.list()).items;
    assert.equal(dead!.reason, 'schema');
    assert.match(dead!.error.message, /version v9: no upcaster path to v3/);
    await herald.stop();
  });

  test('publishing through a definition always writes its current version', async () => {
    const transport = new MemoryTransport();
    const herald = await createHerald({ service: 'shop', transport });
    const e = await herald.publish(OrderPlaced, { orderId: 'o', amount: { cents: 1, currency: 'EUR' } });
    assert.equal(e.version, 'v3');
    await herald.stop();
  });

  test('replay from the event store goes through the same upcasters and schema', async () => {
    const store = new MemoryEventStore();
    await store.append([
      envelope('v1', { id: 'o-1', total: 1 }, 1),
      envelope('v2', { orderId: 'o-2', total: 2 }, 2),
    ]);
    await store.append([{ ...envelope('v1', { n: 1 }, 3), type: 'shop.cart.emptied' }]);
    const replayed = [];
    for await (const s of replayEvents(store, [OrderPlaced])) replayed.push(s.event);
    assert.deepEqual(
      replayed.map((e) => [e.type, e.version]),
      [
        ['shop.order.placed', 'v3'],
        ['shop.order.placed', 'v3'],
        ['shop.cart.emptied', 'v1'],
      ],
    );
    const typed = [];
    for await (const s of replayEvents(store, [OrderPlaced], { query: { aggregateId: 'o-2' } }))
      typed.push(s.event.payload);
    assert.deepEqual(typed, [{ orderId: 'o-2', amount: { cents: 200, currency: 'EUR' } }]);
    await store.append([envelope('v0', {}, 4)]);
    await assert.rejects(async () => {
      for await (const _ of replayEvents(store, [OrderPlaced])) void _;
    }, SchemaVersionError);
  });
});
