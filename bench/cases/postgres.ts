/**
 * The PostgreSQL transport next to pg-boss and a raw `FOR UPDATE SKIP LOCKED` loop, in the same run
 * on the same server (127.0.0.1:5432, database `test`), plus the outbox relay's throughput.
 *
 * - raw: a table of 305-byte rows; INSERTs of 500 per statement; 4 workers each running
 *   `DELETE ... WHERE id IN (SELECT ... LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING *`.
 * - herald: `publish` of 500 per call; one subscriber, prefetch 100 (ordering none, then per key
 *   over 64 keys), acking each delivery.
 * - pg-boss 10 (the last major that runs on Node 20): `insert` of 500 jobs per call; `work` with
 *   batchSize 100 and its shortest polling interval (0.5 s).
 * - outbox: rows written in transactions of 500, then relayed (batchSize 500) into a transport that
 *   only counts (the relay's own cost) and into the Herald PostgreSQL transport.
 */
import pg from 'pg';
import PgBoss from 'pg-boss';
import { PostgresOutbox, PostgresTransport } from '../../src/adapters/postgres/index.js';
import { OutboxRelay } from '../../src/outbox/index.js';
import type { Message, Transport } from '../../src/transport/transport.js';

const URL = process.env['HERALD_BENCH_POSTGRES'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const N = Number(process.env['HERALD_BENCH_POSTGRES_N'] ?? 10_000);
const BODY = new Uint8Array(305).fill(120);

const rate = (n: number, ms: number): number => Math.round((n / ms) * 1000);
const fmt = (n: number): string => n.toLocaleString('en-US');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const schemaName = (what: string): string => `bench_${what}_${process.pid}`;

async function drop(schemas: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await c.end();
}

async function raw(): Promise<{ publish: number; consume: number }> {
  const s = schemaName('raw');
  const pool = new pg.Pool({ connectionString: URL, max: 5 });
  await pool.query(`CREATE SCHEMA "${s}"`);
  await pool.query(`CREATE TABLE "${s}".q (id bigserial PRIMARY KEY, key text, body bytea)`);
  const body = Buffer.from(BODY);
  let t0 = performance.now();
  for (let i = 0; i < N; i += 500) {
    const n = Math.min(500, N - i);
    await pool.query(`INSERT INTO "${s}".q (key, body) SELECT 'k' || g, $1 FROM generate_series(1, $2) g`, [
      body,
      n,
    ]);
  }
  const publish = rate(N, performance.now() - t0);
  let taken = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const r = await pool.query(
          `DELETE FROM "${s}".q WHERE id IN (SELECT id FROM "${s}".q ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id, key, body`,
        );
        taken += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) === 0) return;
      }
    }),
  );
  const consume = rate(taken, performance.now() - t0);
  await pool.end();
  await drop([s]);
  return { publish, consume };
}

function messages(n: number, prefix: string): Message[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    key: `k${i % 64}`,
    headers: {},
    body: BODY,
  }));
}

async function herald(): Promise<{ publish: number; consumeNone: number; consumeKey: number }> {
  const s = schemaName('herald');
  const t = await PostgresTransport.connect({ connectionString: URL, schema: s });
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) await t.publish('bench', messages(Math.min(500, N - i), `m${i}`));
  const publish = rate(N, performance.now() - t0);
  const consume = async (group: string, ordering: 'none' | 'key'): Promise<number> => {
    let n = 0;
    const start = performance.now();
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const sub = await t.subscribe('bench', { group, prefetch: 100, ordering }, async (d) => {
      await d.ack();
      if (++n === N) done();
    });
    await finished;
    const r = rate(N, performance.now() - start);
    await sub.close();
    return r;
  };
  const consumeNone = await consume('none', 'none');
  const consumeKey = await consume('key', 'key');
  await t.close();
  await drop([s]);
  return { publish, consumeNone, consumeKey };
}

async function pgBoss(): Promise<{ publish: number; consume: number }> {
  const s = schemaName('pgboss');
  const boss = new PgBoss({ connectionString: URL, schema: s, max: 5 });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.createQueue('bench');
  let t0 = performance.now();
  for (let i = 0; i < N; i += 500)
    await boss.insert(
      Array.from({ length: Math.min(500, N - i) }, (_, j) => ({
        name: 'bench',
        data: { id: `m${i + j}`, body: 'x'.repeat(305) },
      })),
    );
  const publish = rate(N, performance.now() - t0);
  let n = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  t0 = performance.now();
  await boss.work('bench', { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    n += jobs.length;
    if (n >= N) done();
  });
  await finished;
  const consume = rate(N, performance.now() - t0);
  await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
  await drop([s]);
  return { publish, consume };
}

/** A transport that only counts what it is given: the relay's own cost. */
function countingTransport(): Transport & { count: number } {
  const t = {
    name: 'count',
    count: 0,
    capabilities: {
      persistent: false,
      distributed: false,
      consumerGroups: false,
      orderedByKey: false,
      delayedRedelivery: false,
      scheduledPublish: false,
    },
    publish: async (_topic: string, ms: readonly Message[]) => {
      t.count += ms.length;
    },
    subscribe: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
  };
  return t;
}

async function outbox(): Promise<{ write: number; relayNull: number; relayHerald: number }> {
  const s = schemaName('outbox');
  const box = await PostgresOutbox.connect({ connectionString: URL, schema: s, service: 'bench' });
  const pool = new pg.Pool({ connectionString: URL, max: 2 });
  const fill = async (): Promise<number> => {
    const start = performance.now();
    for (let i = 0; i < N; i += 500) {
      const client = await pool.connect();
      await client.query('BEGIN');
      await box.in(client).publish(
        ...Array.from({ length: Math.min(500, N - i) }, (_, j) => ({
          topic: 'bench',
          type: 'bench.happened',
          aggregateId: `agg-${(i + j) % 64}`,
          payload: { i: i + j },
        })),
      );
      await client.query('COMMIT');
      client.release();
    }
    return rate(N, performance.now() - start);
  };
  const relayInto = async (transport: Transport, sent: () => number): Promise<number> => {
    const source = box.source();
    const relay = new OutboxRelay({ source, transport, batchSize: 500, pollIntervalMs: 50 });
    const start = performance.now();
    relay.start();
    while (relay.sent < N) await sleep(5);
    const r = rate(N, performance.now() - start);
    await relay.stop();
    await source.close();
    if (sent() < N) throw new Error('relay lost rows');
    return r;
  };
  const write = await fill();
  const counter = countingTransport();
  const relayNull = await relayInto(counter, () => counter.count);
  await fill();
  const target = await PostgresTransport.connect({ connectionString: URL, schema: s });
  const relayHerald = await relayInto(target, () => N);
  await target.close();
  await pool.end();
  await box.close();
  await drop([s]);
  return { write, relayNull, relayHerald };
}

export async function run(): Promise<string> {
  const r = await raw();
  const h = await herald();
  const b = await pgBoss();
  const o = await outbox();
  const pct = (x: number, base: number): string => `${Math.round((x / base) * 100)}%`;
  return `${fmt(N)} messages of 305 bytes per measurement, PostgreSQL 15 on the same machine (shared, loaded by
other work while this ran: compare the rows of one run, not runs).

| | publish (msg/s) | consume (msg/s) | consume vs raw |
| --- | ---: | ---: | ---: |
| raw SKIP LOCKED loop (4 workers, 100 per DELETE) | ${fmt(r.publish)} | ${fmt(r.consume)} | 100% |
| Herald postgres, ordering none, prefetch 100 | ${fmt(h.publish)} | ${fmt(h.consumeNone)} | ${pct(h.consumeNone, r.consume)} |
| Herald postgres, per-key order (64 keys), prefetch 100 | | ${fmt(h.consumeKey)} | ${pct(h.consumeKey, r.consume)} |
| pg-boss 10 (insert 500, work batchSize 100) | ${fmt(b.publish)} | ${fmt(b.consume)} | ${pct(b.consume, r.consume)} |

Herald's consume is a full delivery: lease with a token, per-delivery ack (batched per event-loop
turn), LISTEN/NOTIFY wake-ups, lease renewal; the raw loop deletes rows with no lease, no retry
and no per-key order. pg-boss's consume includes its 0.5 s polling interval.

Outbox (events written in transactions of 500, relayed in batches of 500):

| | events/s |
| --- | ---: |
| outbox writes (\`outbox.in(client).publish\`, 500 per transaction) | ${fmt(o.write)} |
| relay into a counting transport (the relay's own cost) | ${fmt(o.relayNull)} |
| relay into the Herald PostgreSQL transport | ${fmt(o.relayHerald)} |
`;
}
