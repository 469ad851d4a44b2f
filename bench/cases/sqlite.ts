/**
 * The SQLite transport against raw better-sqlite3 doing the same work on the same machine in the same
 * run. Every end-to-end figure, raw ones included, is measured: consumers are separate processes
 * (this file run as `--sqlite-bench-worker`), the producer is this process, and the time runs from
 * the start signal until the table is drained.
 *
 * - backlog: N messages are in the file before the consumers are told to start; the time is the drain.
 * - steady: the consumers are running on an empty topic; this process publishes N in batches of 500
 *   as fast as it can; the time runs from the first publish to the last ack.
 *
 * Raw loop: the same rows (the Herald envelopes' id, key, headers and body) inserted in transactions
 * of 500; a consumer takes 500 rows per IMMEDIATE transaction (SELECT, then DELETE each), so several
 * processes may share the table. Herald consumers are the README's configuration: `sqlite({ path })`
 * with its stores in the same file, `createHerald`, one subscription with default options (concurrency 8)
 * and a handler that does nothing; a second configuration raises concurrency to 64.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createHerald } from '../../src/index.js';
import { SqliteTransport, sqlite, sqliteStores } from '../../src/adapters/sqlite/index.js';
import type { Message } from '../../src/transport/transport.js';

const WORKER_FLAG = '--sqlite-bench-worker';
const BATCH = 500;
const TOPIC = 'bench';
const GROUP = 'bench';
const here = fileURLToPath(import.meta.url);

const fmt = (n: number): string => n.toLocaleString('en-US');
const rate = (n: number, ms: number): number => Math.round((n / ms) * 1000);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Herald envelopes as the transport stores them (id, key, headers, body), made once by a real publish. */
async function envelopes(dir: string, n: number): Promise<Message[]> {
  const file = path.join(dir, 'envelopes.db');
  const herald = await createHerald({
    service: 'bench',
    transport: sqlite({ path: file }),
    routing: { 'bench.*': TOPIC },
  });
  for (let i = 0; i < n; i += BATCH) {
    await herald.publishBatch(
      Array.from({ length: Math.min(BATCH, n - i) }, (_, j) => ({
        event: 'bench.thing.happened',
        payload: { n: i + j, text: 'x'.repeat(200) },
        options: { aggregateId: `a${(i + j) % 64}` },
      })),
    );
  }
  await herald.stop();
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT id, key, headers, body FROM herald_messages ORDER BY seq').all() as {
    id: string;
    key: string;
    headers: string;
    body: Buffer;
  }[];
  db.close();
  return rows.map((r) => ({
    id: r.id,
    key: r.key,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: new Uint8Array(r.body),
  }));
}

// ---- raw better-sqlite3 -----------------------------------------------------------------------

function rawOpen(file: string): Database.Database {
  const db = new Database(file, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, key TEXT, headers TEXT, body BLOB, at INTEGER)',
  );
  return db;
}

interface Producer {
  publish(batch: readonly Message[]): Promise<void>;
  /** True when every published message has been consumed. */
  drained(): Promise<boolean>;
  close(): Promise<void>;
}

function rawProducer(file: string): Producer {
  const db = rawOpen(file);
  const insert = db.prepare('INSERT INTO q (id, key, headers, body, at) VALUES (?, ?, ?, ?, ?)');
  const empty = db.prepare('SELECT NOT EXISTS (SELECT 1 FROM q) AS empty');
  const many = db.transaction((batch: readonly Message[]) => {
    const now = Date.now();
    for (const m of batch) insert.run(m.id, m.key, JSON.stringify(m.headers), Buffer.from(m.body), now);
  });
  return {
    publish: async (batch) => many(batch),
    drained: async () => (empty.get() as { empty: number }).empty === 1,
    close: async () => void db.close(),
  };
}

function rawInsertRate(file: string, all: readonly Message[], batch: number): number {
  const p = rawProducer(file);
  const start = performance.now();
  for (let i = 0; i < all.length; i += batch) void p.publish(all.slice(i, i + batch));
  const ms = performance.now() - start;
  void p.close();
  return rate(all.length, ms);
}

async function heraldProducer(file: string): Promise<Producer> {
  const t = new SqliteTransport({ path: file });
  // Create the group before anything is published, so a backlog is the group's backlog.
  await t.subscribe(TOPIC, { group: GROUP, prefetch: 1 }, () => undefined).then((s) => s.close());
  // Drained: the group's cursor is at the end of the log and nothing is pending. Read with plain SQL
  // in O(1), as the raw loop's check is: stats() counts the unread log, which would load the machine.
  const db = new Database(file, { readonly: true });
  const done = db.prepare(
    `SELECT NOT EXISTS (SELECT 1 FROM herald_pending WHERE group_id = g.id)
        AND g.cursor >= coalesce((SELECT max(seq) FROM herald_messages WHERE topic_id = g.topic_id), 0) AS done
       FROM herald_groups g JOIN herald_topics t ON t.id = g.topic_id WHERE t.name = ? AND g.name = ?`,
  );
  return {
    publish: (batch) => t.publish(TOPIC, batch),
    drained: async () => (done.get(TOPIC, GROUP) as { done: number }).done === 1,
    close: async () => {
      db.close();
      await t.close();
    },
  };
}

async function heraldPublishRate(file: string, all: readonly Message[], batch: number): Promise<number> {
  const t = new SqliteTransport({ path: file });
  const start = performance.now();
  for (let i = 0; i < all.length; i += batch) await t.publish(TOPIC, all.slice(i, i + batch));
  const ms = performance.now() - start;
  await t.close();
  return rate(all.length, ms);
}

// ---- consumer processes -----------------------------------------------------------------------

type Mode = 'raw' | 'herald-8' | 'herald-64' | 'latency';

function startWorker(mode: Mode, file: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', here, WORKER_FLAG, mode, file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (out.includes('ready\n')) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`bench worker exited early (${code})`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
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

/**
 * One end-to-end measurement: `consumers` processes of `mode` on a fresh file, `all` published
 * before the start signal (backlog) or after it (steady). Returns messages per second.
 */
async function endToEnd(
  file: string,
  mode: 'raw' | 'herald-8' | 'herald-64',
  consumers: number,
  how: 'backlog' | 'steady',
  all: readonly Message[],
): Promise<number> {
  const producer = mode === 'raw' ? rawProducer(file) : await heraldProducer(file);
  const workers = await Promise.all(Array.from({ length: consumers }, () => startWorker(mode, file)));
  const publishAll = async (): Promise<void> => {
    for (let i = 0; i < all.length; i += BATCH) await producer.publish(all.slice(i, i + BATCH));
  };
  if (how === 'backlog') await publishAll();
  const start = performance.now();
  for (const w of workers) w.stdin!.write('go\n');
  if (how === 'steady') await publishAll();
  while (!(await producer.drained())) await sleep(2);
  const ms = performance.now() - start;
  await Promise.all(workers.map(stopWorker));
  await producer.close();
  return rate(all.length, ms);
}

/** Fixed rate of `perSecond`, one consumer: publish-to-handler latency percentiles. */
async function latency(
  file: string,
  perSecond: number,
  seconds: number,
  inProcess: boolean,
): Promise<[number, number, number]> {
  const topic = `lat-${inProcess ? 'local' : 'remote'}`;
  const t = new SqliteTransport({ path: file });
  const samples: number[] = [];
  let worker: ChildProcess | undefined;
  if (inProcess) {
    await t.subscribe(topic, { group: GROUP, prefetch: 64 }, async (d) => {
      samples.push(Date.now() - Number(d.message.headers.sentAt));
      await d.ack();
    });
  } else {
    worker = await startWorker('latency', file);
    worker.stdin!.write('go\n');
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
        body: new Uint8Array(305),
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

export async function run(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-bench-sqlite-'));
  let files = 0;
  const f = (): string => path.join(dir, `${++files}.db`);
  const N = Number(process.env.HERALD_BENCH_SQLITE_N ?? 40_000);
  const ROUNDS = Number(process.env.HERALD_BENCH_SQLITE_ROUNDS ?? 3);
  // For before/after comparisons in alternation (not for the published section): only some
  // configurations (raw is always kept, the ratios need it), and no publish or latency tables.
  const only = process.env.HERALD_BENCH_SQLITE_CONFIGS?.split(',');
  const endToEndOnly = process.env.HERALD_BENCH_SQLITE_E2E_ONLY === '1';
  try {
    const all = await envelopes(dir, N);
    const rawBatched = endToEndOnly ? NaN : rawInsertRate(f(), all, BATCH);
    const rawSingle = endToEndOnly ? NaN : rawInsertRate(f(), all.slice(0, 5_000), 1);
    const pubBatched = endToEndOnly ? NaN : await heraldPublishRate(f(), all, BATCH);
    const pubSingle = endToEndOnly ? NaN : await heraldPublishRate(f(), all.slice(0, 5_000), 1);
    const configs = (
      [
        ['raw', 'raw better-sqlite3 loop (SELECT 500 + DELETE per IMMEDIATE transaction)'],
        ['herald-8', 'Herald, README configuration (default concurrency 8)'],
        ['herald-64', 'Herald, concurrency 64'],
      ] as const
    ).filter(([mode]) => mode === 'raw' || !only || only.includes(mode));
    const cells = new Map<string, number>();
    // Raw and Herald alternate within every round, so load swings on a shared machine hit both alike.
    for (const how of ['backlog', 'steady'] as const) {
      for (const consumers of [1, 2]) {
        const measured = new Map<string, number[]>();
        for (let r = 0; r < ROUNDS; r++) {
          for (const [mode] of configs) {
            const x = await endToEnd(f(), mode, consumers, how, all);
            measured.set(mode, [...(measured.get(mode) ?? []), x]);
            console.log(`${how} ${consumers}p ${mode} round ${r + 1}: ${fmt(x)} msg/s`);
          }
        }
        for (const [mode, xs] of measured) {
          xs.sort((a, b) => a - b);
          cells.set(`${how}/${consumers}/${mode}`, xs[Math.floor(xs.length / 2)]!);
        }
      }
    }
    const [p50r, p99r, nr] = endToEndOnly ? [NaN, NaN, NaN] : await latency(f(), 1000, 4, false);
    const [p50l, p99l, nl] = endToEndOnly ? [NaN, NaN, NaN] : await latency(f(), 1000, 4, true);
    const cell = (how: string, c: number, mode: string): number => cells.get(`${how}/${c}/${mode}`)!;
    const ratio = (x: number, raw: number): string => (x / raw).toFixed(2);
    const rows: string[] = [];
    for (const how of ['backlog', 'steady'] as const) {
      for (const [mode, label] of configs) {
        const one = cell(how, 1, mode);
        const two = cell(how, 2, mode);
        const raw1 = cell(how, 1, 'raw');
        const raw2 = cell(how, 2, 'raw');
        rows.push(
          `| ${how} | ${label} | ${fmt(one)} | ${ratio(one, raw1)} | ${fmt(two)} | ${ratio(two, raw2)} | ${ratio(two, one)} |`,
        );
      }
    }
    return [
      `SQLite transport (\`herald/sqlite\`) against raw better-sqlite3, measured in the same run. ${fmt(N)} Herald`,
      'envelopes (~420-byte rows, 64 aggregates, so 64 ordering keys), WAL and `synchronous=NORMAL` in both.',
      'Consumers are separate processes; the producer is the bench process (batches of 500). Each cell is the',
      `median of ${ROUNDS} runs; raw and Herald alternate within every round. Backlog: all messages are in the file`,
      'before the consumers start, the time is the drain. Steady: the consumers run first and the producer',
      'publishes as fast as it can; the time is from the first publish to the last ack.',
      '',
      '| load | consumer | 1 process msg/s | / raw | 2 processes msg/s | / raw | 2 / 1 |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      '| publish | herald msg/s | raw msg/s | ratio |',
      '| --- | ---: | ---: | ---: |',
      `| batches of ${BATCH} (one transaction per call) | ${fmt(pubBatched)} | ${fmt(rawBatched)} | ${ratio(pubBatched, rawBatched)} |`,
      `| one message per call | ${fmt(pubSingle)} | ${fmt(rawSingle)} | ${ratio(pubSingle, rawSingle)} |`,
      '',
      `Latency from publish to handler at a fixed target of 1,000 msg/s (2 messages every 2 ms timer tick; achieved ${fmt(Math.round(nr / 4))} and ${fmt(Math.round(nl / 4))} msg/s) for 4 s, transport subscriber with prefetch 64:`,
      '',
      '| consumer | p50 ms | p99 ms | samples |',
      '| --- | ---: | ---: | ---: |',
      `| another process (polling, idle back-off up to pollIntervalMs=100) | ${p50r} | ${p99r} | ${fmt(nr)} |`,
      `| same process (woken by the publish) | ${p50l} | ${p99l} | ${fmt(nl)} |`,
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- worker process ----------------------------------------------------------------------------

function rawWorker(file: string): { start: () => Promise<void>; stop: () => Promise<void> } {
  const db = rawOpen(file);
  const select = db.prepare('SELECT seq, id, key, headers, body FROM q ORDER BY seq LIMIT ?');
  const del = db.prepare('DELETE FROM q WHERE seq = ?');
  const take = db.transaction(() => {
    const rows = select.all(BATCH) as { seq: number }[];
    for (const r of rows) del.run(r.seq);
    return rows.length;
  });
  let running = true;
  let done: Promise<void> = Promise.resolve();
  const loop = async (): Promise<void> => {
    while (running) {
      if (take.immediate() === 0) await sleep(1);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return {
    start: async () => void (done = loop()),
    stop: async () => {
      running = false;
      await done;
      db.close();
    },
  };
}

async function worker(mode: Mode, file: string): Promise<void> {
  let start: () => Promise<void>;
  let stop: () => Promise<void>;
  const latencies: number[] = [];
  if (mode === 'raw') {
    ({ start, stop } = rawWorker(file));
  } else if (mode === 'latency') {
    const t = new SqliteTransport({ path: file });
    start = async () => {
      await t.subscribe('lat-remote', { group: GROUP, prefetch: 64 }, async (d) => {
        latencies.push(Date.now() - Number(d.message.headers.sentAt));
        await d.ack();
      });
    };
    stop = () => t.close();
  } else {
    const herald = await createHerald({
      service: 'bench-consumer',
      transport: sqlite({ path: file }),
      stores: sqliteStores({ path: file }),
      routing: { 'bench.*': TOPIC },
    });
    herald.subscribe({
      group: GROUP,
      events: ['bench.*'],
      ...(mode === 'herald-64' ? { concurrency: 64 } : {}),
      handler: () => undefined,
    });
    start = () => herald.start();
    stop = () => herald.stop();
  }
  process.on('SIGTERM', () => {
    void stop().then(() => {
      if (mode === 'latency') process.stdout.write(JSON.stringify(latencies));
      process.exit(0);
    });
  });
  const lines = createInterface({ input: process.stdin });
  lines.once('line', () => void start());
  process.stdout.write('ready\n');
}

const flag = process.argv.indexOf(WORKER_FLAG);
if (flag >= 0) {
  const [mode, file] = process.argv.slice(flag + 1);
  await worker(mode as Mode, file!);
}
