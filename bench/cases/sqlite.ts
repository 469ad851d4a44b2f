/**
 * The SQLite transport against raw better-sqlite3 doing the same work on the same machine in the same
 * run. Reports rates and their ratio to the raw loop, end-to-end rates with 1 and 4 consumer
 * processes, and latency at a fixed moderate rate.
 *
 * Raw baseline: a prepared INSERT of the same 305-byte rows (in transactions of 500, and one per
 * statement), and a consume loop that SELECTs 500 rows and DELETEs them in one transaction.
 *
 * Consumer processes are this file run as `--sqlite-bench-worker` (node --import tsx).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createHerald } from '../../src/index.js';
import { SqliteTransport } from '../../src/adapters/sqlite/index.js';
import type { Message } from '../../src/transport/transport.js';

const WORKER_FLAG = '--sqlite-bench-worker';
const BODY = new Uint8Array(305).fill(120);
const BATCH = 500;
const here = fileURLToPath(import.meta.url);

function messages(n: number, prefix: string, headers: Record<string, string> = {}): Message[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}-${i}`,
    key: `k${i % 64}`,
    headers,
    body: BODY,
  }));
}

function rate(n: number, ms: number): number {
  return Math.round((n / ms) * 1000);
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- raw better-sqlite3 -----------------------------------------------------------------------

function rawSchema(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    'CREATE TABLE q (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, key TEXT, headers TEXT, body BLOB, at INTEGER)',
  );
}

function rawInsert(file: string, n: number, batch: number): number {
  const db = new Database(file);
  rawSchema(db);
  const insert = db.prepare('INSERT INTO q (id, key, headers, body, at) VALUES (?, ?, ?, ?, ?)');
  const body = Buffer.from(BODY);
  const many = db.transaction((from: number, count: number) => {
    for (let i = from; i < from + count; i++) insert.run(`m-${i}`, `k${i % 64}`, '{}', body, Date.now());
  });
  const start = performance.now();
  for (let i = 0; i < n; i += batch) {
    if (batch === 1) insert.run(`m-${i}`, `k${i % 64}`, '{}', body, Date.now());
    else many(i, Math.min(batch, n - i));
  }
  const ms = performance.now() - start;
  db.close();
  return rate(n, ms);
}

function rawConsume(file: string, n: number): number {
  const db = new Database(file);
  const select = db.prepare('SELECT seq, id, key, headers, body FROM q ORDER BY seq LIMIT ?');
  const del = db.prepare('DELETE FROM q WHERE seq = ?');
  const take = db.transaction(() => {
    const rows = select.all(BATCH) as { seq: number }[];
    for (const r of rows) del.run(r.seq);
    return rows.length;
  });
  const start = performance.now();
  let got = 0;
  while (got < n) {
    const k = take();
    if (k === 0) break;
    got += k;
  }
  const ms = performance.now() - start;
  db.close();
  return rate(got, ms);
}

// ---- transport ----------------------------------------------------------------------------------

async function transportPublish(file: string, n: number, batch: number): Promise<number> {
  const t = new SqliteTransport({ path: file });
  const all = messages(n, `p${batch}`);
  const start = performance.now();
  for (let i = 0; i < n; i += batch) await t.publish('bench', all.slice(i, i + batch));
  const ms = performance.now() - start;
  await t.close();
  return rate(n, ms);
}

function startWorker(
  mode: 'ack' | 'latency',
  file: string,
  topic: string,
  group: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', here, WORKER_FLAG, mode, file, topic, group], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes('ready\n')) {
        child.stdout!.off('data', onData);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`bench worker exited early (${code})`)));
  });
}

/** Stops a worker with SIGTERM and returns what it printed after `ready`. */
function stopWorker(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', () => resolve(out));
    child.kill('SIGTERM');
  });
}

/** Publish → handled → acked with `consumers` processes: time from the first publish to the last ack. */
async function endToEnd(file: string, n: number, consumers: number): Promise<number> {
  const topic = `e2e-${consumers}`;
  const group = 'bench';
  const t = new SqliteTransport({ path: file });
  await t.subscribe(topic, { group, prefetch: 1 }, () => undefined).then((s) => s.close()); // create the group
  const workers = await Promise.all(
    Array.from({ length: consumers }, () => startWorker('ack', file, topic, group)),
  );
  const all = messages(n, topic);
  const start = performance.now();
  for (let i = 0; i < n; i += BATCH) await t.publish(topic, all.slice(i, i + BATCH));
  for (;;) {
    const s = await t.stats(topic, group);
    if (s.lag + s.inFlight + s.delayed === 0) break;
    await sleep(5);
  }
  const ms = performance.now() - start;
  await Promise.all(workers.map(stopWorker));
  await t.close();
  return rate(n, ms);
}

/** Fixed rate of `perSecond`, one consumer process: publish-to-handler latency percentiles. */
async function latency(
  file: string,
  perSecond: number,
  seconds: number,
  inProcess: boolean,
): Promise<[number, number, number]> {
  const topic = `lat-${inProcess ? 'local' : 'remote'}`;
  const group = 'bench';
  const t = new SqliteTransport({ path: file });
  const samples: number[] = [];
  let worker: ChildProcess | undefined;
  if (inProcess) {
    await t.subscribe(topic, { group, prefetch: 64 }, async (d) => {
      samples.push(Date.now() - Number(d.message.headers.sentAt));
      await d.ack();
    });
  } else {
    worker = await startWorker('latency', file, topic, group);
  }
  const tickMs = 2;
  const perTick = Math.max(1, Math.round((perSecond * tickMs) / 1000));
  const end = Date.now() + seconds * 1000;
  let i = 0;
  while (Date.now() < end) {
    await t.publish(
      topic,
      Array.from({ length: perTick }, () => ({
        id: `l-${i++}`,
        headers: { sentAt: String(Date.now()) },
        body: BODY,
      })),
    );
    await sleep(tickMs);
  }
  await sleep(300);
  if (worker) samples.push(...(JSON.parse(await stopWorker(worker)) as number[]));
  await t.close();
  samples.sort((a, b) => a - b);
  const pct = (p: number): number =>
    samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? NaN;
  return [pct(50), pct(99), samples.length];
}

/** The full pipeline in one process: createHerald publishBatch → subscribe handler → ack. */
async function pipeline(file: string, n: number): Promise<number> {
  const herald = await createHerald({
    service: 'bench',
    transport: new SqliteTransport({ path: file }),
    routing: { 'bench.*': 'pipeline' },
  });
  let handled = 0;
  herald.subscribe({ group: 'bench', events: ['bench.*'], concurrency: 64, handler: () => void handled++ });
  await herald.start();
  const start = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    await herald.publishBatch(
      Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => ({
        event: 'bench.thing.happened',
        payload: { n: i + j, text: 'x'.repeat(200) },
        options: { aggregateId: `a${(i + j) % 64}` },
      })),
    );
  }
  while (handled < n) await sleep(5);
  const ms = performance.now() - start;
  await herald.stop();
  return rate(n, ms);
}

export async function run(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-sqlite-'));
  const f = (name: string): string => path.join(dir, name);
  try {
    const N = 50_000;
    const rawBatched = rawInsert(f('raw-batched.db'), N, BATCH);
    const rawSingle = rawInsert(f('raw-single.db'), 5_000, 1);
    const rawTake = rawConsume(f('raw-batched.db'), N);
    const pubBatched = await transportPublish(f('pub-batched.db'), N, BATCH);
    const pubSingle = await transportPublish(f('pub-single.db'), 5_000, 1);
    const e2e1 = await endToEnd(f('e2e-1.db'), 30_000, 1);
    const e2e4 = await endToEnd(f('e2e-4.db'), 30_000, 4);
    const [p50r, p99r, nr] = await latency(f('lat-remote.db'), 1000, 4, false);
    const [p50l, p99l, nl] = await latency(f('lat-local.db'), 1000, 4, true);
    const pipe = await pipeline(f('pipeline.db'), 20_000);
    // End-to-end raw: insert then select+delete the same rows, one process.
    const rawE2e = Math.round(1 / (1 / rawBatched + 1 / rawTake));
    const ratio = (x: number, raw: number): string => `${(x / raw).toFixed(2)}×`;
    return [
      'SQLite transport (`herald/sqlite`) against raw better-sqlite3 on the same machine and run. 305-byte bodies,',
      '64 ordering keys, WAL, `synchronous=NORMAL` in both. Consumers are separate processes unless noted; prefetch 64, ack at once.',
      '',
      '| case | herald msg/s | raw better-sqlite3 msg/s | ratio |',
      '| --- | ---: | ---: | ---: |',
      `| publish, batches of ${BATCH} (one transaction per call) | ${fmt(pubBatched)} | ${fmt(rawBatched)} (INSERT ×${BATCH} per transaction) | ${ratio(pubBatched, rawBatched)} |`,
      `| publish, one message per call | ${fmt(pubSingle)} | ${fmt(rawSingle)} (one INSERT per transaction) | ${ratio(pubSingle, rawSingle)} |`,
      `| publish → handled → acked, 1 consumer process | ${fmt(e2e1)} | ${fmt(rawE2e)} (INSERT, then SELECT ${BATCH} + DELETE per transaction) | ${ratio(e2e1, rawE2e)} |`,
      `| publish → handled → acked, 4 consumer processes | ${fmt(e2e4)} | ${fmt(rawE2e)} | ${ratio(e2e4, rawE2e)} |`,
      `| pipeline in one process: createHerald publishBatch → subscribe (concurrency 64) → ack | ${fmt(pipe)} | ${fmt(rawE2e)} | ${ratio(pipe, rawE2e)} |`,
      '',
      `Latency from publish to handler at a fixed target of 1,000 msg/s (2 messages every 2 ms timer tick; achieved ${fmt(Math.round(nr / 4))} and ${fmt(Math.round(nl / 4))} msg/s) for 4 s:`,
      '',
      '| consumer | p50 ms | p99 ms | samples |',
      '| --- | ---: | ---: | ---: |',
      `| another process (polling, idle back-off up to pollIntervalMs=100) | ${p50r} | ${p99r} | ${fmt(nr)} |`,
      `| same process (woken by the publish) | ${p50l} | ${p99l} | ${fmt(nl)} |`,
      '',
      'Notes: per group the transport writes each message twice more than the raw loop (a pending row on',
      'lease, deleted on ack) and checks per-key hold-back, leases and the retry queue in the same transactions;',
      'acks finishing in one event-loop turn share one transaction. Ratios compare work done in the same run;',
      'absolute figures swing ±30%.',
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- worker process ----------------------------------------------------------------------------

async function worker(mode: string, file: string, topic: string, group: string): Promise<void> {
  const t = new SqliteTransport({ path: file });
  const latencies: number[] = [];
  await t.subscribe(topic, { group, prefetch: 64 }, async (d) => {
    if (mode === 'latency') latencies.push(Date.now() - Number(d.message.headers.sentAt));
    await d.ack();
  });
  process.on('SIGTERM', () => {
    void t.close().then(() => {
      if (mode === 'latency') process.stdout.write(JSON.stringify(latencies));
      process.exit(0);
    });
  });
  process.stdout.write('ready\n');
}

const flag = process.argv.indexOf(WORKER_FLAG);
if (flag >= 0) {
  const [mode, file, topic, group] = process.argv.slice(flag + 1);
  await worker(mode!, file!, topic!, group!);
}
