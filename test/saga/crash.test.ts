/**
 * Crash tests: 1,000 sagas advanced by a worker process that is SIGKILLed again and again (on
 * SQLite and on Redis). At the end every saga is completed or fully compensated, and every step's
 * effect (recorded in the store transaction of the step's completion) was applied exactly once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { redisSagaStore } from '../../src/adapters/redis/index.js';
import { SqliteSagaStore } from '../../src/adapters/sqlite/index.js';
import { SagaRunner, type SagaStore } from '../../src/saga/index.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';
import { isReachable, needs } from '../support/services.js';
import { crashSaga } from './fixtures/crash-saga.js';
import { sleep } from './helpers.js';

const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-worker.ts');
const SAGAS = 1000;
const KILLS = 5;
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function startWorker(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.once('exit', (code, signal) => reject(new Error(`worker exited before ready: ${code ?? signal}`)));
  });
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** Seeds the sagas, kills workers KILLS times, lets a last worker finish, then checks every saga. */
async function crashRun(
  t: TestContext,
  store: SagaStore<never>,
  args: string[],
  effectsOf: () => Promise<Map<string, number>>,
  startedInSeveralProcesses: () => Promise<number>,
  finalCount: () => Promise<number>,
): Promise<void> {
  // A runner that is never started only persists: the workers do all the work.
  const seeder = new SagaRunner({
    store,
    sagas: [crashSaga({ effect: () => undefined, started: () => undefined })],
  });
  const ids: string[] = [];
  for (let n = 0; n < SAGAS; n++) ids.push(await seeder.begin('crash', { n }, { id: `crash-${n}` }));
  const final = finalCount;
  const t0 = Date.now();
  for (let k = 0; k < KILLS; k++) {
    const child = await startWorker(args);
    await sleep(400 + Math.random() * 500);
    await kill(child, 'SIGKILL');
    t.diagnostic(`kill ${k + 1}: ${await final()} sagas final`);
  }
  const last = await startWorker(args);
  // Polled slowly: the check must not compete for the CPU with the worker it waits for.
  const deadline = Date.now() + 120_000;
  while ((await final()) < SAGAS) {
    if (Date.now() > deadline) throw new Error(`only ${await final()} of ${SAGAS} sagas final after 120 s`);
    await sleep(250);
  }
  await kill(last, 'SIGTERM');
  t.diagnostic(`all ${SAGAS} final ${Date.now() - t0} ms after the first start`);

  const effects = await effectsOf();
  const problems: string[] = [];
  for (let n = 0; n < SAGAS; n++) {
    const record = (await store.get(`crash-${n}`))!;
    const fails = n % 4 === 0;
    const want = fails
      ? { status: 'compensated', 'a:run': 1, 'b:run': 1, 'c:run': 0, 'a:undo': 1, 'b:undo': 1, 'c:undo': 0 }
      : { status: 'completed', 'a:run': 1, 'b:run': 1, 'c:run': 1, 'a:undo': 0, 'b:undo': 0, 'c:undo': 0 };
    const got: Record<string, unknown> = { status: record.status };
    for (const key of Object.keys(want).filter((k) => k !== 'status'))
      got[key] = effects.get(`crash-${n}:${key}`) ?? 0;
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`crash-${n}: ${JSON.stringify(got)}`);
  }
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} sagas wrong`);
  const interrupted = await startedInSeveralProcesses();
  t.diagnostic(`steps started in more than one process (a kill landed mid-step): ${interrupted}`);
  assert.ok(interrupted > 0, 'some kill landed in the middle of a step');
}

test('SQLite: 1,000 sagas through repeated SIGKILLs end completed or compensated, each effect once', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-saga-crash-'));
  const file = path.join(dir, 'sagas.db');
  const store = new SqliteSagaStore({ path: file });
  const app = new Database(file);
  app.exec(`
    CREATE TABLE starts (saga TEXT NOT NULL, step TEXT NOT NULL, pid INTEGER NOT NULL);
    CREATE TABLE effects (saga TEXT NOT NULL, step TEXT NOT NULL, kind TEXT NOT NULL, pid INTEGER NOT NULL);
  `);
  try {
    await crashRun(
      t,
      store as unknown as SagaStore<never>,
      ['sqlite', file],
      async () => {
        const rows = app
          .prepare('SELECT saga, step, kind, count(*) AS n FROM effects GROUP BY saga, step, kind')
          .all() as {
          saga: string;
          step: string;
          kind: string;
          n: number;
        }[];
        return new Map(rows.map((r) => [`${r.saga}:${r.step}:${r.kind}`, r.n]));
      },
      async () =>
        (
          app
            .prepare(
              'SELECT count(*) AS n FROM (SELECT saga, step FROM starts GROUP BY saga, step HAVING count(DISTINCT pid) > 1)',
            )
            .get() as { n: number }
        ).n,
      async () =>
        (
          app
            .prepare("SELECT count(*) AS n FROM herald_sagas WHERE status IN ('completed', 'compensated')")
            .get() as { n: number }
        ).n,
    );
  } finally {
    app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// A generous reachability timeout: a loaded machine answers slowly, and a skip would hide the test.
describe('Redis', (await isReachable('redis', 5000)) ? {} : await needs('redis'), () => {
  test('1,000 sagas through repeated SIGKILLs end completed or compensated, each effect once', async (t) => {
    const prefix = uniquePrefix('saga-crash');
    const store = redisSagaStore({ url: SHARED_URL, prefix });
    const raw = new Redis(SHARED_URL);
    const base = `{${prefix}:saga}`;
    try {
      await crashRun(
        t,
        store as unknown as SagaStore<never>,
        ['redis', SHARED_URL, prefix],
        async () => {
          const all = await raw.hgetall(`${base}:effects`);
          return new Map(Object.entries(all).map(([k, v]) => [k, Number(v)]));
        },
        async () => {
          const starts = Object.keys(await raw.hgetall(`${base}:starts`));
          const pids = new Map<string, Set<string>>();
          for (const k of starts) {
            const i = k.lastIndexOf(':');
            const step = k.slice(0, i);
            if (!pids.has(step)) pids.set(step, new Set());
            pids.get(step)!.add(k.slice(i + 1));
          }
          return [...pids.values()].filter((s) => s.size > 1).length;
        },
        async () => {
          const statuses = await raw.eval(
            "local n = 0 for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do local s = redis.call('HGET', ARGV[1] .. id, 'status') if s == 'completed' or s == 'compensated' then n = n + 1 end end return n",
            1,
            `${base}:all`,
            `${base}:s:`,
          );
          return Number(statuses);
        },
      );
    } finally {
      raw.disconnect();
      await store.close();
      await dropPrefix(SHARED_URL, prefix);
    }
  });
});
