/**
 * The transactional outbox on PostgreSQL and SQLite: rolled-back transactions publish nothing,
 * committed ones are relayed in order, one relay is active at a time, lag is reported, and
 * hostile rows written with plain SQL reach the DLQ with reason `decode` without stopping anything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresOutbox } from '../../src/adapters/postgres/index.js';
import { SqliteOutbox } from '../../src/adapters/sqlite/index.js';
import { createHerald, MemoryDeadLetterStore, MemoryTransport, type Delivery } from '../../src/index.js';
import { OutboxRelay } from '../../src/outbox/index.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from '../adapters/postgres/harness.js';
import { sleep, waitUntil } from '../support/wait.js';

const decoder = new TextDecoder();

async function collect(transport: MemoryTransport, topic: string): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await transport.subscribe(topic, { group: 'g', prefetch: 1000, ordering: 'none' }, async (d) => {
    got.push(d);
    await d.ack();
  });
  return got;
}

describe('outbox on PostgreSQL', () => {
  const schemas: string[] = [];
  const pool = new pg.Pool({ connectionString: SHARED_URL, max: 4 });
  after(async () => {
    await pool.end();
    await dropSchemas(SHARED_URL, schemas);
  });
  const open = async (): Promise<PostgresOutbox> => {
    const schema = uniqueSchema('outbox');
    schemas.push(schema);
    return PostgresOutbox.connect({ connectionString: SHARED_URL, schema, service: 'orders', poolSize: 2 });
  };

  test('rolled back: nothing; committed: relayed in order; two relays, one active', async () => {
    const outbox = await open();
    await pool.query(`CREATE TABLE "${outbox.schema}".orders (id text PRIMARY KEY)`);
    const transport = new MemoryTransport();
    const got = await collect(transport, 'orders');
    for (let i = 0; i < 20; i++) {
      const client = await pool.connect();
      await client.query('BEGIN');
      await client.query(`INSERT INTO "${outbox.schema}".orders VALUES ($1)`, [`o${i}`]);
      await outbox
        .in(client)
        .publish(
          { topic: 'orders', type: 'order.placed', aggregateId: `o${i % 3}`, payload: { i } },
          { topic: 'orders', type: 'order.priced', aggregateId: `o${i % 3}`, payload: { i } },
        );
      await client.query(i % 2 === 0 ? 'COMMIT' : 'ROLLBACK');
      client.release();
    }
    const sources = [outbox.source(), outbox.source()];
    const relays = sources.map((source) => new OutboxRelay({ source, transport, pollIntervalMs: 200 }));
    relays.forEach((r) => r.start());
    await waitUntil(() => got.length === 20, `20 committed events (have ${got.length})`);
    await sleep(300);
    assert.equal(got.length, 20, 'nothing sent twice, nothing rolled back sent');
    assert.deepEqual(relays.map((r) => r.state).sort(), ['relaying', 'standby']);
    const payloads = got.map((d) => JSON.parse(decoder.decode(d.message.body)) as { payload: { i: number } });
    assert.ok(payloads.every((p) => p.payload.i % 2 === 0));
    assert.equal(got[0]!.message.headers['event-type'], 'order.placed');
    assert.equal(got[1]!.message.headers['event-type'], 'order.priced');
    // A commit after the relays started wakes the active one (NOTIFY), well before its poll interval.
    const client = await pool.connect();
    await client.query('BEGIN');
    await outbox
      .in(client)
      .publish({ topic: 'orders', type: 'order.placed', aggregateId: 'late', payload: {} });
    await client.query('COMMIT');
    client.release();
    await waitUntil(() => got.length === 21, 'the late event');
    // Stopping the active relay hands over to the standby.
    const active = relays.find((r) => r.state === 'relaying')!;
    const standby = relays.find((r) => r !== active)!;
    await active.stop();
    await outbox.in(pool).publish({ topic: 'orders', type: 'order.placed', payload: {} });
    await waitUntil(() => got.length === 22, 'the standby took over', 10_000);
    assert.equal(standby.state, 'relaying');
    await waitUntil(async () => (await standby.lag()).pending === 0, 'marked sent');
    const health = await standby.healthCheck({ maxLagMs: 1000 }).check(new AbortController().signal);
    assert.equal(health?.status, 'healthy');
    await standby.stop();
    await Promise.all(sources.map((s) => s.close()));
    await outbox.close();
    await transport.close();
  });

  test('lag is a metric and a health check; it fails when nothing relays', async () => {
    const outbox = await open();
    await outbox.in(pool).publish({ topic: 't', type: 'a.b', payload: {} });
    await sleep(30);
    const lags: number[] = [];
    const source = outbox.source();
    const relay = new OutboxRelay({
      source,
      transport: new MemoryTransport(),
      lagIntervalMs: 10,
      onLag: (l) => lags.push(l.pending),
    });
    const check = relay.healthCheck({ maxLagMs: 10 });
    const report = await check.check(new AbortController().signal);
    assert.equal(report?.status, 'unhealthy');
    assert.match(report?.message ?? '', /oldest unsent outbox row is \d+ ms old/);
    relay.start();
    await waitUntil(() => lags.includes(0), 'a lag of 0 reported after relaying');
    await relay.stop();
    await source.close();
    await outbox.close();
  });

  test('hostile rows by plain SQL go to the DLQ with reason decode; the relay and the group go on', async () => {
    const outbox = await open();
    const s = `"${outbox.schema}"`;
    await pool.query(
      `INSERT INTO ${s}.outbox (id, topic, key, headers, body, created_at) VALUES
        ('bad-body', 'shop', 'k', '{"content-type":"application/json"}', '\\x00ff00', 0),
        ('bad-headers', 'shop', 'k', 'not json at all', '\\x7b7d', 0),
        ('wrong-headers', 'shop', NULL, '{"content-type": 5}', '\\x7b7d', 0)`,
    );
    await assert.rejects(
      pool.query(
        `INSERT INTO ${s}.outbox (id, topic, headers, body, created_at) VALUES ('x', '', '{}', '', 0)`,
      ),
      /check constraint/,
    );
    await outbox
      .in(pool)
      .publish({ topic: 'shop', type: 'shop.good', aggregateId: 'k', payload: { ok: true } });
    const transport = new MemoryTransport();
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'shop',
      transport,
      stores: { deadLetters },
      routing: { 'shop.*': 'shop' },
    });
    const good: string[] = [];
    herald.subscribe({ group: 'g', events: ['shop.*'], handler: async (e) => void good.push(e.type) });
    await herald.start();
    const source = outbox.source();
    const relay = new OutboxRelay({ source, transport });
    relay.start();
    await waitUntil(
      async () => good.length === 1 && (await deadLetters.count()) === 3,
      'three dead letters and the good event',
    );
    const entries = (await deadLetters.list()).items;
    assert.deepEqual(
      entries.map((e) => e.reason),
      ['decode', 'decode', 'decode'],
    );
    assert.deepEqual(entries.map((e) => e.message.id).sort(), ['bad-body', 'bad-headers', 'wrong-headers']);
    await relay.stop();
    await herald.stop();
    await source.close();
    await outbox.close();
  });
});

describe('outbox on SQLite', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-outbox-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('in the caller transaction: rollback publishes nothing, commits are relayed in order', async () => {
    const file = path.join(dir, 'app.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const outbox = new SqliteOutbox(db, { service: 'orders' });
    const place = db.transaction((i: number) => {
      db.prepare('INSERT INTO orders VALUES (?)').run(`o${i}`);
      outbox.publish({ topic: 'orders', type: 'order.placed', aggregateId: `o${i % 3}`, payload: { i } });
      if (i % 2 === 1) throw new Error('rolled back');
    });
    for (let i = 0; i < 20; i++) {
      try {
        place(i);
      } catch {
        // the odd ones roll back
      }
    }
    assert.equal((db.prepare('SELECT count(*) AS n FROM orders').get() as { n: number }).n, 10);
    const transport = new MemoryTransport();
    const got = await collect(transport, 'orders');
    // The relay runs on a connection of its own, as a relay process would.
    const relayOutbox = SqliteOutbox.open(file);
    const sources = [relayOutbox.source({ leaseMs: 500 }), relayOutbox.source({ leaseMs: 500 })];
    const relays = sources.map((source) => new OutboxRelay({ source, transport, pollIntervalMs: 1000 }));
    relays.forEach((r) => r.start());
    await waitUntil(() => got.length === 10, 'the committed ten');
    const is = got.map(
      (d) => (JSON.parse(decoder.decode(d.message.body)) as { payload: { i: number } }).payload.i,
    );
    assert.deepEqual(is, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    assert.deepEqual(relays.map((r) => r.state).sort(), ['relaying', 'standby']);
    // A later commit by the application's connection is noticed without waiting for the poll interval.
    place(20);
    await waitUntil(() => got.length === 11, 'the late one');
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all(sources.map((s) => s.close()));
    db.close();
    await transport.close();
  });
});
