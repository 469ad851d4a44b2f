/**
 * The in-process cost of Herald's publish → consume pipeline on the memory transport, in the README
 * configuration: `createHerald`, an event defined with a zod schema, one group at concurrency 16
 * ordered by aggregate (100 aggregates), ~300-byte JSON payloads, a handler that does nothing.
 *
 * - pipeline: publishing (200 outstanding publishes, a turn of the event loop after each batch) while
 *   the group consumes, until all are handled;
 * - backlog: N events published before the group starts, then drained;
 * - paced: a fixed publish rate (below capacity) held for a while: CPU per event at steady state;
 * - memory: heap retained per queued event (backlog, after a full GC);
 * - instructions: callgrind's instruction count per event of the pipeline run, (Ir(n2) − Ir(n1)) /
 *   (n2 − n1) after the same warm-up run, so start-up and most JIT compiling cancel out. This is the
 *   figure to trust on a shared machine. Compiling is not over after the warm-up, though, and how
 *   much of it lands between the two sizes differs from build to build (5,000 to 20,000 instructions
 *   per event), so a second figure repeats the same run: (Ir(4 runs) − Ir(1 run)) / (3 × n), which
 *   counts three further runs of a warm process, garbage collection of the same heap sizes included.
 *
 * The library is the compiled `dist/` (built first, as in the observability case: tsx's keepNames
 * transform taxes closures). `HERALD_BENCH_DIST=<dir>` measures another build instead, e.g. a
 * commit's `src` compiled elsewhere, which is how a before/after pair is taken in one session.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countInstructions } from '../callgrind.js';
import { orderPayload, orderSchema } from '../readme-workload.js';
import type * as HeraldLib from '../../src/index.js';

type Lib = typeof HeraldLib;

const N = 40_000;
const IN_FLIGHT = 200;
const AGGREGATES = 100;
const CONCURRENCY = 16;
const PACED_RATE = 20_000;
const PACED_SECONDS = 3;
const ROUNDS = 3;
const CALLGRIND_SIZES = [2_000, 10_000] as const;
const CALLGRIND_WARM_UP = 5_000;
/** The steady figure: runs of CALLGRIND_REPEAT_N events after the warm-up, 1 and then 4 of them. */
const CALLGRIND_REPEATS = [1, 4] as const;
const CALLGRIND_REPEAT_N = 10_000;

const here = path.dirname(fileURLToPath(import.meta.url));

async function setup(
  lib: Lib,
  n: number,
  onAll: () => void,
): Promise<{ herald: Awaited<ReturnType<Lib['createHerald']>>; publish: (i: number) => Promise<unknown> }> {
  const OrderPlaced = lib.defineEvent('shop.order.placed', { version: 'v1', schema: orderSchema });
  const herald = await lib.createHerald({ service: 'bench', transport: new lib.MemoryTransport() });
  let handled = 0;
  herald.subscribe({
    group: 'bench',
    events: [OrderPlaced],
    concurrency: CONCURRENCY,
    handler: () => {
      if (++handled === n) onAll();
    },
  });
  return {
    herald,
    publish: (i) => herald.publish(OrderPlaced, orderPayload(i), { aggregateId: `agg-${i % AGGREGATES}` }),
  };
}

interface Measured {
  rate: number;
  cpuUs: number;
  heapPerEvent?: number;
}

async function pipeline(lib: Lib, n: number): Promise<Measured> {
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const { herald, publish } = await setup(lib, n, done);
  await herald.start();
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i += IN_FLIGHT) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + IN_FLIGHT); j++) batch.push(publish(j));
    await Promise.all(batch);
    // The memory transport's publish resolves at once, so without a turn of the event loop the
    // group (pumped from setImmediate) would handle nothing until every event is published and the
    // run would be a second backlog. A producer on a real broker waits for I/O here.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await all;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await herald.stop();
  return { rate: n / seconds, cpuUs: (cpu.user + cpu.system) / n };
}

/** Heap plus ArrayBuffer memory (bodies live outside the JS heap). */
function retained(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function backlog(lib: Lib, n: number): Promise<Measured> {
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const { herald, publish } = await setup(lib, n, done);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap0 = retained();
  for (let i = 0; i < n; i += IN_FLIGHT) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + IN_FLIGHT); j++) batch.push(publish(j));
    await Promise.all(batch);
  }
  gc?.();
  const heapPerEvent = (retained() - heap0) / n;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await herald.start();
  await all;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await herald.stop();
  return { rate: n / seconds, cpuUs: (cpu.user + cpu.system) / n, heapPerEvent };
}

/** Publishes PACED_RATE events a second in 10 ms ticks; CPU per event over the whole span. */
async function paced(lib: Lib): Promise<Measured> {
  const n = PACED_RATE * PACED_SECONDS;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const { herald, publish } = await setup(lib, n, done);
  await herald.start();
  const perTick = PACED_RATE / 100;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let sent = 0;
  while (sent < n) {
    const due = Math.min(n, Math.floor(((performance.now() - started) / 1000) * PACED_RATE) + perTick);
    const batch: Promise<unknown>[] = [];
    while (sent < due) batch.push(publish(sent++));
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 10));
  }
  await all;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await herald.stop();
  return { rate: n / seconds, cpuUs: (cpu.user + cpu.system) / n };
}

async function loadLib(): Promise<Lib> {
  const dist = process.env.HERALD_BENCH_DIST ?? path.join(here, '..', '..', 'dist');
  return (await import(pathToFileURL(path.join(dist, 'index.js')).href)) as Lib;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One kind of run in this process: a warm-up, then three measured runs; prints their medians. */
async function child(kind: string): Promise<void> {
  const lib = await loadLib();
  if (kind === 'callgrind') {
    // The same warm-up before either size, so the JIT's compiling mostly happens before and the
    // difference of the two counts is the steady pipeline's.
    await pipeline(lib, CALLGRIND_WARM_UP);
    const repeats = Number(process.env.HERALD_BENCH_PIPELINE_REPEATS ?? 1);
    for (let r = 0; r < repeats; r++) await pipeline(lib, Number(process.env.HERALD_BENCH_PIPELINE_N));
    return;
  }
  const once = (): Promise<Measured> =>
    kind === 'pipeline' ? pipeline(lib, N) : kind === 'backlog' ? backlog(lib, N) : paced(lib);
  await once();
  const runs: Measured[] = [];
  for (let i = 0; i < 3; i++) runs.push(await once());
  process.stdout.write(
    JSON.stringify({
      rate: median(runs.map((r) => r.rate)),
      cpuUs: median(runs.map((r) => r.cpuUs)),
      heapPerEvent:
        runs[0]!.heapPerEvent === undefined ? undefined : median(runs.map((r) => r.heapPerEvent!)),
    }),
  );
}

function spawnChild(kind: string): string {
  const out = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)],
    {
      env: { ...process.env, HERALD_BENCH_PIPELINE_CHILD: kind },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (out.status !== 0) throw new Error(`bench child (${kind}) failed: ${out.stderr}`);
  return out.stdout;
}

/** Total instructions (Ir) of `repeats` pipeline runs of n events each under callgrind. */
function instructions(n: number, repeats = 1): number {
  return countInstructions({
    script: fileURLToPath(import.meta.url),
    label: `pipeline.${n}x${repeats}`,
    env: {
      HERALD_BENCH_PIPELINE_CHILD: 'callgrind',
      HERALD_BENCH_PIPELINE_N: String(n),
      HERALD_BENCH_PIPELINE_REPEATS: String(repeats),
    },
  }).total;
}

function build(): void {
  if (process.env.HERALD_BENCH_DIST) return;
  const out = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`tsc failed:\n${out.stdout}\n${out.stderr}`);
}

export async function run(): Promise<string> {
  build();
  const kinds = ['pipeline', 'backlog', 'paced'] as const;
  const results = new Map<string, Measured[]>(kinds.map((k) => [k, []]));
  // Kinds alternate within each round so the machine's load swings spread over all of them.
  for (let r = 0; r < ROUNDS; r++)
    for (const k of kinds) results.get(k)!.push(JSON.parse(spawnChild(k)) as Measured);
  const [n1, n2] = CALLGRIND_SIZES;
  const atN2 = instructions(n2);
  const perEvent = (atN2 - instructions(n1)) / (n2 - n1);
  const [r1, r2] = CALLGRIND_REPEATS;
  // One run of n2 events is the steady figure's first count when the sizes agree.
  const once = r1 === 1 && CALLGRIND_REPEAT_N === n2 ? atN2 : instructions(CALLGRIND_REPEAT_N, r1);
  const steady = (instructions(CALLGRIND_REPEAT_N, r2) - once) / ((r2 - r1) * CALLGRIND_REPEAT_N);
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const rows = kinds.map((k) => {
    const list = results.get(k)!;
    const heap = list[0]!.heapPerEvent === undefined ? '' : fmt(median(list.map((x) => x.heapPerEvent!)));
    return `| ${k} | ${fmt(median(list.map((x) => x.rate)))} | ${median(list.map((x) => x.cpuUs)).toFixed(2)} | ${heap} |`;
  });
  return [
    `Memory transport, README configuration: \`createHerald\`, \`defineEvent\` with a zod schema, one group at concurrency ${CONCURRENCY} ordered by aggregate (${AGGREGATES} aggregates), ~300-byte JSON payloads, a handler that does nothing. pipeline: ${N.toLocaleString('en-US')} events published with ${IN_FLIGHT} outstanding publishes and a turn of the event loop after each batch, while the group consumes; backlog: the same events published first, then drained (memory: heap and ArrayBuffer bytes retained per queued event after a full GC); paced: ${PACED_RATE.toLocaleString('en-US')} events/s for ${PACED_SECONDS} s. Each kind runs in its own process (a warm-up, then 3 runs, median) ${ROUNDS} times, alternating; medians shown. The library is the compiled \`dist/\`${process.env.HERALD_BENCH_DIST ? ` at \`${process.env.HERALD_BENCH_DIST}\`` : ''}.`,
    '',
    '| run | events/s | CPU µs per event | bytes per queued event (heap + ArrayBuffers) |',
    '| --- | ---: | ---: | ---: |',
    ...rows,
    '',
    `Instructions per event (callgrind under \`node --predictable\`, the pipeline run after a ${CALLGRIND_WARM_UP.toLocaleString('en-US')}-event warm-up, (Ir(${n2.toLocaleString('en-US')}) − Ir(${n1.toLocaleString('en-US')})) / ${(n2 - n1).toLocaleString('en-US')}): ${fmt(perEvent)}; steady, after the same warm-up, (Ir(${r2} runs) − Ir(${r1} run)) of ${CALLGRIND_REPEAT_N.toLocaleString('en-US')} events / ${((r2 - r1) * CALLGRIND_REPEAT_N).toLocaleString('en-US')}: ${fmt(steady)}.`,
  ].join('\n');
}

const childKind = process.env.HERALD_BENCH_PIPELINE_CHILD;
if (childKind !== undefined) await child(childKind);
