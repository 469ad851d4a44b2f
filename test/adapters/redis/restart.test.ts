/**
 * Redis restart mid-stream, on a private redis-server with AOF: a consumer keeps running and a
 * producer keeps publishing while the server goes down and comes back. Every publish either
 * resolves or rejects; everything that resolved is consumed; the outage is reported, not hidden.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Message } from '../../../src/index.js';
import { redis, type RedisTransport } from '../../../src/adapters/redis/index.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import { OwnRedis, uniquePrefix } from './harness.js';

const available =
  OwnRedis.available() || process.env.CI === 'true' ? {} : { skip: 'redis-server binary not found' };

describe('redis transport: server restart mid-stream', available, () => {
  let server: OwnRedis;
  const transports: RedisTransport[] = [];
  before(async () => {
    server = await OwnRedis.start();
  });
  after(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await server.stop();
  });

  test('consumer and producer ride through a restart; nothing published is lost', async (t) => {
    const errors: string[] = [];
    const options = {
      url: server.url,
      prefix: uniquePrefix('restart'),
      claimIdleMs: 500,
      blockMs: 200,
      onError: (err: Error, context: string) => void errors.push(`${context}: ${err.message}`),
    };
    const producer = redis(options);
    const consumer = redis(options);
    transports.push(producer, consumer);
    const topic = unique('restart');
    const got = new Set<string>();
    await consumer.subscribe(topic, { group: 'g', prefetch: 32 }, async (d) => {
      got.add(d.message.id);
      await d.ack();
    });
    const published: string[] = [];
    let failures = 0;
    let running = true;
    const production = (async () => {
      for (let batch = 0; running; batch++) {
        const messages: Message[] = Array.from({ length: 20 }, (_, i) => ({
          id: `b${batch}-${i}`,
          key: `k${i % 5}`,
          headers: {},
          body: new Uint8Array([batch % 256, i]),
        }));
        try {
          await producer.publish(topic, messages);
          published.push(...messages.map((m) => m.id));
        } catch {
          failures++; // loud: the caller knows this batch was not accepted
        }
        await sleep(10);
      }
    })();
    await waitUntil(() => got.size >= 200, 'traffic flowing before the restart');
    await server.restart();
    await sleep(300);
    running = false;
    await production;
    await waitUntil(
      () => published.every((id) => got.has(id)),
      `all ${published.length} published messages consumed`,
      30_000,
    );
    assert.ok(published.length > 200);
    assert.ok(errors.length > 0, 'the outage was reported through onError');
    assert.equal(consumer.status().state, 'ready');
    assert.ok(consumer.status().errors > 0);
    assert.equal((await producer.health()).ok, true);
    // Failed publishes are allowed (they rejected, so the caller knew); silently lost ones are not.
    t.diagnostic(`${published.length} messages published, ${failures} batches rejected during the outage`);
  });
});
