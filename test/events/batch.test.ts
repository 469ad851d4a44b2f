import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, createHerald, MemoryDeadLetterStore, MemoryTransport } from '../../src/index.js';
import { waitUntil } from '../support/wait.js';

async function setup() {
  const deadLetters = new MemoryDeadLetterStore();
  const herald = await createHerald({
    service: 'shop',
    transport: new MemoryTransport(),
    stores: { deadLetters },
  });
  return { herald, deadLetters };
}

describe('batch handlers', () => {
  test('a batch that is not full is handed over after maxWaitMs', async () => {
    const { herald } = await setup();
    const sizes: number[] = [];
    herald.subscribe({
      group: 'g',
      events: ['shop.item.added'],
      batch: { maxSize: 100, maxWaitMs: 30 },
      handler: (events) => void sizes.push(events.length),
    });
    await herald.start();
    await herald.publishBatch(
      Array.from({ length: 5 }, (_, n) => ({ event: 'shop.item.added', payload: { n } })),
    );
    await waitUntil(() => sizes.reduce((a, b) => a + b, 0) === 5, 'five handled');
    assert.ok(sizes.length <= 2, `handed over in at most two batches, got ${sizes.join(',')}`);
    await herald.stop();
  });

  test('a throwing batch handler fails every event of the batch; they are retried then dead-lettered', async () => {
    const { herald, deadLetters } = await setup();
    let calls = 0;
    herald.subscribe({
      group: 'g',
      events: ['shop.item.added'],
      batch: { maxSize: 3, maxWaitMs: 10 },
      retry: { maxAttempts: 2, initialDelayMs: 5, jitter: false },
      handler: () => {
        calls++;
        throw new Error('index down');
      },
    });
    await herald.start();
    await herald.publishBatch(
      Array.from({ length: 3 }, (_, n) => ({ event: 'shop.item.added', payload: { n } })),
    );
    await waitUntil(async () => (await deadLetters.count()) === 3, 'three dead letters');
    const { items } = await deadLetters.list();
    assert.ok(items.every((e) => e.reason === 'max-attempts' && e.error.message === 'index down'));
    assert.ok(calls >= 2);
    await herald.stop();
  });

  test('bad batch options fail at subscribe, naming the field', async () => {
    const { herald } = await setup();
    const spec = (batch: unknown, concurrency?: number) => () =>
      herald.subscribe({
        group: 'g',
        events: ['shop.item.added'],
        batch: batch as never,
        handler: () => undefined,
        ...(concurrency ? { concurrency } : {}),
      });
    assert.throws(
      spec({ maxSize: 0, maxWaitMs: 1 }),
      (e: Error) => e instanceof ConfigError && /batch\.maxSize/.test(e.message),
    );
    assert.throws(spec({ maxSize: 2, maxWaitMs: -1 }), /batch\.maxWaitMs/);
    assert.throws(spec({ maxSize: 10, maxWaitMs: 1 }, 4), /concurrency: must be at least batch\.maxSize/);
    await herald.stop();
  });
});
