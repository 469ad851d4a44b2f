/**
 * Exactly-once side effects on SQLite: a consumer whose handler writes its effect through
 * `idempotency.completeIn` is SIGKILLed again and again at random points of a 3,000-event run, and
 * also kills itself right after writing an effect (before the done mark); every event's effect row
 * exists exactly once at the end.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createHerald } from '../../../src/index.js';
import { sqlite } from '../../../src/adapters/sqlite/index.js';
import { tempDir, until } from './helpers.js';
import { exited, startReady } from '../../support/child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, 'fixtures', 'exactly-once-consumer.ts');
const EVENTS = 3000;
const KILLS = 5;
/** Runs that die right after an effect's write: with the effect committed apart from the mark, each repeats one effect. */
const SELF_KILLS = 3;

const tmp = tempDir('herald-sqlite-once-');
after(() => tmp.cleanup());

test(`${EVENTS} events, consumer SIGKILLed ${KILLS + SELF_KILLS} times: every effect exactly once`, async (t) => {
  const file = tmp.file('once.db');
  const producer = await createHerald({
    service: 'exactly-once-producer',
    transport: sqlite({ path: file }),
    routing: { 'demo.*': 'demo.events' },
  });
  // The application's tables go into the Herald file once Herald has created it (it refuses to
  // adopt a file with foreign tables but no Herald schema).
  const app = new Database(file, { timeout: 10_000 });
  app.exec(`
    CREATE TABLE effects (event_id TEXT NOT NULL, pid INTEGER NOT NULL);
    CREATE TABLE starts (event_id TEXT NOT NULL, pid INTEGER NOT NULL);
  `);
  const published: string[] = [];
  for (let batch = 0; published.length < EVENTS; batch++) {
    const events = await producer.publishBatch(
      Array.from({ length: 500 }, (_, i) => ({
        event: 'demo.thing.happened',
        payload: { batch, i },
        options: { aggregateId: `agg-${i % 17}` },
      })),
    );
    published.push(...events.map((e) => e.id));
  }

  const done = app.prepare('SELECT count(DISTINCT event_id) AS n FROM effects').pluck();
  const count = (): number => done.get() as number;
  // Kill points: random effect counts spread over the run (past what the self-kills use up), so each
  // kill lands mid-stream.
  const points = Array.from({ length: KILLS }, () => Math.floor(EVENTS * (0.15 + Math.random() * 0.75))).sort(
    (a, b) => a - b,
  );
  const at: number[] = [];
  let child: ChildProcess | undefined;
  try {
    for (let k = 0; k < SELF_KILLS; k++) {
      child = await startReady(fixture, [file, String(20 + Math.floor(Math.random() * 100))]);
      await exited(child);
      assert.equal(child.signalCode, 'SIGKILL', 'the consumer killed itself after an effect');
    }
    for (const point of points) {
      child = await startReady(fixture, [file]);
      await until(() => count() >= point, 60_000, `${point} effects`);
      child.kill('SIGKILL');
      await exited(child);
      at.push(count());
    }
    child = await startReady(fixture, [file]);
    await until(() => count() >= EVENTS, 120_000, `all ${EVENTS} effects`);
    child.kill('SIGTERM');
    await exited(child);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await producer.stop();
  }

  const perEvent = app.prepare('SELECT event_id, count(*) AS n FROM effects GROUP BY event_id').all() as {
    event_id: string;
    n: number;
  }[];
  const repeated = perEvent.filter((r) => r.n !== 1);
  const redone = app
    .prepare(
      'SELECT count(*) FROM (SELECT event_id FROM starts GROUP BY event_id HAVING count(DISTINCT pid) > 1)',
    )
    .pluck()
    .get() as number;
  app.close();
  t.diagnostic(
    `killed ${SELF_KILLS} times right after an effect, then at ${at.join(', ')} effects; events started in two processes ${redone}; repeated effects ${repeated.length}`,
  );
  assert.deepEqual(repeated, [], 'no event has more than one effect row');
  assert.deepEqual(
    new Set(perEvent.map((r) => r.event_id)),
    new Set(published),
    'every event has its effect',
  );
  assert.ok(redone > 0, 'some kill landed mid-handler, so redeliveries were put to the test');
});
