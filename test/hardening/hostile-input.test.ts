import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { redis } from '../../src/adapters/redis/index.js';
import { TopicKeys } from '../../src/adapters/redis/keys.js';
import { sqlite } from '../../src/adapters/sqlite/index.js';
import { createHerald, MemoryDeadLetterStore, type Herald, type Transport } from '../../src/index.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';
import { waitUntil } from '../support/wait.js';

/**
 * Input that reaches a topic without going through Herald, written with the broker's own client:
 * it must be dead-lettered with reason `decode`, raw bytes kept, and the group must go on.
 */
const TOPIC = 'hostile.events';

async function consumer(
  transport: Transport,
): Promise<{ herald: Herald; handled: string[]; dlq: MemoryDeadLetterStore }> {
  const dlq = new MemoryDeadLetterStore();
  const herald = await createHerald({ service: 'hostile', transport, stores: { deadLetters: dlq } });
  const handled: string[] = [];
  herald.subscribe({
    group: 'g',
    events: ['hostile.*'],
    handler: (e) => void handled.push((e.payload as { n: string }).n),
  });
  await herald.start();
  return { herald, handled, dlq };
}

async function decodeEntries(dlq: MemoryDeadLetterStore, n: number) {
  await waitUntil(async () => (await dlq.count({})) >= n, `${n} dead letters`);
  const { items } = await dlq.list({}, { limit: 10 });
  assert.equal(items.length, n);
  for (const e of items) assert.equal(e.reason, 'decode', JSON.stringify(e));
  return items;
}

describe('hostile input reaching a topic', () => {
  test('redis: raw XADD entries without an id field or with non-JSON headers', async () => {
    const prefix = uniquePrefix('hostile');
    const raw = new Redis(SHARED_URL);
    const { herald, handled, dlq } = await consumer(redis({ url: SHARED_URL, prefix }));
    try {
      const stream = new TopicKeys(prefix, TOPIC).stream;
      await herald.publish('hostile.thing.happened', { n: 'before' });
      await raw.xadd(stream, '*', 'foo', 'bar', 'b', Buffer.from([0xde, 0xad]));
      await raw.xadd(stream, '*', 'i', 'bad-headers', 'h', '{not json', 'b', Buffer.from('raw body'));
      await herald.publish('hostile.thing.happened', { n: 'after' });
      await waitUntil(() => handled.length === 2, 'both good events handled');
      assert.deepEqual(handled, ['before', 'after']);
      const items = await decodeEntries(dlq, 2);
      const noId = items.find((e) => e.message.headers['herald-raw-field-foo'] === 'bar')!;
      assert.match(noId.error.message, /has no message id/);
      assert.deepEqual([...noId.message.body], [0xde, 0xad]);
      const badHeaders = items.find((e) => e.message.id === 'bad-headers')!;
      assert.equal(badHeaders.message.headers['herald-raw-headers'], '{not json');
      assert.equal(Buffer.from(badHeaders.message.body).toString(), 'raw body');
      // Nothing is left pending in the group: the entries were settled after being parked.
      // Acks follow the handler and the DLQ write asynchronously: wait for them rather than race them.
      await waitUntil(
        async () => ((await raw.xpending(stream, 'g')) as [number, ...unknown[]])[0] === 0,
        'no entry left pending in the group',
      );
    } finally {
      await herald.stop();
      raw.disconnect();
      await dropPrefix(SHARED_URL, prefix);
    }
  });

  test('sqlite: a row with invalid JSON headers inserted by plain SQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-hostile-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.db');
    const { herald, handled, dlq } = await consumer(sqlite({ path }));
    try {
      await herald.publish('hostile.thing.happened', { n: 'before' });
      const db = new Database(path);
      const insert = db.prepare(
        `INSERT INTO herald_messages (topic_id, id, key, headers, body, published_at)
         VALUES ((SELECT id FROM herald_topics WHERE name = ?), ?, ?, ?, ?, ?)`,
      );
      insert.run(TOPIC, 'bad-json', null, '{not json', Buffer.from([1, 2, 3]), Date.now());
      insert.run(TOPIC, 'bad-shape', 'k1', '["an","array"]', Buffer.from('x'), Date.now());
      db.close();
      await herald.publish('hostile.thing.happened', { n: 'after' });
      await waitUntil(() => handled.length === 2, 'both good events handled');
      assert.deepEqual(handled, ['before', 'after']);
      const items = await decodeEntries(dlq, 2);
      const badJson = items.find((e) => e.message.id === 'bad-json')!;
      assert.equal(badJson.message.headers['herald-raw-headers'], '{not json');
      assert.deepEqual([...badJson.message.body], [1, 2, 3]);
      assert.match(badJson.error.message, /not a JSON object of strings/);
      assert.equal(items.find((e) => e.message.id === 'bad-shape')!.message.key, 'k1');
    } finally {
      await herald.stop();
    }
  });
});
