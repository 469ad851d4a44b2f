/**
 * Crash test: 20 000 events on a mock Kafka cluster; a child process consumes them with
 * concurrency 128 and is SIGKILLed four times along the way. Nothing may be lost (the killed
 * member's uncommitted records are read again by the next member from the group's committed
 * offsets), and with the Redis idempotency store each side effect happens exactly once.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createHerald } from '../../../src/index.js';
import { needs } from '../../support/services.js';
import { unique, waitUntil } from '../../support/wait.js';
import { forkReady, killAndWait } from '../../support/child.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../redis/harness.js';
import { kafkaAvailable, startCluster, testTransport, uniqueNamespace, type TestCluster } from './harness.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-consumer.ts');
const TOTAL = 20_000;

const redisNeeded = await needs('redis');
describe('kafka transport: SIGKILLed consumer', redisNeeded.skip ? redisNeeded : kafkaAvailable(), () => {
  const prefix = uniquePrefix('kafka-crash');
  const namespace = uniqueNamespace('crash');
  const raw = new Redis(SHARED_URL);
  const children = new Set<ChildProcess>();
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    raw.disconnect();
    await dropPrefix(SHARED_URL, prefix);
    await cluster.stop();
  });

  const spawnConsumer = (env: Record<string, string>): Promise<ChildProcess> =>
    forkReady(fixture, env, children);

  const handled = async (): Promise<number> => Number(await raw.get(`${prefix}:handled`));

  test('20 000 events, four kills: none lost, every side effect exactly once', async () => {
    const topic = unique('crash');
    const env = {
      CRASH_REDIS_URL: SHARED_URL,
      CRASH_PREFIX: prefix,
      CRASH_BROKERS: cluster.brokers,
      CRASH_NAMESPACE: namespace,
      CRASH_TOPIC: topic,
      CRASH_GROUP: unique('g'),
    };
    const producer = await createHerald({
      service: 'crash-producer',
      transport: testTransport(cluster.brokers, namespace),
      routing: { 'crash.*': topic },
    });
    const published: string[] = [];
    for (let batch = 0; batch < TOTAL / 500; batch++) {
      const events = await producer.publishBatch(
        Array.from({ length: 500 }, (_, i) => ({
          event: 'crash.item.made',
          payload: { batch, i },
          options: { aggregateId: `agg-${i % 101}` },
        })),
      );
      published.push(...events.map((e) => e.id));
    }
    assert.equal(published.length, TOTAL);

    const started = performance.now();
    let kills = 0;
    let child = await spawnConsumer(env);
    for (const share of [0.1, 0.3, 0.5, 0.7]) {
      await waitUntil(async () => (await handled()) >= TOTAL * share, `${share * 100}% handled`, 30_000);
      await killAndWait(child);
      kills++;
      console.error(
        `kill ${kills} at ${Math.round(performance.now() - started)} ms, handled ${await handled()}`,
      );
      child = await spawnConsumer(env);
    }
    const effects = async (): Promise<string[]> => raw.lrange(`${prefix}:effects`, 0, -1);
    let distinct = 0;
    await waitUntil(
      async () => (distinct = new Set(await effects()).size) === TOTAL,
      `every event handled (have ${distinct})`,
      60_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; distinct effects ${new Set(await effects()).size} of ${TOTAL}`);
    });
    await killAndWait(child);
    await producer.stop();

    const counts = new Map<string, number>();
    for (const id of await effects()) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missing = published.filter((id) => !counts.has(id));
    const doubled = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(missing, [], 'events never handled');
    assert.deepEqual(doubled, [], 'side effects applied more than once');
    assert.equal(kills, 4);
    // Records read again after a kill start at attempt 1 (the count lives in memory); those whose
    // effect was already done are refused by the idempotency store.
    const duplicates = Number(await raw.get(`${prefix}:duplicates`));
    assert.ok(duplicates > 0, 'the kills left handled but uncommitted records that were read again');
  });
});
