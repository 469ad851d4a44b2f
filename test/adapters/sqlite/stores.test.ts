import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ClosedError, uuidv7 } from '../../../src/index.js';
import { sqlite, sqliteStores, SqliteIdempotencyStore } from '../../../src/adapters/sqlite/index.js';
import { msg, tempDir } from './helpers.js';

const tmp = tempDir('herald-sqlite-stores-own-');
after(() => tmp.cleanup());

test('stores share the transport file and keep their data across reopening', async () => {
  const file = tmp.file();
  const transport = sqlite({ path: file });
  const stores = sqliteStores({ path: file });
  await transport.publish('t', [msg('1')]);
  await stores.idempotency.reserve('g:1', 60_000);
  await stores.idempotency.complete('g:1', 60_000);
  const event = {
    id: uuidv7(),
    type: 'shop.order.placed',
    version: 'v1',
    source: 'test',
    aggregateId: 'o1',
    time: new Date().toISOString(),
    payload: { total: 3 },
    metadata: {},
  };
  await stores.events.append([event]);
  await stores.close();
  await transport.close();
  await assert.rejects(stores.events.lastPosition(), ClosedError);

  const reopened = sqliteStores({ path: file });
  assert.equal(await reopened.idempotency.reserve('g:1', 60_000), 'done');
  const [stored] = await reopened.events.readAggregate('o1');
  assert.deepEqual(stored, { position: 1, sequence: 1, event });
  await reopened.close();
});

test('two idempotency stores on one file (as two processes) never both acquire a key', async () => {
  const file = tmp.file('idem.db');
  const a = new SqliteIdempotencyStore({ path: file });
  const b = new SqliteIdempotencyStore({ path: file, busyTimeoutMs: 1000 }); // its own connection
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserve('k', 60_000)),
  );
  assert.equal(results.filter((r) => r === 'acquired').length, 1);
  await a.close();
  await b.close();
});
