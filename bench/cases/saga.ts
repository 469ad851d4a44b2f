/**
 * Saga step throughput: sagas of three in-process steps (no-op actions, so the figure is the cost
 * of the saga machinery: two durable transitions per step, leases, claims) on the memory, SQLite and
 * Redis stores, against the raw driver doing the same persistence work in the same run.
 *
 * - backlog: SAGAS sagas are stored first, then one runner (concurrency 32) drains them.
 * - live: the runner is running and sagas are begun as fast as 32 stay in flight (steady state).
 * - raw: per step, two single-row JSON writes of the same size (the step's start and its completion),
 *   32 sagas interleaved: better-sqlite3 UPDATEs in IMMEDIATE transactions; Redis HSETs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { redisSagaStore } from '../../src/adapters/redis/index.js';
import { SqliteSagaStore } from '../../src/adapters/sqlite/index.js';
import { defineSaga, MemorySagaStore, SagaRunner, type SagaStore } from '../../src/saga/index.js';

const SAGAS = 1000;
const STEPS = 3;
const CONCURRENCY = 32;
const REDIS_URL = 'redis://127.0.0.1:6379';

const saga = defineSaga<{ n: number }>('bench')
  .step('reserve', { run: (ctx) => ctx.input.n, compensate: () => undefined })
  .step('charge', { run: (ctx) => ctx.input.n * 2, compensate: () => undefined })
  .step('ship', { run: () => 'ok' });

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function runnerOn(store: SagaStore): SagaRunner {
  return new SagaRunner({
    store,
    sagas: [saga],
    concurrency: CONCURRENCY,
    pollIntervalMs: 5,
    leaseMs: 30_000,
  });
}

/** Counts finished sagas through the observer hook. */
function finishedCounter(runner: SagaRunner): { count: () => number; next: () => Promise<void> } {
  let n = 0;
  let waiters: (() => void)[] = [];
  runner.observe({
    onSagaFinished: () => {
      n++;
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  });
  return { count: () => n, next: () => new Promise((r) => waiters.push(r)) };
}

async function backlog(store: SagaStore): Promise<number> {
  const runner = runnerOn(store);
  const done = finishedCounter(runner);
  for (let n = 0; n < SAGAS; n++) await runner.begin(saga, { n });
  const start = performance.now();
  runner.start();
  while (done.count() < SAGAS) await done.next();
  const ms = performance.now() - start;
  await runner.stop();
  return ((SAGAS * STEPS) / ms) * 1000;
}

async function live(store: SagaStore): Promise<number> {
  const runner = runnerOn(store);
  const done = finishedCounter(runner);
  runner.start();
  const start = performance.now();
  for (let n = 0; n < SAGAS; n++) {
    while (n - done.count() >= CONCURRENCY) await done.next();
    await runner.begin(saga, { n });
  }
  while (done.count() < SAGAS) await done.next();
  const ms = performance.now() - start;
  await runner.stop();
  return ((SAGAS * STEPS) / ms) * 1000;
}

const STATE = JSON.stringify({
  steps: ['reserve', 'charge', 'ship'].map((name) => ({ name, status: 'done', attempts: 1, result: 42 })),
  timeline: Array.from({ length: 6 }, (_, i) => ({ at: Date.now(), event: `e${i}` })),
});

function rawSqlite(file: string): number {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE s (id TEXT PRIMARY KEY, version INTEGER, state TEXT)');
  const insert = db.prepare('INSERT INTO s VALUES (?, 0, ?)');
  const update = db.prepare('UPDATE s SET version = version + 1, state = ? WHERE id = ?');
  const write = db.transaction((id: string) => update.run(STATE, id));
  for (let n = 0; n < SAGAS; n++) insert.run(`s${n}`, STATE);
  const start = performance.now();
  for (let base = 0; base < SAGAS; base += CONCURRENCY) {
    for (let step = 0; step < STEPS * 2; step++)
      for (let n = base; n < Math.min(SAGAS, base + CONCURRENCY); n++) write.immediate(`s${n}`);
  }
  const ms = performance.now() - start;
  db.close();
  return ((SAGAS * STEPS) / ms) * 1000;
}

async function rawRedis(prefix: string): Promise<number> {
  const client = new Redis(REDIS_URL);
  const start = performance.now();
  for (let base = 0; base < SAGAS; base += CONCURRENCY) {
    for (let step = 0; step < STEPS * 2; step++) {
      const writes: Promise<unknown>[] = [];
      for (let n = base; n < Math.min(SAGAS, base + CONCURRENCY); n++)
        writes.push(client.hset(`${prefix}:s${n}`, 'state', STATE, 'version', step));
      await Promise.all(writes);
    }
  }
  const ms = performance.now() - start;
  const keys = await client.keys(`${prefix}:*`);
  if (keys.length) await client.del(...keys);
  client.disconnect();
  return ((SAGAS * STEPS) / ms) * 1000;
}

async function dropRedis(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL);
  const keys = await client.keys(`{${prefix}:saga}*`);
  if (keys.length) await client.del(...keys);
  client.disconnect();
}

export async function run(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-saga-'));
  const rows: string[] = [];
  try {
    const mem = [await backlog(new MemorySagaStore()), await live(new MemorySagaStore())];
    rows.push(`| memory | ${fmt(mem[0]!)} | ${fmt(mem[1]!)} | — | — |`);

    const raw = rawSqlite(path.join(dir, 'raw.db'));
    const s1 = new SqliteSagaStore({ path: path.join(dir, 'a.db') });
    const s2 = new SqliteSagaStore({ path: path.join(dir, 'b.db') });
    const sq = [await backlog(s1), await live(s2)];
    await s1.close();
    await s2.close();
    rows.push(`| SQLite | ${fmt(sq[0]!)} | ${fmt(sq[1]!)} | ${fmt(raw)} | ${(sq[1]! / raw).toFixed(2)} |`);

    const prefix = `herald-bench-saga-${process.pid}`;
    const rawR = await rawRedis(`${prefix}-raw`);
    const r1 = redisSagaStore({ url: REDIS_URL, prefix: `${prefix}-a` });
    const r2 = redisSagaStore({ url: REDIS_URL, prefix: `${prefix}-b` });
    const rd = [await backlog(r1), await live(r2)];
    await r1.close();
    await r2.close();
    await dropRedis(`${prefix}-a`);
    await dropRedis(`${prefix}-b`);
    rows.push(`| Redis | ${fmt(rd[0]!)} | ${fmt(rd[1]!)} | ${fmt(rawR)} | ${(rd[1]! / rawR).toFixed(2)} |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return `Saga steps per second: ${SAGAS} sagas of ${STEPS} no-op in-process steps, one runner with concurrency ${CONCURRENCY}, README configuration (default store options). A step costs two durable transitions (started, completed), plus the saga's start and end. "raw" is the driver alone doing two single-row JSON writes per step for 32 interleaved sagas, in the same run: the floor of the persistence work, without leases, claims or fencing. Load average at the start of the run: ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores.

| store | backlog (steps/s) | live (steps/s) | raw driver (steps/s) | live / raw |
| --- | ---: | ---: | ---: | ---: |
${rows.join('\n')}
`;
}
