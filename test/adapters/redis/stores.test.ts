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
