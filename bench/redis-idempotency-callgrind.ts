/**
 * What the Redis idempotency store's calls cost, apart from the consumer around them, counted by
 * callgrind (issue #18, ADR 0310):
 *
 *   node --import tsx bench/redis-idempotency-callgrind.ts
 *
 * Two variants, each the reserve and then the complete of a key, in turns of 16 keys (a README
 * consumer's fetched batch: its 16 handlers start together and finish together):
 *
 * - `pipeline`: what ADR 0306 sent, one ioredis pipeline of plain commands per turn
 *   (`SET key r NX GET PX`, then `SET key d PX`);
 * - `store`: `redisStores(...).idempotency` of this checkout (or of HERALD_BENCH_SRC), 16 `reserve`
 *   calls in one turn, then 16 `complete` calls.
 *
 * Each child runs a warm-up of 16,000 keys, collects garbage, then n keys; the client's figure is
 * (Ir(n2) − Ir(n1)) / (n2 − n1) of the child under callgrind. With SERVER_CALLGRIND_PID (a
 * redis-server of your own run under callgrind, see bench/redis-admin.ts, with
 * HERALD_BENCH_REDIS_URL pointing at it) the server's instructions per key are taken the same way.
 *
 * Environment: HERALD_BENCH_REDIS_URL (default redis://127.0.0.1:6379; the keys are removed
 * afterwards), HERALD_BENCH_SRC, HERALD_BENCH_SIZES=n1,n2 (default 4000,12000).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { countClientAndServer } from './redis-admin.js';
import type * as HeraldRedis from '../src/adapters/redis/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const URL = process.env.HERALD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SRC = process.env.HERALD_BENCH_SRC ?? path.join(here, '..', 'src');
const [N1, N2] = (process.env.HERALD_BENCH_SIZES ?? '4000,12000').split(',').map(Number) as [number, number];
const WARM_UP = 16_000;
const TURN = 16;
const LEASE_MS = 300_000;
const TTL_MS = 86_400_000;

const VARIANTS = {
  pipeline: 'one ioredis pipeline of plain SET commands per turn (ADR 0306)',
  store: 'redisStores().idempotency: one script call per turn (ADR 0310)',
} as const;
type Variant = keyof typeof VARIANTS;

async function child(variant: Variant, prefix: string, n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  let turn: (keys: string[]) => Promise<unknown>;
  let close: () => Promise<void>;
  if (variant === 'pipeline') {
    const client = new Redis(URL);
    turn = async (keys) => {
      const reserve = client.pipeline();
      for (const k of keys) reserve.call('SET', [`${prefix}:idem:${k}`, 'r', 'NX', 'GET', 'PX', LEASE_MS]);
      await reserve.exec();
      const complete = client.pipeline();
      for (const k of keys) complete.set(`${prefix}:idem:${k}`, 'd', 'PX', TTL_MS);
      await complete.exec();
    };
    close = async () => void client.disconnect();
  } else {
    const { redisStores } = (await import(
      pathToFileURL(path.join(SRC, 'adapters', 'redis', 'index.ts')).href
    )) as typeof HeraldRedis;
    const stores = redisStores({ url: URL, prefix });
    const store = stores.idempotency;
    turn = async (keys) => {
      await Promise.all(keys.map((k) => store.reserve(k, LEASE_MS)));
      await Promise.all(keys.map((k) => store.complete(k, TTL_MS)));
    };
    close = () => stores.close();
  }
  const run = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += TURN) await turn(Array.from({ length: TURN }, (_, j) => `g:e-${i + j}`));
  };
  await run(1_000_000, 1_000_000 + WARM_UP);
  gc();
  await run(0, n);
  gc();
  await close();
}

async function instructions(variant: Variant, n: number): Promise<{ client: number; server: number }> {
  const prefix = `herald-idem-cg:${process.pid}:${variant}:${n}`;
  return countClientAndServer(
    {
      script: fileURLToPath(import.meta.url),
      label: `idem.${variant}.${n}`,
      env: { HERALD_BENCH_IDEM_CHILD: `${variant}|${prefix}|${n}` },
    },
    URL,
    prefix,
  );
}

const childSpec = process.env.HERALD_BENCH_IDEM_CHILD;
if (childSpec !== undefined) {
  const [variant, prefix, n] = childSpec.split('|') as [Variant, string, string];
  await child(variant, prefix, Number(n));
  process.exit(0);
} else {
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const withServer = process.env.SERVER_CALLGRIND_PID !== undefined;
  const rows: string[] = [];
  for (const v of Object.keys(VARIANTS) as Variant[]) {
    const [big, small] = [await instructions(v, N2), await instructions(v, N1)];
    const client = (big.client - small.client) / (N2 - N1);
    const server = (big.server - small.server) / (N2 - N1);
    process.stderr.write(`${v}: client ${fmt(client)}${withServer ? `, server ${fmt(server)}` : ''}\n`);
    rows.push(`| ${VARIANTS[v]} | ${fmt(client)} |${withServer ? ` ${fmt(server)} |` : ''}`);
  }
  process.stdout.write(
    [
      `Instructions per key (a reserve and a complete), turns of ${TURN} keys, after a ${fmt(WARM_UP)}-key warm-up, (Ir(${fmt(N2)}) − Ir(${fmt(N1)})) / ${fmt(N2 - N1)}:`,
      '',
      withServer ? '| calls | client | redis-server |' : '| calls | client |',
      withServer ? '| --- | ---: | ---: |' : '| --- | ---: |',
      ...rows,
      '',
    ].join('\n'),
  );
}
