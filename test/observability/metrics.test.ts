import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import {
  createHerald,
  MemoryDeadLetterStore,
  MemoryEventStore,
  MemoryTransport,
  PermanentError,
} from '../../src/index.js';
import { createObservability, BoundedLabel, OTHER } from '../../src/observability/index.js';
import { waitUntil, unique } from '../support/wait.js';
import { metricValue } from './helpers.js';

describe('event metrics', () => {
  test('exact values after: publish 10, 3 fail twice then succeed, 1 dead-lettered', async () => {
    const registry = new Registry();
    const obs = createObservability({
      serviceName: 'svc-metrics',
      metrics: { registry, statsCacheMs: 0 },
      logging: false,
    });
    const events = obs.eventStore(new MemoryEventStore());
    const herald = obs.instrument(
      await createHerald({ service: 'svc-metrics', transport: new MemoryTransport(), stores: { events } }),
    );
    const group = unique('g');
    const failing = new Map<number, number>([
      [1, 0],
      [4, 0],
      [7, 0],
    ]);
    let done = 0;
    herald.subscribe<{ n: number }>({
      group,
      name: 'counter',
      events: ['orders.order.placed'],
      retry: { maxAttempts: 4, initialDelayMs: 5, multiplier: 1, maxDelayMs: 5, jitter: false },
      handler: async (event) => {
        const n = event.payload.n;
        if (n === 9) throw new PermanentError('poison');
        const fails = failing.get(n);
        if (fails !== undefined && fails < 2) {
          failing.set(n, fails + 1);
          throw new Error('transient');
        }
        done++;
      },
    });
    await herald.start();
    for (let n = 0; n < 10; n++) await herald.publish('orders.order.placed', { n }, { aggregateId: `a${n}` });
    await waitUntil(
      async () => done === 9 && (await herald.deadLetters.count()) === 1,
      'all handled or dead-lettered',
    );

    const base = { event_type: 'orders.order.placed' };
    const h = { ...base, handler: 'counter', group };
    assert.equal(
      await metricValue(registry, 'events_published_total', {
        ...base,
        source: 'svc-metrics',
        topic: 'orders.events',
      }),
      10,
    );
    assert.equal(
      await metricValue(registry, 'events_published_duration_seconds', { topic: 'orders.events' }, '_count'),
      10,
    );
    assert.equal(await metricValue(registry, 'events_handled_total', { ...h, status: 'success' }), 9);
    assert.equal(await metricValue(registry, 'events_handled_total', { ...h, status: 'error' }), 7);
    assert.equal(await metricValue(registry, 'events_handling_errors_total', h), 7);
    assert.equal(await metricValue(registry, 'events_handling_duration_seconds', h, '_count'), 16);
    assert.equal(await metricValue(registry, 'events_retry_queued_total', h), 6);
    assert.equal(await metricValue(registry, 'events_retried_total', h), 6);
    assert.equal(await metricValue(registry, 'events_retry_failed_total', h), 3);
    assert.equal(await metricValue(registry, 'events_dead_lettered_total', { ...h, reason: 'permanent' }), 1);
    assert.equal(await metricValue(registry, 'events_dead_letter_queue_size'), 1);
    assert.equal(await metricValue(registry, 'events_stored_total', base), 10);
    assert.equal(await metricValue(registry, 'event_storage_duration_seconds', {}, '_count'), 10);
    assert.equal(await metricValue(registry, 'event_storage_errors_total'), 0);
    assert.equal(await metricValue(registry, 'handlers_active', { handler: 'counter', group }), 0);
    assert.equal(
      await metricValue(registry, 'events_retry_queue_size', { topic: 'orders.events', group }),
      0,
    );
    assert.equal(await metricValue(registry, 'events_consumer_lag', { topic: 'orders.events', group }), 0);

    // Replaying the dead letter (now fixed) counts as reprocessed.
    const [entry] = (await herald.deadLetters.list()).items;
    assert.ok(entry);
    failing.clear();
    await herald.deadLetters.replay([entry.id]);
    await waitUntil(
      async () => (await metricValue(registry, 'events_handled_total', { ...h, status: 'error' })) === 8,
      'replayed poison handled again',
    );
    assert.equal(
      await metricValue(registry, 'events_reprocessed_total', h),
      0,
      'a replay that failed again is not reprocessed',
    );
    await herald.stop();
  });

  test('replayed dead letters handled successfully count as reprocessed', async () => {
    const registry = new Registry();
    const obs = createObservability({ serviceName: 'svc-replay', metrics: { registry }, logging: false });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-replay', transport: new MemoryTransport() }),
    );
    const group = unique('g');
    let broken = true;
    let ok = 0;
    herald.subscribe({
      group,
      events: ['orders.order.paid'],
      retry: false,
      handler: () => {
        if (broken) throw new Error('down');
        ok++;
      },
    });
    await herald.start();
    await herald.publish('orders.order.paid', {});
    await waitUntil(async () => (await herald.deadLetters.count()) === 1, 'dead-lettered');
    broken = false;
    await herald.deadLetters.replay({ filter: {} });
    await waitUntil(() => ok === 1, 'replayed');
    await waitUntil(
      async () => (await metricValue(registry, 'events_reprocessed_total', { group })) === 1,
      'reprocessed counted',
    );
    await herald.stop();
  });

  test('queue gauges read lag and the retry queue from the transport', async () => {
    const registry = new Registry();
    const obs = createObservability({
      serviceName: 'svc-lag',
      metrics: { registry, statsCacheMs: 0 },
      logging: false,
    });
    const transport = new MemoryTransport();
    const herald = obs.instrument(await createHerald({ service: 'svc-lag', transport }));
    const group = unique('g');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let failedOnce = false;
    herald.subscribe({
      group,
      events: ['stock.item.moved'],
      concurrency: 1,
      ordering: 'none',
      retry: { maxAttempts: 3, initialDelayMs: 60_000, multiplier: 1, maxDelayMs: 60_000, jitter: false },
      handler: async (e) => {
        if (!failedOnce) {
          failedOnce = true;
          throw new Error('later');
        }
        if ((e.payload as { wait?: boolean }).wait) await gate;
      },
    });
    await herald.start();
    await herald.publish('stock.item.moved', {});
    await waitUntil(
      async () => (await metricValue(registry, 'events_retry_queue_size', { group })) === 1,
      'one message in the retry queue',
    );
    await herald.publishBatch([1, 2, 3].map(() => ({ event: 'stock.item.moved', payload: { wait: true } })));
    await waitUntil(
      async () => (await metricValue(registry, 'handlers_active', { group })) === 1,
      'one handler running',
    );
    assert.equal(await metricValue(registry, 'events_consumer_lag', { topic: 'stock.events', group }), 2);
    assert.equal(
      await metricValue(registry, 'events_consumer_in_flight', { topic: 'stock.events', group }),
      1,
    );
    release();
    await herald.stop();
  });

  test('services sharing one dead-letter store count its entries once', async () => {
    const registry = new Registry();
    const obs = createObservability({
      serviceName: 'svc-dlq',
      metrics: { registry, statsCacheMs: 0 },
      logging: false,
    });
    const transport = new MemoryTransport();
    const deadLetters = new MemoryDeadLetterStore();
    const a = obs.instrument(await createHerald({ service: 'svc-a', transport, stores: { deadLetters } }));
    const b = obs.instrument(await createHerald({ service: 'svc-b', transport, stores: { deadLetters } }));
    a.subscribe({
      group: unique('g'),
      events: ['dlq.item.failed'],
      handler: () => {
        throw new PermanentError('no');
      },
    });
    await a.start();
    await b.start();
    await b.publish('dlq.item.failed', {});
    await waitUntil(async () => (await deadLetters.count()) === 1, 'dead-lettered');
    assert.equal(await metricValue(registry, 'events_dead_letter_queue_size'), 1);
    await a.stop();
    await b.stop();
  });

  test('label values are bounded: types past the cap fold into "other"', async () => {
    const registry = new Registry();
    const obs = createObservability({
      serviceName: 'svc-cap',
      metrics: { registry, labelCap: 3 },
      logging: false,
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-cap', transport: new MemoryTransport() }),
    );
    for (let i = 0; i < 6; i++) await herald.publish(`cap.thing${i}.done`, {});
    const { values } = await registry.getSingleMetric('events_published_total')!.get();
    const types = new Set(values.map((v) => v.labels.event_type));
    assert.deepEqual(
      [...types].sort(),
      ['cap.thing0.done', 'cap.thing1.done', 'cap.thing2.done', OTHER].sort(),
    );
    assert.equal(await metricValue(registry, 'events_published_total', { event_type: OTHER }), 3);
    const label = new BoundedLabel(1);
    assert.equal(label.fold('a'), 'a');
    assert.equal(label.fold('b'), OTHER);
    assert.equal(label.fold('a'), 'a');
    await herald.stop();
  });

  test('the default registry is left alone and metrics off installs nothing', async () => {
    const { register } = await import('prom-client');
    const before = (await register.getMetricsAsJSON()).length;
    const on = createObservability({ serviceName: 'svc-on', logging: false });
    assert.equal((await register.getMetricsAsJSON()).length, before);
    assert.ok(on.registry.getSingleMetric('events_published_total'));
    const off = createObservability({ serviceName: 'svc-off', metrics: false, logging: false });
    assert.equal(off.plugin.publish, undefined);
    assert.equal(off.plugin.consume, undefined);
    assert.equal(off.plugin.observer, undefined);
    assert.equal((await off.registry.getMetricsAsJSON()).length, 0);
    const handler = (): void => undefined;
    assert.equal(off.http.node(handler), handler);
  });
});
