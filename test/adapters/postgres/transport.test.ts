/**
 * PostgreSQL-specific behaviour beyond the conformance suite: hostile rows written with plain SQL,
 * migrations raced by two processes, a dead server failing start with its URL, delayed redelivery
 * close to its due time, retention that keeps unsettled messages, and the DLQ indexes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  PostgresTransport,
  postgresStores,
  SCHEMA_VERSION,
  PostgresSchemaVersionError,
} from '../../../src/adapters/postgres/index.js';
import { BackendUnreachableError } from '../../../src/backends/index.js';
import { createHerald, type Delivery } from '../../../src/index.js';
import { sleep, waitUntil } from '../../support/wait.js';
import { MIGRATIONS } from '../../../src/adapters/postgres/schema.js';
import { dropSchemas, freePort, SHARED_URL, uniqueSchema } from './harness.js';

const run = promisify(execFile);
const schemas: string[] = [];
const pool = new pg.Pool({ connectionString: SHARED_URL, max: 2 });
after(async () => {
  await pool.end();
  await dropSchemas(SHARED_URL, schemas);
});
function schema(what: string): string {
  const s = uniqueSchema(what);
  schemas.push(s);
  return s;
}

/**
 * Runs `sql` in a transaction of its own and returns its rows and how many rows of `table` it read
 * (that transaction's own counters: a plan, not a time).
 */
async function rowsRead(
  table: string,
  sql: string,
  values: unknown[],
): Promise<{ rows: { seq?: unknown }[]; read: number }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const r = await client.query(sql, values);
    const { rows } = await client.query(
      `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS read
         FROM pg_stat_xact_user_tables WHERE relid = $1::regclass`,
      [table],
    );
    await client.query('COMMIT');
    return { rows: r.rows, read: Number(rows[0].read) };
  } finally {
    client.release();
  }
}

/**
 * A schema whose topic `log` holds 20,000 messages over 50 keys, with autovacuum off for `table` (so
 * its statistics stay what the test makes them), and a group `g` created by hand with its cursor at
 * `cursor`: 'start' (nothing read yet) or 'end' (every message already in pending).
 */
async function seededLog(
  what: string,
  table: 'messages' | 'pending',
  bodyBytes: number,
  cursor: 'start' | 'end',
): Promise<{ s: string; topic: number; group: number }> {
  const s = schema(what);
  const t = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
  await pool.query(`ALTER TABLE "${s}".${table} SET (autovacuum_enabled = false)`);
  const body = new Uint8Array(bodyBytes);
  for (let i = 0; i < 20_000; i += 1000)
    await t.publish(
      'log',
      Array.from({ length: 1000 }, (_, j) => ({ id: `m${i + j}`, key: `k${j % 50}`, headers: {}, body })),
    );
  await t.close();
  const topic = (await pool.query(`SELECT id FROM "${s}".topics`)).rows[0].id as number;
  const start = cursor === 'start' ? '0' : `(SELECT max(seq) FROM "${s}".messages)`;
  const group = (
    await pool.query(
      `INSERT INTO "${s}".groups (topic_id, name, cursor, created_at) VALUES ($1, 'g', ${start}, 0) RETURNING id`,
      [topic],
    )
  ).rows[0].id as number;
  return { s, topic, group };
}

describe('PostgreSQL transport', () => {
  test('hostile rows inserted with plain SQL go to the DLQ with reason decode; the group goes on', async () => {
    const s = schema('hostile');
    const stores = await postgresStores({ connectionString: SHARED_URL, schema: s });
    const transport = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
    const herald = await createHerald({ service: 'shop', transport, stores, routing: { 'shop.*': 'shop' } });
    const good: number[] = [];
    herald.subscribe<{ n: number }>({
      group: 'g',
      events: ['shop.*'],
      concurrency: 4,
      handler: async (e) => void good.push(e.payload.n),
    });
    await herald.publish('shop.thing', { n: 1 }, { aggregateId: 'k' });
    // The topic and group exist now; write garbage behind the good event, on the same key.
    await herald.start();
    await waitUntil(() => good.length === 1, 'the first good event');
    const topicId = (await pool.query(`SELECT id FROM "${s}".topics WHERE name = 'shop'`)).rows[0]
      .id as number;
    await pool.query(
      `INSERT INTO "${s}".messages (topic_id, id, key, headers, body, published_at) VALUES
        ($1, 'garbage-body', 'k', '{"content-type":"application/json"}', '\\xdeadbeef', 0),
        ($1, 'garbage-headers', 'k', '{{{ not json', '\\x7b7d', 0),
        ($1, 'array-headers', NULL, '[1,2,3]', '\\x7b7d', 0),
        ($1, 'unknown-codec', 'k', '{"content-type":"text/x-nope"}', '\\x7b7d', 0)`,
      [topicId],
    );
    await pool.query(`SELECT pg_notify('herald_${s}', 'shop')`);
    await herald.publish('shop.thing', { n: 2 }, { aggregateId: 'k' });
    await waitUntil(
      async () => good.length === 2 && (await stores.deadLetters.count()) === 4,
      'four dead letters and the second good event',
    );
    const entries = (await stores.deadLetters.list({ reason: 'decode' })).items;
    assert.deepEqual(entries.map((e) => e.message.id).sort(), [
      'array-headers',
      'garbage-body',
      'garbage-headers',
      'unknown-codec',
    ]);
    assert.deepEqual(good, [1, 2], 'the key went on in order after the garbage');
    await herald.stop();
    await stores.close();
  });

  test('two processes starting on a new schema at once migrate it exactly once', async () => {
    const s = schema('race');
    const script = `
      import { PostgresTransport } from './src/adapters/postgres/index.ts';
      const t = await PostgresTransport.connect({ connectionString: process.argv[1], schema: process.argv[2] });
      await t.close();
      process.stdout.write('ok');`;
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, SHARED_URL, s], {
          cwd: process.cwd(),
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.stdout),
      ['ok', 'ok', 'ok'],
    );
    const version = await pool.query(`SELECT version FROM "${s}".schema_version`);
    assert.deepEqual(version.rows, [{ version: SCHEMA_VERSION }]);
  });

  test('a schema from a newer Herald is refused with both versions named', async () => {
    const s = schema('future');
    await (await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s })).close();
    await pool.query(`UPDATE "${s}".schema_version SET version = ${SCHEMA_VERSION + 1}`);
    await assert.rejects(
      PostgresTransport.connect({ connectionString: SHARED_URL, schema: s }),
      (err: unknown) =>
        err instanceof PostgresSchemaVersionError &&
        err.found === SCHEMA_VERSION + 1 &&
        /upgrade herald/.test(err.message),
    );
  });

  test('a server that is not there fails start within the timeout, naming the URL', async () => {
    const url = `postgres://app:secret@127.0.0.1:${await freePort()}/nothing`;
    const t0 = Date.now();
    await assert.rejects(
      PostgresTransport.connect({ connectionString: url, connectTimeoutMs: 500 }),
      (err: unknown) =>
        err instanceof BackendUnreachableError &&
        err.message.includes(`127.0.0.1`) &&
        err.message.includes('/nothing') &&
        !err.message.includes('secret'),
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  test('unknown options and bad values fail at once, naming the field', async () => {
    await assert.rejects(
      PostgresTransport.connect({ connectionString: SHARED_URL, visibilityTimeout: 5 } as never),
      /visibilityTimeout: is not an option; known options: .*visibilityTimeoutMs/,
    );
    await assert.rejects(
      PostgresTransport.connect({ connectionString: SHARED_URL, schema: 'drop table;' }),
      /schema: must be a PostgreSQL schema name/,
    );
  });

  test('delayed redelivery arrives close to its due time, also at another process', async () => {
    const s = schema('delay');
    const a = await PostgresTransport.connect({
      connectionString: SHARED_URL,
      schema: s,
      pollIntervalMs: 5000,
    });
    const b = await PostgresTransport.connect({
      connectionString: SHARED_URL,
      schema: s,
      pollIntervalMs: 5000,
    });
    const times: { at: number; attempt: number; by: string }[] = [];
    let nackedAt = 0;
    const handler =
      (by: string) =>
      async (d: Delivery): Promise<void> => {
        times.push({ at: Date.now(), attempt: d.attempt, by });
        if (d.attempt === 1) {
          nackedAt = Date.now();
          await d.nack({ delayMs: 700 });
          if (by === 'a') await subA.close(); // the redelivery must come to the other member
        } else await d.ack();
      };
    const subA = await a.subscribe('delayed', { group: 'g', prefetch: 1 }, handler('a'));
    await a.publish('delayed', [{ id: 'x', headers: {}, body: new Uint8Array([1]) }]);
    await waitUntil(() => times.length === 1, 'first delivery');
    const subB = await b.subscribe('delayed', { group: 'g', prefetch: 1 }, handler('b'));
    await waitUntil(() => times.length === 2, 'the redelivery');
    const late = times[1]!.at - nackedAt;
    assert.ok(late >= 695, `not early: ${late} ms`);
    assert.ok(
      late <= 700 + Math.max(50, 70) + 100,
      `not late: ${late} ms (bound 770 + 100 ms of slack for a loaded machine)`,
    );
    await subB.close();
    await a.close();
    await b.close();
  });

  test('retention deletes acknowledged messages only', async () => {
    const s = schema('retention');
    const t = await PostgresTransport.connect({
      connectionString: SHARED_URL,
      schema: s,
      retention: { maxAgeMs: 1 },
    });
    const held: Delivery[] = [];
    const sub = await t.subscribe('r', { group: 'g', prefetch: 5, ordering: 'none' }, (d) => {
      held.push(d);
      if (held.length > 2) void d.ack();
    });
    await t.publish(
      'r',
      Array.from({ length: 5 }, (_, i) => ({ id: `m${i}`, headers: {}, body: new Uint8Array([i]) })),
    );
    await waitUntil(() => held.length === 5, 'five deliveries');
    await sleep(100);
    await t.applyRetention();
    const left = await pool.query(`SELECT id FROM "${s}".messages ORDER BY seq`);
    // m0 and m1 are unsettled: nothing from m0 on may go (the log is cut at the oldest unsettled).
    assert.deepEqual(
      left.rows.map((r) => r.id),
      ['m0', 'm1', 'm2', 'm3', 'm4'],
    );
    await held[0]!.ack();
    await held[1]!.ack();
    await sleep(100);
    assert.equal(await t.applyRetention(), 5);
    await sub.close();
    await t.close();
  });

  test('a settle that fails gives the lease up: the message comes back after the visibility timeout', async () => {
    const s = schema('failedsettle');
    const errors: Error[] = [];
    const t = await PostgresTransport.connect({
      connectionString: SHARED_URL,
      schema: s,
      visibilityTimeoutMs: 300,
      onError: (err) => errors.push(err),
    });
    const seen: { id: string; attempt: number; at: number }[] = [];
    let failedAt = 0;
    let failure: unknown;
    const sub = await t.subscribe('fs', { group: 'g', prefetch: 4 }, async (d) => {
      seen.push({ id: d.message.id, attempt: d.attempt, at: Date.now() });
      if (d.attempt > 1) return d.ack();
      // The settle function is gone for a moment (no connection has prepared it yet): the ack fails.
      await pool.query(`ALTER FUNCTION "${s}".settle RENAME TO settle_away`);
      try {
        await d.ack();
      } catch (err) {
        failure = err;
      } finally {
        failedAt = Date.now();
        await pool.query(`ALTER FUNCTION "${s}".settle_away RENAME TO settle`);
      }
      if (d.message.id === 'again') await d.ack(); // made again before the lease expires: it holds
    });
    const pending = async (): Promise<number> =>
      (await pool.query(`SELECT 1 FROM "${s}".pending`)).rowCount ?? 0;
    await t.publish('fs', [{ id: 'x', key: 'k', headers: {}, body: new Uint8Array([1]) }]);
    await waitUntil(() => seen.length === 2, 'the redelivery after the failed ack', 5000);
    assert.match(String(failure), /settle/, 'the ack rejected, saying why');
    // Renewals every 100 ms would have kept the lease forever; given up, it expires within 300 ms.
    const after = seen[1]!.at - failedAt;
    assert.equal(seen[1]!.attempt, 2);
    assert.ok(after <= 300 + 1000, `redelivered ${after} ms after the failed ack`);
    await waitUntil(async () => (await pending()) === 0, 'the redelivery acked');

    failure = undefined;
    await t.publish('fs', [{ id: 'again', key: 'k', headers: {}, body: new Uint8Array([2]) }]);
    await waitUntil(async () => failure !== undefined && (await pending()) === 0, 'the second ack landed');
    await sleep(600);
    assert.deepEqual(
      seen.filter((x) => x.id === 'again').map((x) => x.attempt),
      [1],
      'settled by the second ack: never redelivered',
    );
    await sub.close();
    await t.close();
    assert.deepEqual(errors, [], 'nothing else went wrong');
  });

  test('a fetch reads the messages it leases, not the whole log, before the tables were ever analyzed', async () => {
    // ADR 0948: without statistics the planner read a topic's whole log on every fetch, twice: to
    // join leased heads to their messages, and (bitmap scan + sort) to move the cursor.
    const { s, topic, group } = await seededLog('plan', 'messages', 300, 'start');
    const { rows: stats } = await pool.query(
      `SELECT reltuples FROM pg_class WHERE oid = '"${s}".messages'::regclass`,
    );
    assert.equal(stats[0].reltuples, -1, 'the log has never been analyzed');
    /** Leases up to 100; how many it leased and how many log rows it read. */
    const fetchReads = async (token: string): Promise<{ leased: number; read: number }> => {
      const now = Date.now();
      const { rows, read } = await rowsRead(
        `"${s}".messages`,
        `SELECT seq FROM "${s}".fetch($1, $2, 100, false, $3, $4, $5)`,
        [group, topic, token, now, now + 30_000],
      );
      return { leased: rows.filter((x) => x.seq !== null).length, read };
    };
    const fromLog = await fetchReads('a');
    assert.equal(fromLog.leased, 100);
    assert.ok(fromLog.read <= 600, `moving the cursor read ${fromLog.read} of 20,000 log rows`);
    // Given back, they are leased again as heads: the path that joins pending rows to messages.
    await pool.query(`UPDATE "${s}".pending SET lease_token = NULL, lease_until = 0`);
    const heads = await fetchReads('b');
    assert.equal(heads.leased, 100);
    assert.ok(heads.read <= 600, `leasing 100 heads read ${heads.read} of 20,000 log rows`);
  });

  test('with a backlog blocked behind 50 keys, an ack and an idle fetch read a few pending rows, not all', async () => {
    // ADR 0948: the ack's unblock step and an idle member's next-due-time query each read every
    // pending row of the schema or group.
    const { s, topic, group } = await seededLog('blocked', 'pending', 10, 'end');
    // What the cursor advance leaves behind: each key's first message leased, the rest blocked.
    // Analyzed (as autovacuum would) while 2,000 rows were pending, then grown: with such stale
    // statistics the unblock step was planned as a scan of every blocked row.
    const addPending = (from: number, to: number): Promise<unknown> =>
      pool.query(
        `INSERT INTO "${s}".pending (group_id, seq, key, blocked, attempts, lease_token, lease_until)
         SELECT $1, seq, key, rank > 1, CASE WHEN rank = 1 THEN 1 ELSE 0 END,
                CASE WHEN rank = 1 THEN 'tok' END, CASE WHEN rank = 1 THEN $2::bigint ELSE 0 END
           FROM (SELECT seq, key, row_number() OVER (PARTITION BY key ORDER BY seq) AS rank,
                        row_number() OVER (ORDER BY seq) AS n
                   FROM "${s}".messages) m
          WHERE n > $3 AND n <= $4`,
        [group, Date.now() + 600_000, from, to],
      );
    await addPending(0, 2000);
    await pool.query(`ANALYZE "${s}".pending`);
    await addPending(2000, 20_000);
    // Reads grow with the keys (50 here: 54, 148 and 198 measured), a scan with the backlog (20,000).
    const pending = `"${s}".pending`;
    const head = (await pool.query(`SELECT seq FROM "${s}".pending WHERE key = 'k7' AND NOT blocked`)).rows[0]
      .seq as string;
    const ack = await rowsRead(
      pending,
      `SELECT "${s}".settle(ARRAY[$1::int], ARRAY[$2::bigint], ARRAY['tok'], ARRAY['a'], ARRAY[0::bigint], 'c', ARRAY['log'])`,
      [group, head],
    );
    assert.ok(ack.read <= 1000, `the ack read ${ack.read} of 20,000 pending rows`);
    const next = await pool.query(
      `SELECT count(*) AS n FROM "${s}".pending WHERE key = 'k7' AND NOT blocked AND seq > $1`,
      [head],
    );
    assert.equal(Number(next.rows[0].n), 1, "the key's next message is its head now");
    const now = Date.now();
    const fetchSql = `SELECT * FROM "${s}".fetch($1, $2, 100, true, $3, $4, $5)`;
    const fetched = await rowsRead(pending, fetchSql, [group, topic, 'x', now, now + 30_000]);
    assert.equal(fetched.rows.filter((r) => r.seq !== null).length, 1, 'the new head');
    assert.ok(fetched.read <= 1000, `a fetch read ${fetched.read} pending rows`);
    const idle = await rowsRead(pending, fetchSql, [group, topic, 'y', now, now + 30_000]);
    assert.ok(idle.read <= 1000, `an idle fetch read ${idle.read} pending rows`);
  });

  test('a schema of version 4 is upgraded in place and its messages are still delivered', async () => {
    const s = schema('upgrade');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`CREATE SCHEMA "${s}"`);
      await client.query(`CREATE TABLE "${s}".schema_version (version int NOT NULL)`);
      await client.query(`INSERT INTO "${s}".schema_version VALUES (4)`);
      for (const m of MIGRATIONS.slice(0, 4)) await client.query(m(`"${s}"`));
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await pool.query(
      `SELECT "${s}".publish('up', ARRAY['a', 'b'], ARRAY['k', 'k'], ARRAY['{}', '{}'], ARRAY['\\x01'::bytea, '\\x02'::bytea], 0, 'x')`,
    );
    const t = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
    const version = await pool.query(`SELECT version FROM "${s}".schema_version`);
    assert.deepEqual(version.rows, [{ version: SCHEMA_VERSION }]);
    const got: string[] = [];
    const sub = await t.subscribe('up', { group: 'g', prefetch: 4 }, async (d) => {
      got.push(d.message.id);
      await d.ack();
    });
    await waitUntil(() => got.length === 2, 'both messages');
    assert.deepEqual(got, ['a', 'b']);
    await sub.close();
    await t.close();
  });

  test('lease renewals never deadlock with settlements of the same leases', async () => {
    // Renewals every 33 ms of up to 256 leases while handlers ack them in shuffled batches: run side
    // by side, the two locked the same rows in different orders and PostgreSQL failed one of them.
    const s = schema('renewsettle');
    const errors: Error[] = [];
    const t = await PostgresTransport.connect({
      connectionString: SHARED_URL,
      schema: s,
      visibilityTimeoutMs: 100,
      onError: (err) => errors.push(err),
    });
    const N = 20_000;
    let acked = 0;
    const held: Delivery[] = [];
    const sub = await t.subscribe('rs', { group: 'g', prefetch: 512, ordering: 'none' }, (d) => {
      held.push(d);
    });
    // Acks in batches, newest first: the settlement locks rows in the reverse of the renewal's order.
    const acker = setInterval(() => {
      const batch = held.splice(0, held.length).reverse();
      for (const d of batch)
        void d.ack().then(
          () => acked++,
          (err: Error) => errors.push(err),
        );
    }, 3);
    for (let i = 0; i < N; i += 500)
      await t.publish(
        'rs',
        Array.from({ length: 500 }, (_, j) => ({ id: `m${i + j}`, headers: {}, body: new Uint8Array([1]) })),
      );
    await waitUntil(() => acked >= N || errors.length > 0, `${N} acks`, 60_000);
    clearInterval(acker);
    await sub.close();
    await t.close();
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      'no renewal or ack failed',
    );
  });
});
