/**
 * What a batch publish costs the client and the server: `transport.publish` of N messages (a key, a
 * `traceparent` header, a ~300-byte JSON body) in batches of 500, against a redis-server you started
 * yourself (so its CPU is this run's alone), with the INFO cpu delta and this process's CPU time per
 * message. Used for ADR 0311 and docs/benchmarks.md (compare:redis-publish-script-0311).
 *
 *   redis-server --port 6390 --save '' --appendonly no &
 *   HERALD_BENCH_REDIS_URL=redis://127.0.0.1:6390 npx tsx bench/redis-publish.ts
 *
 * Environment: N (messages, default 50000), ROUNDS (3), SRC (comma-separated `src` directories of
 * the checkouts to measure, alternating within each round; default this one).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { removeKeys } from './redis-admin.js';
import type * as HeraldRedis from '../src/adapters/redis/index.js';
import type { Message } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const url = process.env.HERALD_BENCH_REDIS_URL;
if (!url) throw new Error('set HERALD_BENCH_REDIS_URL to a redis-server of your own');
const N = Number(process.env.N ?? 50_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const BATCH = 500;
const sources = (process.env.SRC ?? path.join(here, '..', 'src')).split(',');

const body = new TextEncoder().encode(
  JSON.stringify({
    orderId: 'o'.repeat(36),
    items: [{ sku: 'sku-1', qty: 2, price: 12.5 }],
    note: 'n'.repeat(200),
  }),
);
const batch = (from: number): Message[] =>
  Array.from({ length: BATCH }, (_, j) => ({
    id: `01936f3c-7a2b-7c3d-8e4f-${String(from + j).padStart(12, '0')}`,
    key: `agg-${(from + j) % 100}`,
    headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    body,
  }));

const admin = new Redis(url);
const serverCpuUs = async (): Promise<number> => {
  const info = await admin.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
};

const libs = await Promise.all(
  sources.map(
    async (src) =>
      (await import(
        pathToFileURL(path.join(src, 'adapters', 'redis', 'index.ts')).href
      )) as typeof HeraldRedis,
  ),
);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, lib] of libs.entries()) {
    const prefix = `herald-publish:${process.pid}:${round}:${i}`;
    const transport = lib.redis({ url, prefix });
    await transport.publish('warm-up', batch(0));
    const cpu = process.cpuUsage();
    const server = await serverCpuUs();
    const started = performance.now();
    for (let n = 0; n < N; n += BATCH) await transport.publish('t', batch(n));
    const elapsed = performance.now() - started;
    const client = process.cpuUsage(cpu);
    const serverUs = (await serverCpuUs()) - server;
    console.log(
      `round ${round + 1} ${sources[i]}: ${Math.round((N / elapsed) * 1000)} msg/s, client ${((client.user + client.system) / N).toFixed(2)} µs/msg, server ${(serverUs / N).toFixed(2)} µs/msg`,
    );
    await transport.close();
    await removeKeys(admin, prefix);
  }
}
admin.disconnect();
