import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  ConfigError,
  createHerald,
  defineEvent,
  isHeraldError,
  TimeoutError,
  MemoryDeadLetterStore,
  MemoryEventStore,
  MemoryIdempotencyStore,
  MemoryTransport,
  PermanentError,
  SchemaValidationError,
  type EventEnvelope,
  type Message,
  type Observer,
} from '../../src/index.js';
import { sleep, waitUntil } from '../support/wait.js';

const Placed = defineEvent('shop.order.placed', {
  version: 'v1',
  schema: z.object({ orderId: z.string(), total: z.number().nonnegative() }),
});

/** Counts transport calls per topic; a real MemoryTransport underneath. */
class CountingTransport extends MemoryTransport {
  calls: { topic: string; count: number }[] = [];
  override async publish(topic: string, messages: readonly Message[]): Promise<void> {
    this.calls.push({ topic, count: messages.length });
    return super.publish(topic, messages);
  }
}

async function setup(options: Partial<Parameters<typeof createHerald>[0]> = {}) {
  const transport = new CountingTransport();
  const deadLetters = new MemoryDeadLetterStore();
  const herald = await createHerald({
    service: 'shop',
    transport,
    stores: { deadLetters, idempotency: new MemoryIdempotencyStore(), events: new MemoryEventStore() },
    ...options,
  });
  return { herald, transport, deadLetters };
}

describe('publishing', () => {
  test('fills the envelope and writes routing headers', async () => {
    const { herald, transport } = await setup();
    const received: Message[] = [];
    await transport.subscribe('shop.events', { group: 'spy', prefetch: 10 }, async (d) => {
      received.push(d.message);
      await d.ack();
    });
    const e = await herald.publish(
      Placed,
      { orderId: 'o-1', total: 5 },
      { aggregateId: 'o-1', tenantId: 't-1', userId: 'u-1', correlationId: 'c-1', metadata: { a: 'b' } },
    );
    assert.equal(e.source, 'shop');
    assert.equal(e.version, 'v1');
    assert.ok(!Number.isNaN(Date.parse(e.time)));
    await waitUntil(() => received.length === 1, 'the message');
    const m = received[0]!;
    assert.equal(m.id, e.id);
    assert.equal(m.key, 'o-1');
    assert.deepEqual(
      { ...m.headers },
      {
        'content-type': 'application/json',
        'event-type': 'shop.order.placed',
        'event-version': 'v1',
        'event-source': 'shop',
        'tenant-id': 't-1',
        'correlation-id': 'c-1',
        // Binary mode (ADR 0010): the rest of the envelope travels in headers too.
        'event-id': e.id,
        'event-time': e.time,
        'aggregate-id': 'o-1',
        'user-id': 'u-1',
        'event-metadata': '{"a":"b"}',
      },
    );
    assert.deepEqual(JSON.parse(new TextDecoder().decode(m.body)), { orderId: 'o-1', total: 5 });
    await herald.stop();
  });

  test('a payload that fails its schema throws and sends nothing, even in a batch', async () => {
    const { herald, transport } = await setup();
    await assert.rejects(herald.publish(Placed, { orderId: 'o', total: -1 }), SchemaValidationError);
    await assert.rejects(
      herald.publishBatch([
        { event: Placed, payload: { orderId: 'ok', total: 1 } },
        { event: Placed, payload: { orderId: 'bad' } as never },
      ]),
      SchemaValidationError,
    );
    assert.deepEqual(transport.calls, []);
    assert.equal(await herald.eventStore!.lastPosition(), 0, 'nothing stored either');
    await herald.stop();
  });

  test('publishBatch makes one transport call per topic and appends to the event store', async () => {
    const { herald, transport } = await setup({ routing: { 'shop.refund.*': 'refunds' } });
    await herald.publishBatch([
      { event: Placed, payload: { orderId: '1', total: 1 }, options: { aggregateId: '1' } },
      { event: 'shop.refund.issued', payload: {} },
      { event: Placed, payload: { orderId: '2', total: 2 }, options: { aggregateId: '2' } },
      { event: 'billing.invoice.sent', payload: {} },
    ]);
    assert.deepEqual(
      transport.calls.sort((a, b) => a.topic.localeCompare(b.topic)),
      [
        { topic: 'billing.events', count: 1 },
        { topic: 'refunds', count: 1 },
        { topic: 'shop.events', count: 2 },
      ],
    );
    assert.equal(await herald.eventStore!.lastPosition(), 4);
    await herald.stop();
  });

  test('bad options fail at creation with the field named', async () => {
    await assert.rejects(createHerald({ service: '', transport: new MemoryTransport() }), /service/);
    await assert.rejects(createHerald({ service: 's' } as never), /transport/);
    await assert.rejects(
      createHerald({ service: 's', transport: new MemoryTransport(), drainTimeoutMs: -1 }),
      /drainTimeoutMs/,
    );
  });
});

describe('consuming', () => {
  test('a body that cannot be decoded goes straight to the DLQ, and the consumer goes on', async () => {
    const { herald, transport, deadLetters } = await setup();
    const handled: string[] = [];
    herald.subscribe({ group: 'g', events: [Placed], handler: (e) => void handled.push(e.payload.orderId) });
    await herald.start();
    await transport.publish('shop.events', [
      { id: 'junk-1', headers: {}, body: new TextEncoder().encode('{oops') },
    ]);
    await herald.publish(Placed, { orderId: 'after', total: 1 });
    await waitUntil(() => handled.length === 1, 'the good event');
    await waitUntil(async () => (await deadLetters.count()) === 1, 'the dead letter');
    const [entry] = (await deadLetters.list()).items;
    assert.equal(entry!.reason, 'decode');
    assert.equal(entry!.attempts, 1, 'no retries for undecodable input');
    assert.match(entry!.error.message, /JSON/);
    assert.equal(new TextDecoder().decode(entry!.message.body), '{oops');
    await herald.stop();
  });

  test('a payload failing the consumer-side schema is dead-lettered with reason "schema"', async () => {
    const { herald, deadLetters } = await setup();
    let calls = 0;
    herald.subscribe({ group: 'g', events: [Placed], handler: () => void calls++ });
    await herald.start();
    await herald.publish('shop.order.placed', { orderId: 42 }); // bare type: no producer-side check
    await waitUntil(async () => (await deadLetters.count()) === 1, 'the dead letter');
    const [entry] = (await deadLetters.list()).items;
    assert.equal(entry!.reason, 'schema');
    assert.equal(entry!.eventType, 'shop.order.placed');
    assert.equal(calls, 0);
    await herald.stop();
  });

  test('idempotency: a redelivered event id is handled once per group', async () => {
    const { herald } = await setup();
    const handled: string[] = [];
    const skipped: string[] = [];
    herald.observe({ onSkipped: (i) => void skipped.push(i.reason) });
    herald.subscribe({
      group: 'g',
      events: [Placed],
      idempotency: true,
      handler: (e) => void handled.push(e.id),
    });
    await herald.start();
    const e = await herald.publish(Placed, { orderId: 'x', total: 1 });
    await herald.publish(Placed, { orderId: 'x', total: 1 }, { id: e.id });
    await waitUntil(() => handled.length + skipped.length === 2, 'both deliveries');
    assert.deepEqual(handled, [e.id]);
    assert.deepEqual(skipped, ['duplicate']);
    await herald.stop();
  });

  test('idempotency without a store is a config error at subscribe', async () => {
    const herald = await createHerald({ service: 's', transport: new MemoryTransport() });
    assert.throws(
      () => herald.subscribe({ group: 'g', events: [Placed], idempotency: true, handler: () => undefined }),
      (err: unknown) => err instanceof ConfigError && err.field === 'idempotency',
    );
    assert.throws(
      () => herald.subscribe({ group: 'g', events: [Placed], concurrency: 0, handler: () => undefined }),
      /concurrency/,
    );
    assert.throws(() => herald.subscribe({ group: 'g', events: [Placed] }), /handler/);
    assert.throws(
      () =>
        herald.subscribe({
          group: 'g',
          events: [Placed],
          retry: { maxAttempts: 0 },
          handler: () => undefined,
        }),
      /retry.maxAttempts/,
    );
    await herald.stop();
  });

  test('timeout aborts ctx.signal, fails the attempt and retries', async () => {
    const { herald, deadLetters } = await setup();
    const aborted: unknown[] = [];
    herald.subscribe({
      group: 'g',
      events: [Placed],
      timeoutMs: 50,
      retry: { maxAttempts: 2, initialDelayMs: 10 },
      handler: (_e, ctx) =>
        new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => (aborted.push(ctx.signal.reason), resolve())),
        ),
    });
    await herald.start();
    await herald.publish(Placed, { orderId: 't', total: 1 });
    await waitUntil(async () => (await deadLetters.count()) === 1, 'dead letter after two timeouts');
    assert.equal(aborted.length, 2);
    assert.ok(aborted[0] instanceof TimeoutError);
    assert.ok(isHeraldError(aborted[0], 'HERALD_TIMEOUT'));
    assert.equal((await deadLetters.list()).items[0]!.error.name, 'TimeoutError');
    await herald.stop();
  });

  test('a PermanentError is dead-lettered at once; observers see the lifecycle', async () => {
    const { herald, deadLetters } = await setup();
    const seen: string[] = [];
    const observer: Observer = {
      onHandlingStarted: () => void seen.push('started'),
      onHandlerFailed: () => void seen.push('failed'),
      onRetryScheduled: () => void seen.push('retry'),
      onDeadLettered: () => void seen.push('dead'),
    };
    herald.observe(observer);
    herald.subscribe({
      group: 'g',
      events: [Placed],
      handler: () => {
        throw new PermanentError('card declined');
      },
    });
    await herald.start();
    await herald.publish(Placed, { orderId: 'p', total: 1 });
    await waitUntil(async () => (await deadLetters.count()) === 1, 'the dead letter');
    assert.equal((await deadLetters.list()).items[0]!.reason, 'permanent');
    assert.deepEqual(seen, ['started', 'failed', 'dead']);
    await herald.stop();
  });

  test('handlers map: the most specific pattern handles each type; others on the topic are skipped', async () => {
    const { herald } = await setup();
    const calls: string[] = [];
    herald.subscribe({
      group: 'g',
      handlers: {
        'shop.*': (e) => void calls.push(`any:${e.type}`),
        'shop.order.placed': (e) => void calls.push(`placed:${e.type}`),
      },
    });
    await herald.start();
    await herald.publish(Placed, { orderId: 'a', total: 1 }, { aggregateId: 'k' });
    await herald.publish('shop.order.cancelled', {}, { aggregateId: 'k' });
    await waitUntil(() => calls.length === 2, 'two calls');
    assert.deepEqual(calls, ['placed:shop.order.placed', 'any:shop.order.cancelled']);
    await herald.stop();
  });

  test('retries back off, then succeed; the handler sees ctx.attempt', async () => {
    const { herald } = await setup();
    const attempts: [number, number][] = [];
    herald.subscribe({
      group: 'g',
      events: [Placed],
      retry: { maxAttempts: 4, initialDelayMs: 40, multiplier: 2, jitter: false },
      handler: (_e, ctx) => {
        attempts.push([ctx.attempt, Date.now()]);
        if (ctx.attempt < 3) throw new Error('transient');
      },
    });
    await herald.start();
    await herald.publish(Placed, { orderId: 'r', total: 1 });
    await waitUntil(() => attempts.length === 3, 'three attempts');
    assert.deepEqual(
      attempts.map(([a]) => a),
      [1, 2, 3],
    );
    assert.ok(attempts[1]![1] - attempts[0]![1] >= 38, 'first backoff about 40 ms');
    assert.ok(attempts[2]![1] - attempts[1]![1] >= 78, 'second backoff about 80 ms');
    await herald.stop();
  });

  test('DLQ replay sends the message back to the failing group only, with attempts reset', async () => {
    const { herald, deadLetters } = await setup();
    let fail = true;
    const billing: EventEnvelope[] = [];
    const analytics: EventEnvelope[] = [];
    herald.subscribe({
      group: 'billing',
      events: [Placed],
      retry: false,
      handler: (e, ctx) => {
        if (fail) throw new Error('billing down');
        assert.equal(ctx.attempt, 1);
        billing.push(e);
      },
    });
    herald.subscribe({ group: 'analytics', events: [Placed], handler: (e) => void analytics.push(e) });
    await herald.start();
    const e = await herald.publish(Placed, { orderId: 'd', total: 9 });
    await waitUntil(
      async () => (await deadLetters.count()) === 1 && analytics.length === 1,
      'dead letter + analytics',
    );
    fail = false;
    const progress: number[] = [];
    const result = await herald.deadLetters.replay(
      { filter: { group: 'billing' } },
      { onProgress: (done) => progress.push(done) },
    );
    assert.deepEqual(result, { replayed: 1, failed: [] });
    assert.deepEqual(progress, [1]);
    await waitUntil(() => billing.length === 1, 'billing handles the replay');
    await sleep(50);
    assert.equal(billing[0]!.id, e.id);
    assert.equal(analytics.length, 1, 'analytics did not see the replay');
    assert.equal(await deadLetters.count(), 0);
    await herald.stop();
  });

  test('a throwing observer never breaks delivery', async () => {
    const { herald } = await setup();
    let handled = 0;
    herald.observe({
      onHandled: () => {
        throw new Error('bad observer');
      },
    });
    herald.subscribe({ group: 'g', events: [Placed], handler: () => void handled++ });
    await herald.start();
    await herald.publishBatch(
      [1, 2, 3].map((n) => ({ event: Placed, payload: { orderId: String(n), total: n } })),
    );
    await waitUntil(() => handled === 3, 'three handled');
    await herald.stop();
  });
});
