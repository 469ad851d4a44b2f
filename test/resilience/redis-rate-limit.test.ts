import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisSlidingWindow, RedisTokenBucket } from '../../src/adapters/redis/rate-limit.js';
import { RateLimitPolicy, RateLimitedError } from '../../src/resilience/index.js';
import { needs } from '../support/services.js';

const options = await needs('redis');
const prefix = `herald:test:rl:${randomUUID()}:`;

describe('Redis rate limiters', options, () => {
  let a: Redis;
  let b: Redis;

  before(() => {
    a = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false, maxRetriesPerRequest: 1 });
    b = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false, maxRetriesPerRequest: 1 });
  });

  after(async () => {
    let cursor = '0';
    do {
      const [next, keys] = await a.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await a.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    assert.equal((await a.keys(`${prefix}*`)).length, 0);
    a.disconnect();
    b.disconnect();
  });

  test('token bucket: two processes share one budget atomically', async () => {
    const opts = { keyPrefix: prefix, capacity: 10, refillPerSecond: 0.001 };
    const one = new RedisTokenBucket({ client: a, ...opts });
    const two = new RedisTokenBucket({ client: b, ...opts });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? one : two).tryAcquire('shared')),
    );
    assert.equal(results.filter((r) => r.allowed).length, 10);
    const denied = results.find((r) => !r.allowed)!;
    assert.ok(
      denied.retryAfterMs > 0 && denied.retryAfterMs <= 1_000_000,
      `retryAfterMs ${denied.retryAfterMs}`,
    );
    assert.equal((await one.tryAcquire('other-key')).allowed, true, 'keys are independent');
    assert.equal((await one.tryAcquire('shared', 11)).retryAfterMs, Infinity);
  });

  test('token bucket refills: a denied request is allowed once retryAfterMs has passed', async () => {
    const bucket = new RedisTokenBucket({ client: a, keyPrefix: prefix, capacity: 2, refillPerSecond: 100 });
    assert.equal((await bucket.tryAcquire('refill', 2)).allowed, true);
    const denied = await bucket.tryAcquire('refill');
    assert.equal(denied.allowed, false);
    assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= 10);
    await new Promise((r) => setTimeout(r, Math.ceil(denied.retryAfterMs) + 5));
    assert.equal((await bucket.tryAcquire('refill')).allowed, true);
    const ttl = await a.pttl(`${prefix}tb:refill`);
    assert.ok(ttl > 0, 'state expires on its own');
  });

  test('sliding window: exactly `limit` admissions across processes, with a retryAfter inside the window', async () => {
    const opts = { keyPrefix: prefix, limit: 5, windowMs: 60_000 };
    const one = new RedisSlidingWindow({ client: a, ...opts });
    const two = new RedisSlidingWindow({ client: b, ...opts });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).tryAcquire('sw')),
    );
    assert.equal(results.filter((r) => r.allowed).length, 5);
    const denied = results.find((r) => !r.allowed)!;
    assert.ok(
      denied.retryAfterMs > 50_000 && denied.retryAfterMs <= 60_000,
      `retryAfterMs ${denied.retryAfterMs}`,
    );
    assert.equal(await a.zcard(`${prefix}sw:sw`), 5, 'denied requests leave no entry');
  });

  test('sliding window slides: entries leave after windowMs', async () => {
    const win = new RedisSlidingWindow({ client: a, keyPrefix: prefix, limit: 2, windowMs: 30 });
    assert.equal((await win.tryAcquire('slide', 2)).allowed, true);
    const denied = await win.tryAcquire('slide');
    assert.equal(denied.allowed, false);
    await new Promise((r) => setTimeout(r, Math.ceil(denied.retryAfterMs) + 5));
    assert.equal((await win.tryAcquire('slide')).allowed, true);
  });

  test('works as a RateLimitPolicy', async () => {
    const policy = new RateLimitPolicy(
      new RedisTokenBucket({ client: a, keyPrefix: prefix, capacity: 1, refillPerSecond: 0.01 }),
      { key: 'policy', name: 'shared' },
    );
    assert.equal(await policy.execute(() => 'ok'), 'ok');
    await assert.rejects(
      policy.execute(() => 'ok'),
      RateLimitedError,
    );
  });

  test('recovers when the script cache is flushed (NOSCRIPT)', async () => {
    const bucket = new RedisTokenBucket({ client: a, keyPrefix: prefix, capacity: 5, refillPerSecond: 1 });
    await bucket.tryAcquire('flush');
    await a.script('FLUSH');
    assert.equal((await bucket.tryAcquire('flush')).allowed, true);
  });
});
