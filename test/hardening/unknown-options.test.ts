import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, createHerald, defineEvent, MemoryTransport } from '../../src/index.js';

/** Options that are not known fail at once, naming the field, the known ones and the likely typo. */
const OrderPlaced = defineEvent<{ orderId: string }>('order.order.placed');

async function herald(extra: Record<string, unknown> = {}) {
  return createHerald({ service: 'shop', transport: new MemoryTransport(), ...extra });
}

function configError(field: string, pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.field, field);
    assert.match(err.message, pattern);
    return true;
  };
}

test('createHerald({ drainTimeout }) names the field and the known ones', async () => {
  await assert.rejects(
    herald({ drainTimeout: 100 }),
    configError(
      'drainTimeout',
      /unknown option \(did you mean drainTimeoutMs\?\); known: service, transport.*drainTimeoutMs/,
    ),
  );
  await assert.rejects(
    herald({ stores: { deadletters: {} } }),
    configError('stores.deadletters', /did you mean deadLetters/),
  );
});

test('subscribe({ retries }) and retry: { maxAtempts } are rejected', async () => {
  const h = await herald();
  const base = { group: 'g', events: [OrderPlaced], handler: () => undefined };
  assert.throws(
    () => h.subscribe({ ...base, retries: 3 } as never),
    configError('subscribe.retries', /known: group, events/),
  );
  assert.throws(
    () => h.subscribe({ ...base, retry: { maxAtempts: 3 } } as never),
    configError('retry.maxAtempts', /did you mean maxAttempts\?.*known: maxAttempts, initialDelayMs/),
  );
  assert.throws(
    () => h.subscribe({ ...base, idempotency: { ttl: 1 } } as never),
    configError('idempotency.ttl', /known: ttlMs, leaseMs/),
  );
  assert.equal(h.subscriptions.length, 0);
  await h.stop();
});

test('publish(..., { aggregateid }) is rejected and nothing is sent', async () => {
  const transport = new MemoryTransport();
  const h = await createHerald({ service: 'shop', transport });
  let published = 0;
  h.observe({ onPublished: () => void published++ });
  await assert.rejects(
    h.publish(OrderPlaced, { orderId: '1' }, { aggregateid: 'o-1' } as never),
    configError('publish options.aggregateid', /did you mean aggregateId\?/),
  );
  await assert.rejects(
    h.publishBatch([{ event: OrderPlaced, payload: { orderId: '1' }, options: { tenant: 't' } as never }]),
    configError('publish options.tenant', /known: id, aggregateId/),
  );
  assert.equal(published, 0);
  await h.publish(OrderPlaced, { orderId: '1' }, { aggregateId: 'o-1' });
  assert.equal(published, 1);
  await h.stop();
});
