/**
 * Instructions per message of the consumer process of a Redis drain, counted by callgrind so the
 * figure does not move with the machine's load (issue #18):
 *
 *   node --import tsx bench/redis-callgrind.ts [mode ...]
 *
 * Modes: `readme` (createHerald, an event with a zod schema, `concurrency: 16`, ordering by
 * aggregate over 100 aggregates, ~300-byte JSON payloads, a handler that does nothing),
 * `readme-idem` (the same with `idempotency: true` on the stores from `redisStores`), `readme-none`
 * (the same with `ordering: 'none'`),
 * `transport-key` / `transport-none` (`transport.subscribe`, prefetch 1000, an acking handler,
 * ordering by key over 100 keys / none), `raw` (ioredis: XREADGROUP COUNT 500, JSON.parse of each
 * body, XACK of the batch) and `raw-idem` (the same with a pipelined `SET NX GET PX` per message
 * before and `SET PX` after, as bench/cases/redis.ts). Default: all.
 *
 * For each mode and each of two sizes n1 < n2 the parent publishes a backlog of WARM_UP + n messages
 * under a fresh key prefix, then runs the consumer as a child under `valgrind --tool=callgrind` and
 * `node --predictable`: it drains WARM_UP messages, collects garbage, drains the n others, collects
 * garbage again and exits. (Ir(n2) − Ir(n1)) / (n2 − n1) is the per-message count with start-up,
 * module loading and most compiling cancelled out. Lease renewals run on the wall clock (every
 * claimIdleMs / 3 = 10 s by default), so they add a little noise under valgrind's slowdown.
 *
 * Environment: HERALD_BENCH_REDIS_URL (default redis://127.0.0.1:6379; the keys are removed
 * afterwards), HERALD_BENCH_SRC (the `src` directory of another checkout, for before/after pairs),
 * HERALD_BENCH_SIZES=n1,n2 (default 2000,6000), HERALD_BENCH_WARM_UP (default 6000),
 * HERALD_BENCH_KEEP=<dir> keeps the callgrind files for `callgrind_annotate`, HERALD_BENCH_NODE_FLAGS adds
 * node flags to the child (e.g. `--perf-basic-prof`, whose /tmp/perf-<pid>.map names the JIT code).
 *
 * SERVER_CALLGRIND_PID=<pid of a redis-server run under callgrind> (with HERALD_BENCH_REDIS_URL
 * pointing at it) adds the server's instructions per message, taken the same way over the span of
 * each child (see `serverInstructions` in bench/redis-admin.ts).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { orderPayload, orderSchema } from './readme-workload.js';
import { countClientAndServer } from './redis-admin.js';
import type * as HeraldCore from '../src/index.js';
import type * as HeraldRedis from '../src/adapters/redis/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const URL = process.env.HERALD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SRC = process.env.HERALD_BENCH_SRC ?? path.join(here, '..', 'src');
const WARM_UP = Number(process.env.HERALD_BENCH_WARM_UP ?? 6000);
const [N1, N2] = (process.env.HERALD_BENCH_SIZES ?? '2000,6000').split(',').map(Number) as [number, number];
const AGGREGATES = 100;
const TOPIC = 'items';
const GROUP = 'readme';

const MODES = {
  readme: 'README consumer (createHerald, zod, concurrency 16, ordering by aggregate)',
  'readme-idem': 'README consumer, idempotency on (the stores from `redisStores`)',
  'readme-none': "README consumer with `ordering: 'none'`",
  'transport-key': 'transport.subscribe, prefetch 1000, ordering by key (100 keys)',
  'transport-none': 'transport.subscribe, prefetch 1000, ordering none',
  raw: 'raw ioredis (XREADGROUP COUNT 500, JSON.parse, XACK)',
  'raw-idem': 'raw ioredis, idempotency on (pipelined SET NX GET PX per message before, SET PX after)',
} as const;
type Mode = keyof typeof MODES;

async function load(): Promise<{ core: typeof HeraldCore; adapter: typeof HeraldRedis }> {
  const core = (await import(pathToFileURL(path.join(SRC, 'index.ts')).href)) as typeof HeraldCore;
  const adapter = (await import(
    pathToFileURL(path.join(SRC, 'adapters', 'redis', 'index.ts')).href
  )) as typeof HeraldRedis;
  return { core, adapter };
}

/** Publishes `total` README events under `prefix` the way the mode's consumer expects them. */
async function prefill(mode: Mode, prefix: string, total: number): Promise<void> {
  if (mode.startsWith('raw')) {
    const writer = new Redis(URL);
    const stream = `${prefix}:{${TOPIC}}:s`;
    await writer.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
    for (let i = 0; i < total; i += 500) {
      const p = writer.pipeline();
      for (let j = i; j < Math.min(total, i + 500); j++)
        p.xadd(
          stream,
          '*',
          'i',
          `r-${j}`,
          'k',
          `agg-${j % AGGREGATES}`,
          'b',
          JSON.stringify(orderPayload(j)),
        );
      await p.exec();
    }
    writer.disconnect();
    return;
  }
  const { core, adapter } = await load();
  const OrderPlaced = core.defineEvent('shop.order.placed', { version: 'v1', schema: orderSchema });
  const publisher = await core.createHerald({
    service: 'bench',
    transport: adapter.redis({ url: URL, prefix }),
    routing: { 'shop.*': TOPIC },
  });
  for (let i = 0; i < total; i += 500)
    await publisher.publishBatch(
      Array.from({ length: Math.min(500, total - i) }, (_, j) => ({
        event: OrderPlaced,
        payload: orderPayload(i + j),
        options: { aggregateId: `agg-${(i + j) % AGGREGATES}` },
      })),
    );
  await publisher.stop();
}

/** The consumer: drains WARM_UP messages, then n more between two full collections. */
async function child(mode: Mode, prefix: string, n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  let handled = 0;
  let target = WARM_UP;
  let done: (() => void) | undefined;
  const until = (count: number): Promise<void> => {
    target = count;
    if (handled >= count) return Promise.resolve();
    return new Promise<void>((r) => (done = r));
  };
  // `>=`, not `===`: with a large prefetch many handlers run before the phase's continuation sets the
  // next target. Every message of the backlog is handled either way, so Ir(n2) − Ir(n1) still covers
  // exactly n2 − n1 messages; only where the warm-up ends (the first gc) is approximate.
  const onMessage = (): void => {
    if (++handled >= target && done) {
      const d = done;
      done = undefined;
      d();
    }
  };
  const phases = async (): Promise<void> => {
    await until(WARM_UP);
    gc();
    await until(WARM_UP + n);
    gc();
  };
  if (mode.startsWith('raw')) {
    const reader = new Redis(URL);
    const stream = `${prefix}:{${TOPIC}}:s`;
    const loop = (async () => {
      while (handled < WARM_UP + n) {
        const r = (await reader.xreadgroup('GROUP', GROUP, 'c', 'COUNT', 500, 'STREAMS', stream, '>')) as
          [string, [string, string[]][]][] | null;
        const entries = r?.[0]?.[1] ?? [];
        if (mode === 'raw-idem') {
          const p = reader.pipeline();
          for (const [, f] of entries)
            p.call('SET', [`${prefix}:idem:${f[1]}`, 'r', 'NX', 'GET', 'PX', 60_000]);
          await p.exec();
        }
        for (const [, f] of entries) JSON.parse(f[5]!);
        if (mode === 'raw-idem') {
          const p = reader.pipeline();
          for (const [, f] of entries) p.set(`${prefix}:idem:${f[1]}`, 'd', 'PX', 86_400_000);
          p.xack(stream, GROUP, ...entries.map((e) => e[0]));
          await p.exec();
        } else await reader.xack(stream, GROUP, ...entries.map((e) => e[0]));
        for (let i = 0; i < entries.length; i++) onMessage();
      }
    })();
    await phases();
    await loop;
    reader.disconnect();
    return;
  }
  const { core, adapter } = await load();
  if (mode.startsWith('readme')) {
    const idempotency = mode === 'readme-idem';
    const OrderPlaced = core.defineEvent('shop.order.placed', { version: 'v1', schema: orderSchema });
    const stores = idempotency ? adapter.redisStores({ url: URL, prefix }) : undefined;
    const herald = await core.createHerald({
      service: 'bench',
      transport: adapter.redis({ url: URL, prefix }),
      routing: { 'shop.*': TOPIC },
      connectTimeoutMs: 120_000, // under valgrind, on a loaded machine
      ...(stores ? { stores: { idempotency: stores.idempotency } } : {}),
    });
    herald.subscribe({
      group: GROUP,
      events: [OrderPlaced],
      concurrency: 16,
      ...(mode === 'readme-none' ? { ordering: 'none' as const } : {}),
      idempotency,
      handler: onMessage,
    });
    await herald.start();
    await phases();
    await herald.stop();
    await stores?.close();
    return;
  }
  const transport = adapter.redis({ url: URL, prefix });
  const sub = await transport.subscribe(
    TOPIC,
    { group: GROUP, prefetch: 1000, ordering: mode === 'transport-key' ? 'key' : 'none' },
    (d) => {
      onMessage();
      return d.ack();
    },
  );
  await phases();
  await sub.close();
  await transport.close();
}

async function prefillTransport(prefix: string, total: number): Promise<void> {
  const { adapter } = await load();
  const publisher = adapter.redis({ url: URL, prefix });
  for (let i = 0; i < total; i += 500)
    await publisher.publish(
      TOPIC,
      Array.from({ length: Math.min(500, total - i) }, (_, j) => ({
        id: `t-${i + j}`,
        key: `agg-${(i + j) % AGGREGATES}`,
        headers: {},
        body: Buffer.from(JSON.stringify(orderPayload(i + j))),
      })),
    );
  await publisher.close();
}

/**
 * Total instructions (Ir) of one consumer child under callgrind and, with SERVER_CALLGRIND_PID, of the
 * redis-server while the child ran.
 */
async function instructions(mode: Mode, n: number): Promise<{ client: number; server: number }> {
  const prefix = `herald-cg:${process.pid}:${mode}:${n}`;
  const total = WARM_UP + n;
  if (mode.startsWith('transport')) {
    await prefillTransport(prefix, total);
    const admin = new Redis(URL);
    await admin.xgroup('CREATE', `${prefix}:{${TOPIC}}:s`, GROUP, '0', 'MKSTREAM');
    admin.disconnect();
  } else await prefill(mode, prefix, total);
  return countClientAndServer(
    {
      script: fileURLToPath(import.meta.url),
      label: `${mode}.${n}`,
      env: { HERALD_BENCH_CG_CHILD: `${mode}|${prefix}|${n}` },
      nodeFlags: (process.env.HERALD_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    },
    URL,
    prefix,
  );
}

const childSpec = process.env.HERALD_BENCH_CG_CHILD;
if (childSpec !== undefined) {
  const [mode, prefix, n] = childSpec.split('|') as [Mode, string, string];
  await child(mode, prefix, Number(n));
  process.exit(0);
} else {
  const wanted = process.argv.slice(2) as Mode[];
  const modes = wanted.length > 0 ? wanted : (Object.keys(MODES) as Mode[]);
  for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode ${m}`);
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const rows: string[] = [];
  const withServer = process.env.SERVER_CALLGRIND_PID !== undefined;
  for (const m of modes) {
    const [big, small] = [await instructions(m, N2), await instructions(m, N1)];
    const client = (big.client - small.client) / (N2 - N1);
    const server = (big.server - small.server) / (N2 - N1);
    process.stderr.write(
      `${m}: ${fmt(client)} instructions per message${withServer ? `, server ${fmt(server)}` : ''}\n`,
    );
    rows.push(`| ${MODES[m]} | ${fmt(client)} |${withServer ? ` ${fmt(server)} |` : ''}`);
  }
  process.stdout.write(
    [
      `Instructions per message of the consumer process (callgrind, \`node --predictable\`, after a ${fmt(WARM_UP)}-message warm-up, (Ir(${fmt(N2)}) − Ir(${fmt(N1)})) / ${fmt(N2 - N1)}):`,
      '',
      withServer
        ? '| consumer | instructions per message | redis-server instructions per message |'
        : '| consumer | instructions per message |',
      withServer ? '| --- | ---: | ---: |' : '| --- | ---: |',
      ...rows,
      '',
    ].join('\n'),
  );
}
