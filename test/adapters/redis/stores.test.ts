/**
 * Redis store behaviour beyond the store conformance suite: atomic completion inside a caller's
 * MULTI, option checks, status and health. Shared Redis, unique prefix.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ConfigError } from '../../../src/index.js';
import { redisStores } from '../../../src/adapters/redis/index.js';
import { needs } from '../../support/services.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from './harness.js';

describe('redis stores', await needs('redis'), () => {
  const prefix = uniquePrefix('stores-extra');
  const stores = redisStores({ url: SHARED_URL, prefix });
  const raw = new Redis(SHARED_URL);
  after(async () => {
    await stores.close();
    raw.disconnect();
    await dropPrefix(SHARED_URL, prefix);
  });

  test('completeIn commits the done mark with the caller’s side effect', async () => {
    const { idempotency } = stores;
    assert.equal(await idempotency.reserve('g:e1', 10_000), 'acquired');
    const tx = raw.multi().rpush(`${prefix}:effects`, 'e1');
    await idempotency.completeIn(tx, 'g:e1', 60_000).exec();
    assert.equal(await idempotency.reserve('g:e1', 10_000), 'done');
    assert.deepEqual(await raw.lrange(`${prefix}:effects`, 0, -1), ['e1']);
    // A transaction that is discarded marks nothing.
    assert.equal(await idempotency.reserve('g:e2', 10_000), 'acquired');
    await idempotency.release('g:e2');
    const discarded = idempotency.completeIn(raw.multi().rpush(`${prefix}:effects`, 'e2'), 'g:e2', 60_000);
    await discarded.discard();
    assert.equal(await idempotency.reserve('g:e2', 10_000), 'acquired');
  });

  test('calls of one turn share a batch, yet each keeps its own outcome: a foreign value is taken over, a wrong type fails alone', async () => {
    const { idempotency } = stores;
    // Values written with Redis's own client where the store keeps its keys (found through a probe).
    assert.equal(await idempotency.reserve('g:probe', 10_000), 'acquired');
    const [probeKey] = await raw.keys(`*${prefix}*g:probe`);
    assert.ok(probeKey, 'the probe key exists');
    const keyOf = (k: string): string => probeKey.replace('g:probe', k);
    await raw.hset(keyOf('g:hash'), 'f', '1');
    await raw.set(keyOf('g:foreign'), 'not herald');
    await raw.set(keyOf('g:done'), 'd');
    const outcomes = await Promise.allSettled([
      idempotency.reserve('g:new', 10_000),
      idempotency.reserve('g:new', 10_000),
      idempotency.reserve('g:hash', 10_000),
      idempotency.reserve('g:foreign', 10_000),
      idempotency.reserve('g:done', 10_000),
      idempotency.complete('g:later', 60_000),
    ]);
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message.split(' ')[0])),
      ['acquired', 'in-progress', 'WRONGTYPE', 'acquired', 'done', undefined],
    );
    assert.equal(await raw.get(keyOf('g:foreign')), 'r');
    assert.equal(await raw.get(keyOf('g:later')), 'd');
    assert.ok((await raw.pttl(keyOf('g:foreign'))) > 9_000, 'the foreign value became a lease');
  });

  test('status and health', async () => {
    assert.equal((await stores.health()).ok, true);
    assert.equal(stores.status().state, 'ready');
  });

  test('bad options name the field', () => {
    assert.throws(
      () => redisStores({ prefix: 'x y' }),
      (e: unknown) => e instanceof ConfigError && e.field === 'prefix',
    );
    assert.throws(
      () => redisStores({ url: SHARED_URL, cluster: { nodes: [] } }),
      (e: unknown) => e instanceof ConfigError && e.field === 'cluster',
    );
  });
});
