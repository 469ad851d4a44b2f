/**
 * The outbox under chaos: an application process runs transactions (half rolled back) that write
 * events into the outbox, two relay processes forward them, and the test SIGKILLs the application
 * and the relays at random points. Every committed event is delivered, no rolled-back one ever is,
 * and each aggregate's events arrive in order (first deliveries; repeats after a relay crash are
 * dropped by event id, as the idempotency middleware does).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresOutbox, PostgresTransport } from '../../src/adapters/postgres/index.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from '../adapters/postgres/harness.js';
import { sleep, waitUntil } from '../support/wait.js';
import { exited, startReady } from '../support/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// 10,000 in a full run (HERALD_OUTBOX_CHAOS_TX=10000); fewer by default to keep the suite short on 2 cores.
const TRANSACTIONS = Number(process.env['HERALD_OUTBOX_CHAOS_TX'] ?? 2000);
const RUNS = 4;
const schema = uniqueSchema('chaos');
const pool = new pg.Pool({ connectionString: SHARED_URL, max: 2 });
after(async () => {
  await pool.end();
  await dropSchemas(SHARED_URL, [schema]);
});

test(`outbox chaos: ${TRANSACTIONS} transactions, half rolled back, app and relays SIGKILLed`, async (t) => {
  const outbox = await PostgresOutbox.connect({ connectionString: SHARED_URL, schema });
  await outbox.close();
  await pool.query(
    `CREATE TABLE "${schema}".committed (id text PRIMARY KEY, agg text NOT NULL, n int NOT NULL)`,
  );
  const consumer = await PostgresTransport.connect({ connectionString: SHARED_URL, schema });
  const first: string[] = [];
  const seen = new Set<string>();
  let repeats = 0;
  await consumer.subscribe('chaos', { group: 'check', prefetch: 64 }, async (d) => {
    if (seen.has(d.message.id)) repeats++;
    else {
      seen.add(d.message.id);
      first.push(d.message.id);
    }
    await d.ack();
  });

  const relays: ChildProcess[] = [
    await startReady(path.join(here, 'fixtures', 'relay.ts'), [SHARED_URL, schema]),
    await startReady(path.join(here, 'fixtures', 'relay.ts'), [SHARED_URL, schema]),
  ];
  const perRun = TRANSACTIONS / RUNS;
  const t0 = Date.now();
  let ran = 0; // transactions finished (committed or rolled back) over all runs
  try {
    // Runs go on until TRANSACTIONS have run: each killed run's unrun remainder moves to the next,
    // and the last run, which is not killed, finishes what is left.
    for (let run = 0; ran < TRANSACTIONS; run++) {
      const remaining = TRANSACTIONS - ran;
      const app = await startReady(path.join(here, 'fixtures', 'app.ts'), [
        SHARED_URL,
        schema,
        String(run),
        String(remaining),
      ]);
      let ranHere = 0;
      app.stdout!.on('data', (chunk: Buffer) => {
        for (const m of chunk.toString().matchAll(/ran (\d+)/g)) ranHere = Math.max(ranHere, Number(m[1]));
      });
      let finished = false;
      void exited(app).then(() => (finished = true));
      const killed = run < RUNS - 1;
      // Kill the application mid-run (except the last run, which finishes) and one relay each run,
      // after a random share (20-80%) of a run's share of the transactions.
      const target = killed
        ? Math.floor(Math.min(perRun, remaining) * (0.2 + Math.random() * 0.6))
        : remaining;
      await waitUntil(
        () => finished || ranHere >= target,
        `run ${run} to run ${target} transactions`,
        300_000,
      );
      const r = run % 2;
      relays[r]!.kill('SIGKILL');
      if (killed) app.kill('SIGKILL');
      await exited(app);
      // A transaction in flight at the kill may have committed unreported: ran can only undercount.
      ran += ranHere;
      await exited(relays[r]!);
      relays[r] = await startReady(path.join(here, 'fixtures', 'relay.ts'), [SHARED_URL, schema]);
    }
    const committed = async (): Promise<Set<string>> =>
      new Set(
        (await pool.query<{ id: string }>(`SELECT id FROM "${schema}".committed`)).rows.map((r) => r.id),
      );
    const expected = await committed();
    await waitUntil(
      () => [...expected].every((id) => seen.has(id)),
      `all ${expected.size} committed events`,
      120_000,
    );
    await sleep(500);
    t.diagnostic(
      `ran ${ran} transactions, committed ${expected.size}, delivered ${seen.size}, repeats ${repeats}, ${Date.now() - t0} ms`,
    );
    assert.ok(ran >= TRANSACTIONS, `ran ${ran} of ${TRANSACTIONS} transactions`);
    assert.ok(expected.size > 0);
    const delivered = [...seen];
    assert.deepEqual(
      delivered.filter((id) => !expected.has(id)),
      [],
      'no rolled-back event delivered',
    );
    assert.equal(seen.size, expected.size);
    const order = new Map(
      (
        await pool.query<{ id: string; agg: string; n: number }>(
          `SELECT id, agg, n FROM "${schema}".committed`,
        )
      ).rows.map((r) => [r.id, r]),
    );
    const last = new Map<string, number>();
    let outOfOrder = 0;
    for (const id of first) {
      const { agg, n } = order.get(id)!;
      if ((last.get(agg) ?? 0) > n) outOfOrder++;
      last.set(agg, n);
    }
    assert.equal(outOfOrder, 0, 'per-aggregate order kept');
  } finally {
    for (const c of relays) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(relays.map(exited));
    await consumer.close();
  }
});
