/**
 * More Kafka consumers than libuv threads in one process: the transport warns once through
 * onError naming UV_THREADPOOL_SIZE, and subscriptions, publishing, consuming and closing all
 * still complete (each step bounded, so a stall fails instead of hanging the run).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openConsumers, threadpoolSize } from '../../../src/adapters/kafka/pool.js';
import { unique, waitUntil } from '../../support/wait.js';
import { kafkaAvailable, startCluster, testTransport, uniqueNamespace, type TestCluster } from './harness.js';

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
    }),
  ]);
}

test('the pool size is read from UV_THREADPOOL_SIZE, default 4', () => {
  assert.equal(threadpoolSize({}), 4);
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: '32' }), 32);
  assert.equal(threadpoolSize({ UV_THREADPOOL_SIZE: 'lots' }), 4);
});

describe('kafka consumers beyond the libuv threadpool', kafkaAvailable(), () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster.stop());

  test('warns once naming UV_THREADPOOL_SIZE, and everything still completes', async () => {
    const size = threadpoolSize();
    const warnings: string[] = [];
    const t = testTransport(cluster.brokers, uniqueNamespace('pool'), {
      onError: (err, context) => {
        if (context === 'threadpool') warnings.push(err.message);
      },
    });
    const topic = unique('wide');
    const seen = new Map<string, Set<string>>();
    // size + 1 groups (plus the scheduler's consumer): more consumers than threads.
    const groups = Array.from({ length: size + 1 }, () => unique('g'));
    const subs = await within(
      Promise.all(
        groups.map((group) =>
          t.subscribe(topic, { group, prefetch: 8 }, async (d) => {
            seen.set(group, (seen.get(group) ?? new Set()).add(d.message.id));
            await d.ack();
          }),
        ),
      ),
      60_000,
      `${groups.length} subscriptions`,
    );
    assert.ok(openConsumers() > size, `${openConsumers()} consumers open, pool ${size}`);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /libuv threadpool has \d+ threads \(UV_THREADPOOL_SIZE=/);
    const ids = Array.from({ length: 50 }, (_, i) => `m${i}`);
    await within(
      t.publish(
        topic,
        ids.map((id) => ({ id, key: id, headers: {}, body: new Uint8Array([1]) })),
      ),
      30_000,
      'publish',
    );
    await waitUntil(
      () => groups.every((g) => seen.get(g)?.size === ids.length),
      'every group gets every message',
      60_000,
    );
    await within(Promise.all(subs.map((s) => s.close())), 60_000, 'closing every subscription at once');
    await within(t.close(), 30_000, 'transport close');
    assert.equal(warnings.length, 1, 'warned once');
    assert.equal(openConsumers(), 0, 'every consumer closed and uncounted');
  });
});
