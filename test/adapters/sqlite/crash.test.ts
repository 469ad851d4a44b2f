import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createHerald } from '../../../src/index.js';
import { sqlite } from '../../../src/adapters/sqlite/index.js';
import { sleep, tempDir, until } from './helpers.js';
import { exited, startReady } from '../../support/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'crash-consumer.ts');
const KILLS = 5;
const CONCURRENCY = 8;

const tmp = tempDir('herald-sqlite-crash-');
after(() => tmp.cleanup());

test('a consumer SIGKILLed mid-handler again and again loses nothing; side effects land exactly once', async (t) => {
  const broker = tmp.file('broker.db');
  const appDb = tmp.file('app.db');
  const app = new Database(appDb);
  app.pragma('journal_mode = WAL');
  app.exec(`
    CREATE TABLE starts (event_id TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL);
    CREATE TABLE runs (event_id TEXT NOT NULL, pid INTEGER NOT NULL);
    CREATE TABLE processed (event_id TEXT PRIMARY KEY);
    CREATE TABLE effects (event_id TEXT NOT NULL, pid INTEGER NOT NULL);
  `);

  const producer = await createHerald({
    service: 'crash-producer',
    transport: sqlite({ path: broker }),
    routing: { 'demo.*': 'demo.events' },
  });
  const busy = app.prepare(
    'SELECT count(*) AS n FROM starts WHERE pid = ? AND event_id NOT IN (SELECT event_id FROM runs WHERE pid = ?)',
  );
  const published: string[] = [];
  let producing = true;
  const production = (async () => {
    for (let batch = 0; producing; batch++) {
      const events = await producer.publishBatch(
        Array.from({ length: 10 }, (_, i) => ({
          event: 'demo.thing.happened',
          payload: { batch, i },
          options: { aggregateId: `agg-${(batch * 10 + i) % 13}` },
        })),
      );
      published.push(...events.map((e) => e.id));
      await sleep(20);
    }
  })();

  let child: ChildProcess | undefined;
  try {
    for (let k = 0; k < KILLS; k++) {
      child = await startReady(fixture, [broker, appDb]);
      await sleep(300 + Math.random() * 700);
      // Kill while a handler of this child is running (started, not yet recorded), so the kill
      // interrupts work rather than landing between events, which a caught-up consumer mostly is.
      await until(
        () => (busy.get(child!.pid, child!.pid) as { n: number }).n > 0,
        5_000,
        'a handler running',
      );
      child.kill('SIGKILL');
      await exited(child);
    }
    const t0 = Date.now();
    child = await startReady(fixture, [broker, appDb]);
    t.diagnostic(`last consumer ready after ${Date.now() - t0} ms`);
    await sleep(300);
    producing = false;
    await production;
    const count = app.prepare('SELECT count(DISTINCT event_id) AS n FROM effects');
    await until(() => (count.get() as { n: number }).n >= published.length, 20_000, 'every event handled');
    t.diagnostic(`drained ${Date.now() - t0} ms after the last start`);
    child.kill('SIGTERM');
    await exited(child);
  } finally {
    producing = false;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await production.catch(() => undefined);
    await producer.stop();
  }

  const ids = (sql: string): string[] =>
    (app.prepare(sql).all() as { event_id: string }[]).map((r) => r.event_id);
  const runs = new Set(ids('SELECT DISTINCT event_id FROM runs'));
  const effects = ids('SELECT event_id FROM effects');
  const missing = published.filter((id) => !runs.has(id));
  assert.deepEqual(missing, [], 'every published event was handled at least once');
  assert.equal(effects.length, published.length, 'one side effect per event');
  assert.equal(new Set(effects).size, published.length, 'no event has two side effects');
  assert.deepEqual(new Set(effects), new Set(published));

  // The kills must actually have interrupted work that another member then finished.
  const redone = (
    app
      .prepare(
        'SELECT count(*) AS n FROM (SELECT event_id FROM starts GROUP BY event_id HAVING count(DISTINCT pid) > 1)',
      )
      .get() as {
      n: number;
    }
  ).n;
  const duplicateRuns = (
    app.prepare('SELECT count(*) - count(DISTINCT event_id) AS n FROM runs').get() as { n: number }
  ).n;
  t.diagnostic(
    `published ${published.length}, kills ${KILLS}, events started in two processes ${redone}, ` +
      `completed handler runs beyond one per event ${duplicateRuns}`,
  );
  assert.ok(redone > 0, 'some kill landed mid-handler');
  // Library idempotency keeps repeated runs to the crash window between a handler's commit and its
  // completion record: at most one per in-flight message per kill.
  assert.ok(duplicateRuns <= KILLS * CONCURRENCY, `${duplicateRuns} repeated runs`);
  app.close();
});
