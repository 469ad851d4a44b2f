import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { redisStores, type RedisStores } from '../../../src/adapters/redis/index.js';
import { DeadLetterIndex } from '../../../src/console/index.js';
import type { DeadLetterEntry, DeadLetterSearch } from '../../../src/store/dead-letter-store.js';
import { needs } from '../../support/services.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from './harness.js';

/*
 * ADR 0976: the Redis store's search records and id zsets are written with the entry. Entries a
 * Herald without them wrote (raw commands, the layout before) are indexed on the first search, and
 * records an older Herald left behind when it removed the entry are dropped; a replace and a
 * remove keep the keys in step with the entries.
 */

const redisReachable = await needs('redis');

function entry(i: number): DeadLetterEntry {
  const group = i % 2 ? 'billing' : 'mail';
  return {
    id: `${group}:m-${i}`,
    reason: i % 4 === 0 ? 'schema' : 'max-attempts',
    message: {
      id: `m-${i}`,
      ...(i % 6 === 0 ? {} : { key: `c-${i % 5}` }),
      headers: { 'content-type': 'application/json' },
      body: new TextEncoder().encode('{}'),
    },
    topic: 'orders',
    group,
    handler: group,
    eventType: `t${i % 3}`,
    error:
      i % 3 === 0
        ? { name: 'Error', message: `Größe ${i} ÜBERSCHRITTEN`, stack: 'Error: x\n    at f (/a.ts:1:1)' }
        : { name: 'Error', message: `Upstream returned 503 after ${i} ms` },
    attempts: 3,
    firstFailedAt: 5_000_000 + i,
    lastFailedAt: 5_000_000 + i,
    deadLetteredAt: 5_000_000 + Math.floor(i / 2),
  };
}

const SEARCHES: DeadLetterSearch[] = [
  { text: 'überschritten' },
  { errorText: 'GRÖSSE' },
  { errorText: 'größe 3' },
  { text: 'm-1' },
  { aggregateId: 'c-2' },
  { aggregateId: 'c-2', group: 'billing' },
  { eventId: 'm-33' },
  { text: 'upstream', reason: 'schema' },
  { text: 'upstream', since: 5_000_300, until: 5_001_100 },
  { text: '' },
];

describe('redis dead-letter search records', redisReachable, () => {
  const prefixes: string[] = [];
  const sets: RedisStores[] = [];
  let raw: Redis;
  const fresh = (): { store: RedisStores['deadLetters']; base: string } => {
    const prefix = uniquePrefix('dlq-search');
    prefixes.push(prefix);
    const set = redisStores({ url: SHARED_URL, prefix });
    sets.push(set);
    return { store: set.deadLetters, base: `{${prefix}:dlq}` };
  };
  before(() => void (raw = new Redis(SHARED_URL)));
  after(async () => {
    raw.disconnect();
    await Promise.all(sets.map((s) => s.close()));
    for (const p of prefixes) await dropPrefix(SHARED_URL, p);
  });

  /** One record per entry, one event-id member per entry, one aggregate member per entry with a key. */
  async function assertKeysConsistent(base: string): Promise<void> {
    const entries = await raw.hlen(`${base}:e`);
    assert.equal(await raw.hlen(`${base}:s`), entries, 'search records');
    assert.equal(await raw.zcard(`${base}:ii`), entries, 'event id members');
    let keyed = 0;
    for (const json of await raw.hvals(`${base}:e`))
      if ((JSON.parse(json) as DeadLetterEntry).message.key !== undefined) keyed++;
    assert.equal(await raw.zcard(`${base}:ia`), keyed, 'aggregate id members');
  }

  async function assertSameAnswers(store: RedisStores['deadLetters']): Promise<void> {
    const index = new DeadLetterIndex(store);
    await index.fresh();
    for (const search of SEARCHES) {
      const { text, ...rest } = search;
      const filter = { ...rest, ...(text !== undefined ? { q: text } : {}) };
      // Pages of 400 over 2,500 entries: cursors fall inside and between the script's 2,000-entry walks.
      for (const order of ['newest', 'oldest'] as const) {
        let cursor: string | undefined;
        do {
          const request = { limit: 400, ...(cursor ? { cursor } : {}) };
          const got = await store.search(search, { ...request, order });
          const want = index.page(filter, { ...request, newestFirst: order === 'newest' });
          const label = `${JSON.stringify(search)} ${order} ${cursor ?? ''}`;
          assert.deepEqual(
            got.items.map((i) => i.id),
            want.items.map((i) => i.id),
            label,
          );
          assert.equal(got.total, want.total, label);
          assert.equal(got.nextCursor, want.nextCursor, label);
          cursor = got.nextCursor;
        } while (cursor);
      }
    }
  }

  test('replace and remove move the records and id members with the entry', async () => {
    const { store, base } = fresh();
    for (let i = 0; i < 60; i++) await store.add(entry(i));
    // Replaced with another key, event id, error and time; then some removed, some purged.
    for (let i = 0; i < 60; i += 7)
      await store.add({
        ...entry(i),
        message: { ...entry(i).message, id: `moved-${i}`, key: `k-${i}` },
        error: { name: 'Error', message: 'replaced' },
        deadLetteredAt: 6_000_000 + i,
      });
    await store.remove([entry(1).id, entry(2).id, 'nope:1']);
    await store.purge({ group: 'mail', reason: 'schema' });
    await assertKeysConsistent(base);
    await assertSameAnswers(store);
    assert.equal((await store.search({ eventId: 'moved-7' })).total, 1);
    assert.equal((await store.search({ eventId: 'm-7' })).total, 0);
    assert.equal((await store.search({ aggregateId: 'k-14', errorText: 'replaced' })).total, 1);
    await store.purge();
    assert.deepEqual(await raw.exists(`${base}:s`, `${base}:ia`, `${base}:ii`), 0);
  });

  test('entries written in the layout before (raw commands) are indexed on the first search', async () => {
    const { store, base } = fresh();
    // As a Herald without search records left them: entry, index member, listing zset only.
    const old = Array.from({ length: 2500 }, (_, i) => entry(i));
    const pipe = raw.pipeline();
    for (const e of old) {
      const member = `${String(e.deadLetteredAt).padStart(15, '0')}\u0000${e.id}`;
      const json = JSON.stringify({
        ...e,
        message: { ...e.message, body: Buffer.from(e.message.body).toString('base64') },
      });
      pipe.hset(`${base}:e`, e.id, json).hset(`${base}:m`, e.id, member).zadd(`${base}:z`, 0, member);
    }
    await pipe.exec();
    await store.add(entry(9001));
    // An older Herald removes an entry with a record and one without, leaving records alone.
    await store.add(entry(9003));
    for (const id of [entry(9003).id, old[3]!.id]) {
      const m = await raw.hget(`${base}:m`, id);
      await raw.multi().hdel(`${base}:e`, id).hdel(`${base}:m`, id).zrem(`${base}:z`, m!).exec();
    }
    assert.equal(await raw.hlen(`${base}:s`), 2, 'records before the first search');
    const found = await store.search({ text: 'überschritten' });
    assert.equal(found.total, old.filter((e, i) => i !== 3 && e.error.message.includes('Ü')).length);
    await assertKeysConsistent(base);
    await assertSameAnswers(store);
    assert.equal((await store.search({ eventId: 'm-9003' })).total, 0);
    assert.equal((await store.search({ eventId: 'm-9001' })).total, 1);
  });
});
