/**
 * Crash test: a child process consumes with concurrency 8 and is SIGKILLed several times while a
 * producer keeps publishing. Every published event must be handled at least once (the killed
 * child's leases are reclaimed with XAUTOCLAIM after claimIdleMs), and with idempotency on, each
 * side effect exactly once. Run once per read path: ordering by key (new entries read inside the
 * fetch script) and ordering none (a plain XREADGROUP behind it, ADR 0309, so kills also land
 * between a read and the hand-out of its entries).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createHerald } from '../../../src/index.js';
import { redis } from '../../../src/adapters/redis/index.js';
import { needs } from '../../support/services.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import { forkReady, killAndWait } from '../../support/child.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from './harness.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-consumer.ts');

const services = await needs('redis');

for (const ordering of ['key', 'none'] as const)
  describe(`redis transport, ordering ${ordering}: SIGKILLed consumer`, services, () => {
    const prefix = uniquePrefix(`crash-${ordering}`);
    const raw = new Redis(SHARED_URL);
    const children = new Set<ChildProcess>();
    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      raw.disconnect();
      await dropPrefix(SHARED_URL, prefix);
    });

    const spawnConsumer = (env: Record<string, string>): Promise<ChildProcess> =>
      forkReady(fixture, env, children);

    test('every event is handled at least once and its side effect exactly once', async () => {
      const topic = unique('crash');
      const env = {
        CRASH_REDIS_URL: SHARED_URL,
        CRASH_PREFIX: prefix,
        CRASH_TOPIC: topic,
        CRASH_GROUP: unique('g'),
        CRASH_CLAIM_IDLE_MS: '300',
        ...(ordering === 'none' ? { CRASH_ORDERING: 'none' } : {}),
      };
      const transport = redis({ url: SHARED_URL, prefix });
      const producer = await createHerald({
        service: 'crash-producer',
        transport,
        routing: { 'crash.*': topic },
      });
      const published: string[] = [];
      let producing = true;
      const production = (async () => {
        for (let batch = 0; producing && batch < 60; batch++) {
          const events = await producer.publishBatch(
            Array.from({ length: 50 }, (_, i) => ({
              event: 'crash.item.made',
              payload: { batch, i },
              options: { aggregateId: `agg-${i % 13}` },
            })),
          );
          published.push(...events.map((e) => e.id));
          await sleep(40);
        }
      })();

      let kills = 0;
      let child = await spawnConsumer(env);
      for (let round = 0; round < 5; round++) {
        await sleep(300 + Math.random() * 300);
        await killAndWait(child);
        kills++;
        child = await spawnConsumer(env);
      }
      await production;
      producing = false;
      const total = published.length;
      assert.equal(total, 3_000);
      await waitUntil(
        async () => new Set(await raw.lrange(`${prefix}:handled`, 0, -1)).size === total,
        'every event handled',
        40_000,
      );
      await sleep(700); // > claimIdleMs + idempotency lease: a late duplicate would have shown up by now
      await killAndWait(child);
      await producer.stop();

      const effects = await raw.lrange(`${prefix}:effects`, 0, -1);
      const counts = new Map<string, number>();
      for (const id of effects) counts.set(id, (counts.get(id) ?? 0) + 1);
      const missing = published.filter((id) => !counts.has(id));
      const doubled = [...counts].filter(([, n]) => n > 1);
      assert.deepEqual(missing, [], 'events never handled');
      assert.deepEqual(doubled, [], 'side effects applied more than once');
      assert.equal(effects.length, total);
      const redelivered = Number(await raw.get(`${prefix}:redelivered`));
      assert.equal(kills, 5);
      assert.ok(redelivered > 0, 'the kills interrupted in-flight work that was redelivered');
    });
  });
