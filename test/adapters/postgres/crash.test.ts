/**
 * Consumers SIGKILLed again and again while 20,000 events flow: nothing is lost, every side effect
 * lands exactly once (effect and idempotency mark commit together), and each aggregate's effects
 * are applied in publish order across two processes with concurrency 32 each.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresTransport } from '../../../src/adapters/postgres/index.js';
import { createHerald } from '../../../src/index.js';
import { sleep, waitUntil } from '../../support/wait.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from './harness.js';
import { exited, startReady } from '../../support/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'crash-consumer.ts');
const startConsumer = (): Promise<ChildProcess> => startReady(fixture, [SHARED_URL, schema]);
// 20,000 in a full run (HERALD_PG_CRASH_EVENTS=20000); fewer by default to keep the suite short on 2 cores.
const EVENTS = Number(process.env['HERALD_PG_CRASH_EVENTS'] ?? 4000);
const AGGREGATES = 200;
const KILLS = 4;
const schema = uniqueSchema('crash');
const pool = new pg.Pool({ connectionString: SHARED_URL, max: 2 });
after(async () => {
  await pool.end();
  await dropSchemas(SHARED_URL, [schema]);
});

test(`${EVENTS} events, consumers SIGKILLed repeatedly: 0 lost, effects exactly once, per-aggregate order`, async (t) => {
  const producer = await createHerald({
    service: 'crash-producer',
    transport: await PostgresTransport.connect({ connectionString: SHARED_URL, schema }),
    routing: { 'demo.*': 'demo.events' },
  });
  await pool.query(`CREATE TABLE "${schema}".starts (event_id text NOT NULL, pid int NOT NULL)`);
  await pool.query(
    `CREATE TABLE "${schema}".effects (seq bigserial PRIMARY KEY, event_id text NOT NULL, agg text NOT NULL, n int NOT NULL, pid int NOT NULL)`,
  );
  const published: string[] = [];
  const production = (async () => {
    for (let batch = 0; batch * 200 < EVENTS; batch++) {
      const events = await producer.publishBatch(
        Array.from({ length: 200 }, (_, i) => {
          const n = batch * 200 + i;
          const agg = `agg-${n % AGGREGATES}`;
          return { event: 'demo.thing.happened', payload: { agg, n }, options: { aggregateId: agg } };
        }),
      );
      published.push(...events.map((e) => e.id));
      await sleep(5);
    }
  })();

  const effects = async (): Promise<number> =>
    Number((await pool.query(`SELECT count(DISTINCT event_id) AS n FROM "${schema}".effects`)).rows[0].n);
  /** Where the events without an effect are (pending row, idempotency mark, dead letter), as JSON. */
  const whereMissing = async (): Promise<string> => {
    const { rows } = await pool.query(
      `SELECT m.seq, m.key, p.blocked, p.attempts, p.lease_token,
              p.lease_until - $1 AS lease_left_ms, p.visible_at - $1 AS visible_in_ms,
              i.state AS idempotency, d.reason AS dead_letter, d.error
         FROM "${schema}".messages m
         LEFT JOIN "${schema}".pending p ON p.seq = m.seq
         LEFT JOIN "${schema}".idempotency i ON i.key = 'crash:' || m.id
         LEFT JOIN "${schema}".dead_letters d ON d.id = 'crash:' || m.id
        WHERE NOT EXISTS (SELECT 1 FROM "${schema}".effects e WHERE e.event_id = m.id)
        ORDER BY m.seq LIMIT 20`,
      [Date.now()],
    );
    return JSON.stringify(rows);
  };
  const children: ChildProcess[] = [];
  const t0 = Date.now();
  try {
    children.push(await startConsumer(), await startConsumer());
    // Handlers started by a child whose effect has not committed: the moment a kill loses work.
    const midHandler = async (pid: number): Promise<boolean> =>
      (
        await pool.query(
          `SELECT 1 FROM "${schema}".starts s WHERE s.pid = $1
              AND NOT EXISTS (SELECT 1 FROM "${schema}".effects e WHERE e.event_id = s.event_id) LIMIT 1`,
          [pid],
        )
      ).rowCount === 1;
    for (let k = 0; k < KILLS; k++) {
      await sleep(800 + Math.random() * 1200);
      const i = k % 2;
      // Aim the kill at a handler in flight (a random moment often fell between handlers).
      await waitUntil(() => midHandler(children[i]!.pid!), 'a handler in flight', 5000).catch(
        () => undefined,
      );
      children[i]!.kill('SIGKILL');
      await exited(children[i]!);
      children[i] = await startConsumer();
    }
    await production;
    const progress = setInterval(
      () => void effects().then((n) => t.diagnostic(`${n} effects at ${Date.now() - t0} ms`)),
      10_000,
    );
    try {
      await waitUntil(async () => (await effects()) >= EVENTS, `all ${EVENTS} effects`, 120_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; where the rest are: ${await whereMissing()}`, {
        cause: err,
      });
    } finally {
      clearInterval(progress);
    }
    t.diagnostic(`done ${Date.now() - t0} ms after the first consumer started`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map(exited));
    await production.catch(() => undefined);
    await producer.stop();
  }

  assert.equal(published.length, EVENTS);
  const { rows } = await pool.query<{ event_id: string; agg: string; n: number }>(
    `SELECT event_id, agg, n FROM "${schema}".effects ORDER BY seq`,
  );
  assert.equal(rows.length, EVENTS, 'one side effect per event, none repeated');
  assert.deepEqual(new Set(rows.map((r) => r.event_id)), new Set(published), 'every published event');
  const last = new Map<string, number>();
  let outOfOrder = 0;
  for (const r of rows) {
    if ((last.get(r.agg) ?? -1) > r.n) outOfOrder++;
    last.set(r.agg, r.n);
  }
  assert.equal(outOfOrder, 0, 'each aggregate applied in publish order');
  const redone = Number(
    (
      await pool.query(
        `SELECT count(*) AS n FROM (SELECT event_id FROM "${schema}".starts GROUP BY event_id HAVING count(DISTINCT pid) > 1) x`,
      )
    ).rows[0].n,
  );
  t.diagnostic(`kills ${KILLS}, events started in two processes ${redone}`);
  assert.ok(redone > 0, 'some kill landed mid-handler');
});
