/**
 * Redis: Herald as the README sets it up (createHerald, a zod schema, `concurrency: 16`, ordering by
 * aggregate, ~300-byte JSON payloads over 100 aggregates), idempotency off and on, against raw ioredis
 * doing the same Redis moves, in the same run. Secondary: the transport alone against raw ioredis.
 *
 * Every measurement runs in a fresh child process (this module again, `HERALD_BENCH_CHILD` set), so
 * each variant has the same process layout; rounds alternate the variants and the medians are shown.
 * Variants: `raw` (ioredis), `herald` (this checkout) and, when `HERALD_BENCH_BEFORE` names the `src`
 * directory of another checkout, `before` (that code, for before/after figures from one run).
 *
 * The benchmark starts its own `redis-server` (no persistence) on a free port, so the server CPU per
 * message (INFO cpu delta) is the benchmark's alone; `HERALD_BENCH_REDIS_URL` points it elsewhere.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { removeKeys } from '../redis-admin.js';
import type * as HeraldCore from '../../src/index.js';
import type * as HeraldRedis from '../../src/adapters/redis/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CURRENT_SRC = path.join(here, '..', '..', 'src');
const N = Number(process.env.HERALD_BENCH_N ?? 50_000);
const BATCH = 500;
const KEYS = 100;
/**
 * The aggregate of the n-th event: in turn (the README rows), or drawn at random (a 32-bit mix of n),
 * as real traffic is. In turn, a window of fewer than KEYS consecutive events never repeats a key, the
 * best case for ordering by key; at random, keys repeat within a fetch and the follower path runs.
 */
const aggregateOf = (n: number, random: boolean | undefined): string => {
  if (!random) return `agg-${n % KEYS}`;
  let h = Math.imul(n ^ (n >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return `agg-${((h ^ (h >>> 16)) >>> 0) % KEYS}`;
};
const ROUNDS = Number(process.env.HERALD_BENCH_ROUNDS ?? 3);
const CONCURRENCY = 16;
const LATENCY_RATE = 1_000;
const LATENCY_SECONDS = Number(process.env.HERALD_BENCH_LATENCY_SECONDS ?? 5);
const TEXT = 'x'.repeat(250);
const TRANSPORT_N = 2 * N;

type Variant = 'raw' | 'before' | 'herald';
type Scenario = 'drain' | 'e2e' | 'latency';

interface ChildArgs {
  readonly variant: Variant;
  readonly scenario: Scenario;
  readonly idem: boolean;
  readonly url: string;
  readonly prefix: string;
  readonly src: string;
  readonly randomKeys?: boolean;
  /** The README setup with `ordering: 'none'` (raw does not order either way). */
  readonly orderingNone?: boolean;
}

interface ChildResult {
  readonly elapsedMs: number;
  readonly handled: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly rss: number;
  /** CPU time (user + system) of the child process during the measurement, µs. */
  readonly cpuUs: number;
}

interface Measured extends ChildResult {
  readonly serverCpuUs: number;
  readonly memoryBytes: number;
}

const payload = (n: number): { n: number; at: number; text: string } => ({
  n,
  at: performance.timeOrigin + performance.now(),
  text: TEXT,
});

// ---------------------------------------------------------------- child side

async function runChild(args: ChildArgs): Promise<void> {
  const send = (m: unknown): Promise<void> =>
    new Promise((resolve) => process.send!(m, undefined, undefined, () => resolve()));
  const go = new Promise<void>((resolve) => process.once('message', () => resolve()));
  const topic = 'items';
  if (args.variant === 'raw') return rawChild(args, topic, send, go);

  const core = (await import(pathToFileURL(path.join(args.src, 'index.ts')).href)) as typeof HeraldCore;
  const adapter = (await import(
    pathToFileURL(path.join(args.src, 'adapters', 'redis', 'index.ts')).href
  )) as typeof HeraldRedis;
  const ItemMade = core.defineEvent('bench.item.made', {
    version: 'v1',
    schema: z.object({ n: z.number(), at: z.number(), text: z.string() }),
  });
  const routing = { 'bench.*': topic };
  const publisher = await core.createHerald({
    service: 'bench',
    transport: adapter.redis({ url: args.url, prefix: args.prefix }),
    routing,
  });
  const publishRange = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += BATCH)
      await publisher.publishBatch(
        Array.from({ length: Math.min(BATCH, to - i) }, (_, j) => ({
          event: ItemMade,
          payload: payload(i + j),
          options: { aggregateId: aggregateOf(i + j, args.randomKeys) },
        })),
      );
  };
  if (args.scenario === 'drain') await publishRange(0, N);

  const stores = args.idem ? adapter.redisStores({ url: args.url, prefix: args.prefix }) : undefined;
  // HERALD_BENCH_BUFFER sets the consumer transport's bufferSize (this checkout only), to compare settings.
  const buffer = process.env.HERALD_BENCH_BUFFER;
  const consumer = await core.createHerald({
    service: 'bench',
    transport: adapter.redis({
      url: args.url,
      prefix: args.prefix,
      ...(buffer !== undefined && args.variant === 'herald' ? { bufferSize: Number(buffer) } : {}),
    }),
    routing,
    ...(stores ? { stores: { idempotency: stores.idempotency } } : {}),
  });
  const target = args.scenario === 'latency' ? LATENCY_RATE * LATENCY_SECONDS : N;
  const samples: number[] = [];
  let handled = 0;
  let done!: () => void;
  const allHandled = new Promise<void>((resolve) => (done = resolve));
  consumer.subscribe({
    group: 'readme',
    events: [ItemMade],
    concurrency: CONCURRENCY,
    ...(args.orderingNone ? { ordering: 'none' as const } : {}),
    idempotency: args.idem,
    handler: async (event) => {
      if (args.scenario === 'latency')
        samples.push(performance.timeOrigin + performance.now() - event.payload.at);
      if (++handled === target) done();
    },
  });
  // A subscription starting at the stream's end would miss nothing here: the group reads from 0.
  await send({ ready: true });
  await go;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  await consumer.start();
  if (args.scenario === 'e2e') await publishRange(0, N);
  if (args.scenario === 'latency')
    await paced(target, (n) => publisher.publish(ItemMade, payload(n), { aggregateId: `agg-${n % KEYS}` }));
  await allHandled;
  const elapsedMs = performance.now() - started;
  const rss = process.memoryUsage().rss;
  const cpu = process.cpuUsage(cpuStart);
  const cpuUs = cpu.user + cpu.system;
  await consumer.stop();
  await publisher.stop();
  await stores?.close();
  await send({ elapsedMs, handled, rss, cpuUs, ...percentiles(samples) } satisfies ChildResult);
}

/** Publishes `total` messages at LATENCY_RATE per second, 10 at a time, on a fixed schedule. */
async function paced(total: number, publish: (n: number) => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const every = 10;
  for (let n = 0; n < total; n += every) {
    const due = started + (n / LATENCY_RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await Promise.all(Array.from({ length: every }, (_, i) => publish(n + i)));
  }
}

function percentiles(samples: number[]): { p50?: number; p99?: number } {
  if (samples.length === 0) return {};
  const s = samples.slice(Math.floor(samples.length / 10)).sort((a, b) => a - b); // first 10 % = warm-up
  return { p50: s[Math.floor(s.length * 0.5)]!, p99: s[Math.floor(s.length * 0.99)]! };
}

/**
 * Raw ioredis doing what Herald does for the README consumer: XREADGROUP batches of 500, parse each
 * JSON body, with idempotency a pipelined `SET NX GET PX` per message before and `SET PX` after the
 * handler, then XACK the batch. Order per aggregate holds trivially: one reader, one batch at a time.
 */
async function rawChild(
  args: ChildArgs,
  topic: string,
  send: (m: unknown) => Promise<void>,
  go: Promise<void>,
): Promise<void> {
  const stream = `${args.prefix}:{${topic}}:s`;
  const group = 'readme';
  const writer = new Redis(args.url);
  const reader = new Redis(args.url);
  const publishRange = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += BATCH) {
      const p = writer.pipeline();
      for (let j = i; j < Math.min(to, i + BATCH); j++) {
        const key = aggregateOf(j, args.randomKeys);
        p.xadd(stream, '*', 'i', `r-${j}`, 'k', key, 'b', JSON.stringify(payload(j)));
      }
      await p.exec();
    }
  };
  await writer.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  if (args.scenario === 'drain') await publishRange(0, N);
  const target = args.scenario === 'latency' ? LATENCY_RATE * LATENCY_SECONDS : N;
  const samples: number[] = [];
  let handled = 0;
  await send({ ready: true });
  await go;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const consuming = (async () => {
    while (handled < target) {
      const r = (await reader.xreadgroup(
        'GROUP',
        group,
        'c',
        'COUNT',
        BATCH,
        'BLOCK',
        100,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][] | null;
      const entries = r?.[0]?.[1] ?? [];
      if (entries.length === 0) continue;
      if (args.idem) {
        const p = reader.pipeline();
        for (const [, f] of entries)
          p.call('SET', [`${args.prefix}:idem:${f[1]}`, 'r', 'NX', 'GET', 'PX', 60_000]);
        await p.exec();
      }
      for (const [, f] of entries) {
        const body = JSON.parse(f[5]!) as { at: number };
        if (args.scenario === 'latency') samples.push(performance.timeOrigin + performance.now() - body.at);
      }
      const p = reader.pipeline();
      if (args.idem) for (const [, f] of entries) p.set(`${args.prefix}:idem:${f[1]}`, 'd', 'PX', 86_400_000);
      p.xack(stream, group, ...entries.map((e) => e[0]));
      await p.exec();
      handled += entries.length;
    }
  })();
  if (args.scenario === 'e2e') await publishRange(0, N);
  if (args.scenario === 'latency')
    await paced(target, (n) =>
      writer.xadd(stream, '*', 'i', `r-${n}`, 'k', `agg-${n % KEYS}`, 'b', JSON.stringify(payload(n))),
    );
  await consuming;
  const elapsedMs = performance.now() - started;
  const rss = process.memoryUsage().rss;
  const cpu = process.cpuUsage(cpuStart);
  const cpuUs = cpu.user + cpu.system;
  writer.disconnect();
  reader.disconnect();
  await send({ elapsedMs, handled, rss, cpuUs, ...percentiles(samples) } satisfies ChildResult);
}

// ---------------------------------------------------------------- parent side

async function serverCpuUs(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
}

async function usedMemory(admin: Redis): Promise<number> {
  const info = await admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

async function measure(
  admin: Redis,
  url: string,
  args: Omit<ChildArgs, 'url' | 'prefix'>,
  run: number,
): Promise<Measured> {
  const prefix = `herald-bench:${process.pid}:${run}`;
  const memBefore = await usedMemory(admin);
  const child = fork(fileURLToPath(import.meta.url), [], {
    // HERALD_BENCH_PROF=<dir> writes a V8 CPU profile of every child there.
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.HERALD_BENCH_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.HERALD_BENCH_PROF}`]
        : []),
    ],
    env: { ...process.env, HERALD_BENCH_CHILD: JSON.stringify({ ...args, url, prefix } satisfies ChildArgs) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`bench child exited with ${code}`)));
    });
    const memoryBytes = args.scenario === 'drain' ? (await usedMemory(admin)) - memBefore : 0;
    // HERALD_BENCH_COMMANDSTATS prints which Redis commands (Lua-inner ones too) the measurement ran.
    if (process.env.HERALD_BENCH_COMMANDSTATS) await admin.config('RESETSTAT');
    const cpu0 = await serverCpuUs(admin);
    child.send('go');
    const result = await new Promise<ChildResult>((resolve, reject) => {
      child.once('message', (m) => resolve(m as ChildResult));
      child.once('exit', (code) => reject(new Error(`bench child exited with ${code}`)));
    });
    const serverCpuUsed = (await serverCpuUs(admin)) - cpu0;
    if (process.env.HERALD_BENCH_COMMANDSTATS) console.log(await admin.info('commandstats'));
    // e2e and latency include the publishing; drain only the consuming.
    return { ...result, serverCpuUs: serverCpuUsed / result.handled, memoryBytes: memoryBytes / N };
  } finally {
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await removeKeys(admin, prefix);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const ratio = (a: number, b: number): string => (a / b).toFixed(2);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function ownServer(): Promise<{ url: string; server?: ChildProcess }> {
  if (process.env.HERALD_BENCH_REDIS_URL) return { url: process.env.HERALD_BENCH_REDIS_URL };
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // not up yet
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { url, server };
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  server.kill();
  throw new Error('redis-server did not start');
}

// ------------------------------------------------------- transport only (secondary)

const transportMessages = (
  n: number,
): { id: string; key: string; headers: Record<string, string>; body: Buffer }[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `t-${i}`,
    key: `agg-${i % KEYS}`,
    headers: {},
    body: Buffer.alloc(305, 'x'),
  }));

async function transportDrain(
  url: string,
  admin: Redis,
  mode: 'raw' | 'none' | 'key',
  run: number,
): Promise<number> {
  const { redis } = await import('../../src/adapters/redis/index.js');
  const prefix = `herald-bench:${process.pid}:t${run}`;
  const topic = 'transport';
  const stream = `${prefix}:{${topic}}:s`;
  try {
    if (mode === 'raw') {
      for (let i = 0; i < TRANSPORT_N; i += BATCH) {
        const p = admin.pipeline();
        for (let j = i; j < i + BATCH; j++)
          p.xadd(stream, '*', 'i', `r-${j}`, 'k', `agg-${j % KEYS}`, 'b', Buffer.alloc(305, 'x'));
        await p.exec();
      }
    } else {
      const t = redis({ url, prefix });
      const all = transportMessages(TRANSPORT_N);
      for (let i = 0; i < TRANSPORT_N; i += BATCH) await t.publish(topic, all.slice(i, i + BATCH));
      await t.close();
    }
    await admin.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    const started = performance.now();
    let count = 0;
    if (mode === 'raw') {
      const reader = new Redis(url);
      while (count < TRANSPORT_N) {
        const r = (await reader.xreadgroup('GROUP', 'g', 'c', 'COUNT', BATCH, 'STREAMS', stream, '>')) as
          [string, [string, string[]][]][] | null;
        const entries = r?.[0]?.[1] ?? [];
        if (entries.length > 0) await reader.xack(stream, 'g', ...entries.map((e) => e[0]));
        count += entries.length;
      }
      reader.disconnect();
    } else {
      const t = redis({ url, prefix });
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      const sub = await t.subscribe(topic, { group: 'g', prefetch: 2 * BATCH, ordering: mode }, (d) => {
        if (++count === TRANSPORT_N) done();
        return d.ack();
      });
      await finished;
      await sub.close();
      await t.close();
    }
    return (TRANSPORT_N / (performance.now() - started)) * 1000;
  } finally {
    await removeKeys(admin, prefix);
  }
}

// ---------------------------------------------------------------- report

export async function run(): Promise<string> {
  const { url, server } = await ownServer();
  const admin = new Redis(url);
  const before = process.env.HERALD_BENCH_BEFORE;
  const variants: Variant[] = before ? ['raw', 'before', 'herald'] : ['raw', 'herald'];
  const srcOf = (v: Variant): string => (v === 'before' ? before! : CURRENT_SRC);
  const cases: {
    label: string;
    scenario: Scenario;
    idem: boolean;
    randomKeys?: boolean;
    orderingNone?: boolean;
  }[] = [
    { label: 'end to end, idempotency off', scenario: 'e2e', idem: false },
    { label: 'end to end, idempotency on', scenario: 'e2e', idem: true },
    { label: `drain of a ${fmt(N)} backlog, idempotency off`, scenario: 'drain', idem: false },
    { label: `drain of a ${fmt(N)} backlog, idempotency on`, scenario: 'drain', idem: true },
    {
      label: `drain of a ${fmt(N)} backlog, idempotency off, aggregates in random order`,
      scenario: 'drain',
      idem: false,
      randomKeys: true,
    },
    {
      label: `drain of a ${fmt(N)} backlog, idempotency off, ordering none`,
      scenario: 'drain',
      idem: false,
      orderingNone: true,
    },
    {
      label: `paced ${fmt(LATENCY_RATE)} events/s for ${LATENCY_SECONDS} s, idempotency off`,
      scenario: 'latency',
      idem: false,
    },
  ];
  let runNo = 0;
  const measureCase = (c: (typeof cases)[number], v: Variant): Promise<Measured> =>
    measure(admin, url, { ...c, variant: v, src: srcOf(v) }, runNo++);
  const line = (c: (typeof cases)[number], v: Variant, m: Measured): string =>
    `${c.label} ${v}: ${fmt((m.handled / m.elapsedMs) * 1000)}/s, server ${m.serverCpuUs.toFixed(2)} µs/msg` +
    (m.p99 !== undefined ? `, p50 ${m.p50!.toFixed(2)} ms p99 ${m.p99.toFixed(2)} ms` : '');
  // For profiling one row: HERALD_BENCH_ONLY=<part of a row label>[|<variant>]; the report then needs every row.
  const [onlyLabel, onlyVariant] = (process.env.HERALD_BENCH_ONLY ?? '').split('|');
  if (onlyLabel) {
    for (const c of cases.filter((x) => x.label.includes(onlyLabel)))
      for (const v of variants.filter((x) => !onlyVariant || x === onlyVariant)) {
        console.log(line(c, v, await measureCase(c, v)));
      }
    admin.disconnect();
    server?.kill();
    return '';
  }
  const results = new Map<string, Measured[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        for (const v of round % 2 ? [...variants].reverse() : variants) {
          const m = await measureCase(c, v);
          const k = `${c.label}|${v}`;
          results.set(k, [...(results.get(k) ?? []), m]);
          console.log(`round ${round + 1} ${line(c, v, m)}`);
        }
      }
    }
    const med = (label: string, v: Variant, f: (m: Measured) => number): number =>
      median(results.get(`${label}|${v}`)!.map(f));
    const rate = (m: Measured): number => (m.handled / m.elapsedMs) * 1000;
    const herald: Variant[] = before ? ['before', 'herald'] : ['herald'];
    const name = (v: Variant): string =>
      v === 'raw' ? 'raw' : v === 'before' ? 'before' : before ? 'after' : 'Herald';

    const lines: string[] = [];
    lines.push(
      `README setup: \`createHerald\`, an event with a zod schema, \`concurrency: ${CONCURRENCY}\`, ordering by aggregate (${KEYS} aggregates, in turn) unless the row says otherwise, JSON payloads of about 300 bytes, a handler that does nothing; the stores from \`redisStores\` when idempotency is on. Raw = ioredis doing the same Redis moves in the same run: pipelined XADD batches of ${BATCH}; XREADGROUP COUNT ${BATCH}, JSON.parse of each body, XACK of the batch; with idempotency a pipelined \`SET NX GET PX\` per message before and \`SET PX\` after. Each figure is the median of ${ROUNDS} rounds; a round runs every variant once per row, each in a fresh process, in alternating order. The benchmark runs its own redis-server (no persistence), so its CPU is this benchmark's alone: server CPU per message is the INFO cpu (user + sys) delta over the measurement divided by the messages handled (end to end and paced include the publishing).`,
      '',
      `| Measure | ${herald.map((v) => `${name(v)} (msg/s)`).join(' | ')} | raw ioredis (msg/s) | ${herald.map((v) => `${name(v)} / raw`).join(' | ')} | server CPU µs/msg (${[...herald.map(name), 'raw'].join(' / ')}) | client CPU µs/msg (${[...herald.map(name), 'raw'].join(' / ')}) |`,
      `|---|${herald.map(() => '---:').join('|')}|---:|${herald.map(() => '---:').join('|')}|---:|---:|`,
    );
    for (const c of cases.filter((x) => x.scenario !== 'latency')) {
      const raw = med(c.label, 'raw', rate);
      const hs = herald.map((v) => med(c.label, v, rate));
      const cpu = [...herald, 'raw' as Variant].map((v) => med(c.label, v, (m) => m.serverCpuUs).toFixed(1));
      const client = [...herald, 'raw' as Variant].map((v) =>
        med(c.label, v, (m) => m.cpuUs / m.handled).toFixed(1),
      );
      lines.push(
        `| ${c.label} | ${hs.map(fmt).join(' | ')} | ${fmt(raw)} | ${hs.map((h) => ratio(h, raw)).join(' | ')} | ${cpu.join(' / ')} | ${client.join(' / ')} |`,
      );
    }
    const lat = cases.find((x) => x.scenario === 'latency')!.label;
    for (const [p, f] of [
      ['p50', (m: Measured) => m.p50!],
      ['p99', (m: Measured) => m.p99!],
    ] as const) {
      lines.push(
        `| ${lat}: publish → handled ${p} (ms) | ${herald.map((v) => med(lat, v, f).toFixed(2)).join(' | ')} | ${med(lat, 'raw', f).toFixed(2)} | ${herald.map((v) => `${(med(lat, v, f) / med(lat, 'raw', f)).toFixed(1)}×`).join(' | ')} | ${[...herald, 'raw' as Variant].map((v) => med(lat, v, (m) => m.serverCpuUs).toFixed(1)).join(' / ')} | ${[...herald, 'raw' as Variant].map((v) => med(lat, v, (m) => m.cpuUs / m.handled).toFixed(1)).join(' / ')} |`,
      );
    }
    const idemCost = (label: (idem: boolean) => string, v: Variant): string =>
      `${Math.round((1 - med(label(true), v, rate) / med(label(false), v, rate)) * 100)} %`;
    const e2e = (idem: boolean): string => cases.find((x) => x.scenario === 'e2e' && x.idem === idem)!.label;
    const drain = (idem: boolean): string =>
      cases.find((x) => x.scenario === 'drain' && x.idem === idem && !x.randomKeys && !x.orderingNone)!.label;
    lines.push(
      '',
      `Rate lost to idempotency (1 − on / off): end to end ${herald.map((v) => `${name(v)} ${idemCost(e2e, v)}`).join(', ')}, raw ${idemCost(e2e, 'raw')}; drain ${herald.map((v) => `${name(v)} ${idemCost(drain, v)}`).join(', ')}, raw ${idemCost(drain, 'raw')}.`,
      `Redis memory per backlog event (used_memory delta after the ${fmt(N)} prefill / ${fmt(N)}): ${[...herald, 'raw' as Variant].map((v) => `${name(v)} ${fmt(med(drain(false), v, (m) => m.memoryBytes))} bytes`).join(', ')}.`,
      `Consumer process RSS at the end of the drain: ${[...herald, 'raw' as Variant].map((v) => `${name(v)} ${fmt(med(drain(false), v, (m) => m.rss) / 2 ** 20)} MiB`).join(', ')}.`,
    );
    if (before)
      lines.push(
        `\`before\` is the code in \`HERALD_BENCH_BEFORE\` (${path.basename(path.dirname(before))}), run in the same rounds.`,
      );

    // Secondary: the transport alone.
    const t: Record<'raw' | 'none' | 'key', number[]> = { raw: [], none: [], key: [] };
    for (let round = 0; round < ROUNDS; round++)
      for (const mode of ['raw', 'none', 'key'] as const)
        t[mode].push(await transportDrain(url, admin, mode, runNo++));
    const rawT = median(t.raw);
    lines.push(
      '',
      `Transport alone (this checkout), \`transport.subscribe\` with prefetch ${2 * BATCH} and an acking handler, draining ${fmt(TRANSPORT_N)} messages of 305 bytes in one process, raw = XREADGROUP COUNT ${BATCH} + XACK; medians of ${ROUNDS}:`,
      '',
      '| Measure | Herald (msg/s) | raw ioredis (msg/s) | Herald / raw |',
      '|---|---:|---:|---:|',
      `| drain, ordering none | ${fmt(median(t.none))} | ${fmt(rawT)} | ${ratio(median(t.none), rawT)} |`,
      `| drain, ordering key (${KEYS} keys) | ${fmt(median(t.key))} | ${fmt(rawT)} | ${ratio(median(t.key), rawT)} |`,
    );
    return lines.join('\n');
  } finally {
    admin.disconnect();
    server?.kill();
  }
}

if (process.env.HERALD_BENCH_CHILD) {
  runChild(JSON.parse(process.env.HERALD_BENCH_CHILD) as ChildArgs).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
