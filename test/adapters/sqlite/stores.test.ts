import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
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

test('completeIn commits the effect and the done mark together, or neither', async () => {
  const file = tmp.file('complete-in.db');
  const stores = sqliteStores({ path: file });
  const idem = stores.idempotency;
  // The effect's table lives in the Herald file, created through the connection completeIn hands out.
  idem.completeIn('setup', 60_000, (db) => db.exec('CREATE TABLE effects (event_id TEXT PRIMARY KEY)'));

  assert.equal(await idem.reserve('g:e1', 60_000), 'acquired');
  const changes = idem.completeIn('g:e1', 60_000, (db) => {
    return db.prepare('INSERT INTO effects (event_id) VALUES (?)').run('e1').changes;
  });
  assert.equal(changes, 1, 'the effect’s return value comes back');

  // A throwing effect rolls its own writes back and leaves the reservation as it was.
  assert.equal(await idem.reserve('g:e2', 60_000), 'acquired');
  const boom = new Error('effect failed');
  assert.throws(
    () =>
      idem.completeIn('g:e2', 60_000, (db) => {
        db.prepare('INSERT INTO effects (event_id) VALUES (?)').run('e2');
        throw boom;
      }),
    (err) => err === boom,
  );
  // An async effect cannot share the transaction: refused, and what it wrote before its await is undone.
  assert.throws(
    () =>
      idem.completeIn('g:e2', 60_000, async (db) => {
        db.prepare('INSERT INTO effects (event_id) VALUES (?)').run('e2-async');
      }),
    /cannot span an await/,
  );

  // Read back with the driver's own client on a second connection, as another process would.
  const raw = new Database(file, { readonly: true });
  const states = Object.fromEntries(
    (raw.prepare('SELECT key, state FROM herald_idempotency').all() as { key: string; state: string }[]).map(
      (r) => [r.key, r.state],
    ),
  );
  assert.deepEqual(states, { setup: 'done', 'g:e1': 'done', 'g:e2': 'reserved' });
  assert.deepEqual(raw.prepare('SELECT event_id FROM effects').pluck().all(), ['e1']);
  raw.close();

  assert.equal(await idem.reserve('g:e1', 60_000), 'done');
  await stores.close();
  assert.throws(() => idem.completeIn('g:e3', 60_000, () => undefined), ClosedError);
});
