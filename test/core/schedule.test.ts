import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  claimCheck,
  ConfigError,
  createHerald,
  FileBlobStore,
  isHeraldError,
  MemoryTransport,
  ScheduledPublishUnsupportedError,
  type Message,
  type PublishOptions,
  type Transport,
  type TransportCapabilities,
} from '../../src/index.js';

/** The memory broker, recording each publish call's topic, ids and options. */
class Recording extends MemoryTransport {
  readonly calls: { topic: string; ids: string[]; options: PublishOptions | undefined }[] = [];

  override publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    this.calls.push({ topic, ids: messages.map((m) => m.id), options });
    return super.publish(topic, messages, options);
  }
}

/** A broker that cannot schedule: the memory one with the capability switched off. */
class NoSchedule extends Recording {
  override readonly name = 'no-schedule' as 'memory';
  override readonly capabilities: TransportCapabilities = {
    ...new MemoryTransport().capabilities,
    scheduledPublish: false,
  };
}

const opened: Transport[] = [];
after(async () => {
  await Promise.all(opened.map((t) => t.close()));
});

async function heraldOn<T extends Transport>(transport: T) {
  opened.push(transport);
  return createHerald({ service: 'svc', transport, routing: { 'shop.*': 'shop-events' } });
}

describe('scheduled publish: core API', () => {
  test('delayMs and deliverAt (Date or epoch ms) become the transport deliverAt', async () => {
    const transport = new Recording();
    const herald = await heraldOn(transport);
    const before = Date.now();
    await herald.publish('shop.cart.reminder', {}, { delayMs: 5_000 });
    const after = Date.now();
    const at = new Date(Date.now() + 60_000);
    await herald.publish('shop.cart.reminder', {}, { deliverAt: at });
    await herald.publish('shop.cart.reminder', {}, { deliverAt: at.getTime(), aggregateId: 'cart-1' });
    await herald.publish('shop.cart.reminder', {});
    const [delayed, byDate, byNumber, plain] = transport.calls;
    assert.ok(
      delayed!.options!.deliverAt! >= before + 5_000 && delayed!.options!.deliverAt! <= after + 5_000,
    );
    assert.equal(byDate!.options!.deliverAt, at.getTime());
    assert.equal(byNumber!.options!.deliverAt, at.getTime());
    assert.equal(plain!.options, undefined, 'an unscheduled publish passes no options');
    assert.equal((await transport.stats('shop-events', 'nobody')).scheduled, 3);
  });

  test('bad schedules are rejected naming the field, and nothing is published', async () => {
    const transport = new Recording();
    const herald = await heraldOn(transport);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ delayMs: 10, deliverAt: Date.now() }, /^deliverAt: give either delayMs or deliverAt, not both/],
      [{ delayMs: -1 }, /^delayMs: must be a finite number/],
      [{ delayMs: Number.NaN }, /^delayMs: .*NaN/],
      [{ delayMs: Infinity }, /^delayMs: /],
      [{ delayMs: '100' }, /^delayMs: /],
      [{ deliverAt: -5 }, /^deliverAt: /],
      [{ deliverAt: Number.NaN }, /^deliverAt: .*NaN/],
      [{ deliverAt: new Date('not a date') }, /^deliverAt: .*invalid Date/],
      [{ deliverAt: '2030-01-01' }, /^deliverAt: /],
      [{ delay: 100 }, /^publish options\.delay: unknown option \(did you mean delayMs\?\)/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        herald.publish('shop.cart.reminder', {}, options as never),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
        JSON.stringify(options),
      );
      await assert.rejects(
        herald.publishBatch([
          { event: 'shop.cart.reminder', payload: {} },
          { event: 'shop.cart.reminder', payload: {}, options: options as never },
        ]),
        ConfigError,
        `batch ${JSON.stringify(options)}`,
      );
    }
    assert.deepEqual(transport.calls, [], 'nothing reached the transport');
  });

  test('a transport without scheduledPublish refuses with a typed error naming it', async () => {
    const transport = new NoSchedule();
    const herald = await heraldOn(transport);
    await assert.rejects(
      herald.publish('shop.cart.reminder', {}, { delayMs: 0 }),
      (err: unknown) =>
        err instanceof ScheduledPublishUnsupportedError &&
        isHeraldError(err, 'HERALD_SCHEDULE_UNSUPPORTED') &&
        err.transport === 'no-schedule' &&
        /the no-schedule transport cannot schedule messages/.test(err.message),
    );
    await assert.rejects(
      herald.publishBatch([{ event: 'shop.cart.reminder', payload: {}, options: { deliverAt: new Date() } }]),
      ScheduledPublishUnsupportedError,
    );
    await assert.rejects(herald.cancelScheduled('shop.cart.reminder', 'x'), ScheduledPublishUnsupportedError);
    assert.deepEqual(transport.calls, []);
    await herald.publish('shop.cart.reminder', {});
    assert.equal(transport.calls.length, 1, 'unscheduled publishes still work');
  });

  test('publishBatch makes one transport call per topic and delivery time, in item order', async () => {
    const transport = new Recording();
    const herald = await heraldOn(transport);
    const events = await herald.publishBatch([
      { event: 'shop.cart.reminder', payload: { n: 0 } },
      { event: 'shop.cart.reminder', payload: { n: 1 }, options: { delayMs: 1_000 } },
      { event: 'shop.cart.reminder', payload: { n: 2 } },
      { event: 'shop.cart.reminder', payload: { n: 3 }, options: { delayMs: 1_000 } },
      { event: 'shop.cart.reminder', payload: { n: 4 }, options: { delayMs: 2_000 } },
    ]);
    const id = (i: number): string => events[i]!.id;
    assert.deepEqual(
      transport.calls.map((c) => c.ids),
      [[id(0), id(2)], [id(1), id(3)], [id(4)]],
    );
    assert.equal(transport.calls[0]!.options, undefined);
    assert.equal(transport.calls[2]!.options!.deliverAt! - transport.calls[1]!.options!.deliverAt!, 1_000);
  });

  test('cancelScheduled routes by the event type and says whether it removed the event', async () => {
    const transport = new Recording();
    const herald = await heraldOn(transport);
    const e = await herald.publish('shop.cart.reminder', { cartId: 'c1' }, { delayMs: 60_000 });
    assert.equal(await herald.cancelScheduled('shop.cart.reminder', e.id), true);
    assert.equal(await herald.cancelScheduled('shop.cart.reminder', e.id), false);
    assert.equal((await transport.stats('shop-events', 'g')).scheduled, 0);
    await assert.rejects(herald.cancelScheduled('shop.cart.reminder', ''), /^ConfigError: id: |id: must be/);
    await assert.rejects(herald.cancelScheduled('not a type', e.id), /event: event type must look like/);
  });

  test('claimCheck forwards the schedule and cancelScheduled to the transport it wraps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-sched-cc-'));
    try {
      const inner = new Recording();
      opened.push(inner);
      const wrapped = claimCheck(inner, { store: new FileBlobStore(dir), thresholdBytes: 16 });
      const herald = await createHerald({
        service: 'svc',
        transport: wrapped,
        routing: { 'shop.*': 'shop-events' },
      });
      const e = await herald.publish('shop.cart.reminder', { big: 'x'.repeat(100) }, { delayMs: 60_000 });
      assert.ok(inner.calls[0]!.options!.deliverAt! > Date.now());
      assert.equal(wrapped.capabilities.scheduledPublish, true);
      assert.equal(await herald.cancelScheduled('shop.cart.reminder', e.id), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
