/**
 * Where a Redis transport drain spends the server's CPU: drains a backlog through
 * `transport.subscribe` against a redis-server you started yourself (so its CPU is this run's alone)
 * and prints the INFO cpu delta and the INFO commandstats (commands run inside scripts included) per
 * message. Used for docs/benchmarks.md ("Redis: where the server CPU goes") and ADR 0307.
 *
 *   redis-server --port 6390 --save '' --appendonly no &
 *   HERALD_BENCH_REDIS_URL=redis://127.0.0.1:6390 npx tsx bench/redis-commandstats.ts
 *
 * Environment: N (messages, default 50000), PREFETCH (16), ORDERING (key|none), BUFFER (bufferSize),
 * SRC (the `src` directory of the checkout to measure, for before/after runs; default this one).
 *
 * Server instructions per message, independent of the machine's load: run the redis-server under
 * callgrind and pass its pid in SERVER_CALLGRIND_PID; the instructions it executed during the drain
 * (read with `callgrind_control -e Ir` before and after) are printed per message. Its cron (hz 10)
 * runs meanwhile too, a small share that grows with the drain's wall time.
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.redis redis-server --port 6392 --save '' --appendonly no &
 *   SERVER_CALLGRIND_PID=$! HERALD_BENCH_REDIS_URL=redis://127.0.0.1:6392 npx tsx bench/redis-commandstats.ts
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { removeKeys, serverInstructions } from './redis-admin.js';
import type * as HeraldRedis from '../src/adapters/redis/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = process.env.SRC ?? path.join(here, '..', 'src');
const url = process.env.HERALD_BENCH_REDIS_URL;
if (!url) throw new Error('set HERALD_BENCH_REDIS_URL to a redis-server of your own');
const N = Number(process.env.N ?? 50_000);
const prefetch = Number(process.env.PREFETCH ?? 16);
const ordering = (process.env.ORDERING ?? 'key') as 'key' | 'none';
const bufferSize = process.env.BUFFER !== undefined ? Number(process.env.BUFFER) : undefined;
const { redis } = (await import(
  pathToFileURL(path.join(src, 'adapters', 'redis', 'index.ts')).href
)) as typeof HeraldRedis;

const admin = new Redis(url);
const prefix = `herald-cmdstats:${process.pid}`;
const topic = 't';
const publisher = redis({ url, prefix });
const messages = Array.from({ length: N }, (_, i) => ({
  id: `t-${i}`,
  key: `agg-${i % 100}`,
  headers: {},
  body: Buffer.alloc(305, 'x'),
}));
for (let i = 0; i < N; i += 500) await publisher.publish(topic, messages.slice(i, i + 500));
await publisher.close();
await admin.xgroup('CREATE', `${prefix}:{${topic}}:s`, 'g', '0', 'MKSTREAM');

const serverCpuUs = async (): Promise<number> => {
  const info = await admin.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1e6;
};
const callgrindPid = process.env.SERVER_CALLGRIND_PID;
const serverIr = (): number => (callgrindPid ? serverInstructions(callgrindPid) : 0);
const transport = redis({ url, prefix, ...(bufferSize !== undefined ? { bufferSize } : {}) });
await admin.config('RESETSTAT');
const cpu0 = await serverCpuUs();
const ir0 = serverIr();
const started = performance.now();
const client0 = process.cpuUsage();
let count = 0;
let done!: () => void;
const finished = new Promise<void>((resolve) => (done = resolve));
const sub = await transport.subscribe(topic, { group: 'g', prefetch, ordering }, async (d) => {
  if (++count === N) done();
  await d.ack();
});
await finished;
const ms = performance.now() - started;
const client = process.cpuUsage(client0);
const ir1 = serverIr();
const cpu1 = await serverCpuUs();
const stats = await admin.info('commandstats');
await sub.close();
await transport.close();
console.log(
  `${Math.round((N / ms) * 1000)} msg/s; server CPU ${((cpu1 - cpu0) / N).toFixed(2)} µs/msg; ` +
    `client CPU ${((client.user + client.system) / N).toFixed(2)} µs/msg (user ${(client.user / N).toFixed(2)})` +
    (callgrindPid ? `; server ${Math.round((ir1 - ir0) / N).toLocaleString('en-US')} instructions/msg` : ''),
);
for (const line of stats.split('\n')) {
  const m = /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line);
  if (!m || m[1] === 'info' || m[1] === 'config') continue;
  const [calls, usec] = [Number(m[2]), Number(m[3])];
  console.log(
    `${m[1]!.padEnd(14)} calls/msg ${(calls / N).toFixed(3).padStart(7)}  µs/msg ${(usec / N).toFixed(2).padStart(6)}  µs/call ${(usec / calls).toFixed(1)}`,
  );
}
await removeKeys(admin, prefix);
admin.disconnect();
