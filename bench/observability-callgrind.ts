/**
 * Instructions per event that observability adds to the memory-transport pipeline, counted by
 * callgrind so the figure does not move with the machine's load (issue #18, ADR 0407).
 *
 *   npx tsc -p tsconfig.build.json        # the library is the compiled dist/ (see below)
 *   node --import tsx bench/observability-callgrind.ts [config ...]
 *
 * For each configuration (default: all of {@link CONFIGS}) it runs two child processes under
 * `valgrind --tool=callgrind` and `node --predictable`: each runs the same warm-up phase, then a
 * measured phase of n1 or n2 events on the same Herald, with a full GC before and after it;
 * (Ir(n2) − Ir(n1)) / (n2 − n1) is the per-event count with start-up, module loading and most JIT
 * compiling cancelled out. Printed as a Markdown table with the extra instructions over `off`.
 *
 * The pipeline is the README configuration of `bench/cases/pipeline.ts` (an event with a zod
 * schema, one group at concurrency 16 ordered by 100 aggregates, ~300-byte JSON payloads, 200
 * outstanding publishes, a handler that does nothing). Observability is configured as in
 * `bench/cases/observability.ts`: metrics, tracing sampled at 10 % through the batch processor into
 * a discarding exporter, pino at info into a discarded stream.
 *
 * Each row also leaves out the instructions under V8's compile entry points and under
 * `Heap::CollectGarbage` (inclusive, from `callgrind_annotate`), the two parts that move between
 * runs of the same code. Scavenger work run as a platform job is not always attributed under
 * `CollectGarbage`, so that column can still hold some collector work (ADR 0408 classifies self
 * costs by name for that). `HERALD_BENCH_REPEATS=k` repeats each configuration and prints the
 * median and range; `HERALD_BENCH_WARM_UP` changes the warm-up.
 *
 * `HERALD_BENCH_DIST=<dir>` measures another build (e.g. a commit's `src` compiled elsewhere) for
 * before/after pairs; `HERALD_BENCH_KEEP=<dir>` keeps the callgrind output files there for
 * `callgrind_annotate`; `HERALD_BENCH_SIZES=n1,n2` changes the sizes.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countInstructions } from './callgrind.js';
import { orderPayload, orderSchema } from './readme-workload.js';
import type * as HeraldLib from '../src/index.js';
import type * as ObservabilityLib from '../src/observability/index.js';

type Lib = typeof HeraldLib;
type ObsLib = typeof ObservabilityLib;

const here = path.dirname(fileURLToPath(import.meta.url));
const IN_FLIGHT = 200;
const AGGREGATES = 100;
const CONCURRENCY = 16;
/**
 * Long enough that the sampled path (one event in ten) is compiled before the measured phase: with
 * 5,000 (and a new Herald per phase) the SDK's span code was still being optimised during it,
 * which added ≈ 25,000 instructions of TurboFan work per event to the difference of the two sizes.
 */
const WARM_UP = Number(process.env.HERALD_BENCH_WARM_UP ?? 10_000);
const [N1, N2] = (process.env.HERALD_BENCH_SIZES ?? '2000,10000').split(',').map(Number) as [number, number];

export const CONFIGS = {
  off: 'everything off',
  on: 'everything on: metrics + tracing (10% sampled) + pino info logs',
  'on-no-als': 'everything on, tracing with `contextManager: false`',
  metrics: 'metrics only',
  logging: 'logging only (info)',
  tracing: 'tracing only (10% sampled)',
  'tracing-no-als': 'tracing only, `contextManager: false`',
  // For splitting tracing into its parts: at 0 % nothing is sampled, so no span is made and no
  // context is ever entered (the AsyncLocalStorage never turns on): what remains is the unsampled
  // decision, the traceparent and the consumer's flag check.
  'tracing-0': 'tracing only, 0% sampled (unsampled path alone)',
  'tracing-100-no-als': 'tracing only, 100% sampled, `contextManager: false`',
} as const;
type Config = keyof typeof CONFIGS;

/**
 * One Herald for the warm-up and the measured phase: a new Herald (and a new handler closure) per
 * phase deoptimised the consumer at every start ("wrong call target"), so part of the optimising
 * compiler's work landed in the measured phase, and differently for each size.
 */
async function run(plugin: HeraldLib.HeraldPlugin | undefined, lib: Lib, n: number): Promise<void> {
  const OrderPlaced = lib.defineEvent('shop.order.placed', { version: 'v1', schema: orderSchema });
  const herald = await lib.createHerald({
    service: 'bench',
    transport: new lib.MemoryTransport(),
    plugins: plugin ? [plugin] : [],
  });
  let handled = 0;
  let target = 0;
  let done: () => void = () => undefined;
  herald.subscribe({
    group: 'bench',
    events: [OrderPlaced],
    concurrency: CONCURRENCY,
    handler: () => {
      if (++handled === target) done();
    },
  });
  await herald.start();
  let next = 0;
  const phase = async (count: number): Promise<void> => {
    target = handled + count;
    const all = new Promise<void>((r) => (done = r));
    const end = next + count;
    while (next < end) {
      const batch: Promise<unknown>[] = [];
      for (const stop = Math.min(end, next + IN_FLIGHT); next < stop; next++)
        batch.push(
          herald.publish(OrderPlaced, orderPayload(next), { aggregateId: `agg-${next % AGGREGATES}` }),
        );
      await Promise.all(batch);
    }
    await all;
  };
  const gc = (globalThis as { gc?: () => void }).gc!;
  await phase(WARM_UP);
  // A full collection on either side of the measured phase: both sizes start from the same heap,
  // and the garbage of the phase is collected (and counted) in full, not left for whenever the
  // next collection happens to fall.
  gc();
  await phase(n);
  gc();
  await herald.stop();
}

async function child(config: Config, n: number): Promise<void> {
  const dist = process.env.HERALD_BENCH_DIST ?? path.join(here, '..', 'dist');
  const lib = (await import(pathToFileURL(path.join(dist, 'index.js')).href)) as Lib;
  const obsLib = (await import(pathToFileURL(path.join(dist, 'observability', 'index.js')).href)) as ObsLib;
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const exporter = {
    export: (_spans: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }),
    shutdown: async () => undefined,
  };
  const on = config.startsWith('on');
  const metrics = on || config === 'metrics';
  const tracing = on || config.startsWith('tracing');
  const sampleRate = config === 'tracing-0' ? 0 : config.startsWith('tracing-100') ? 1 : 0.1;
  const logging = on || config === 'logging';
  const plugin =
    config === 'off'
      ? undefined
      : obsLib.createObservability({
          serviceName: 'bench',
          metrics,
          tracing: tracing
            ? {
                sampleRate,
                exporter,
                registerGlobal: false,
                contextManager: !config.endsWith('no-als'),
              }
            : false,
          logging: logging ? { level: 'info', destination: sink, pretty: false } : false,
        }).plugin;
  await run(plugin, lib, n);
}

/** Instructions (Ir) of one child under callgrind: in all, and the parts spent compiling and collecting. */
interface Count {
  readonly all: number;
  /** TurboFan jobs, lazy (bytecode) compiles and baseline batches, inclusive. */
  readonly compiling: number;
  /** `Heap::CollectGarbage`, inclusive: scavenges and full collections (the forced ones too). */
  readonly gc: number;
}

/**
 * Inclusive costs of the functions under which V8 compiles or collects. These are the two parts
 * that move between runs of the same code (ADR 0407); the rest is the steady figure to compare.
 * Disjoint in practice: under `--predictable` nothing is compiled inside a collection, and a
 * collection inside a compile job is rare.
 */
const COMPILING = [
  'v8::internal::compiler::PipelineCompilationJob::ExecuteJobImpl(',
  'v8::internal::compiler::PipelineCompilationJob::FinalizeJobImpl(',
  'v8::internal::Runtime_CompileLazy(',
  'v8::internal::BaselineBatchCompiler::CompileBatch(',
];
const GC = ['v8::internal::Heap::CollectGarbage('];

function inclusive(file: string): { compiling: number; gc: number } {
  const out = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (out.status !== 0) throw new Error(`callgrind_annotate failed: ${out.stderr}`);
  const sum = (names: readonly string[]): number => {
    let total = 0;
    for (const line of out.stdout.split('\n')) {
      // "  1,234 (12.3%)  ???:v8::internal::Heap::CollectGarbage(...) [/usr/bin/node]"; recursive
      // entries carry a '2 suffix and are left out so nothing is counted twice.
      const m = /^\s*([\d,]+)\s+\([^)]*\)\s+\S*?:(.*)$/u.exec(line);
      if (m && names.some((n) => m[2]!.startsWith(n)) && !/\)'\d/u.test(m[2]!))
        total += Number(m[1]!.replaceAll(',', ''));
    }
    return total;
  };
  return { compiling: sum(COMPILING), gc: sum(GC) };
}

function instructions(config: Config, n: number): Count {
  const { total, inspected } = countInstructions(
    {
      script: fileURLToPath(import.meta.url),
      label: `${config}.${n}`,
      env: { HERALD_BENCH_OBS_CG_CHILD: config, HERALD_BENCH_OBS_CG_N: String(n) },
    },
    inclusive,
  );
  return { all: total, ...inspected! };
}

const childConfig = process.env.HERALD_BENCH_OBS_CG_CHILD as Config | undefined;
if (childConfig !== undefined) {
  await child(childConfig, Number(process.env.HERALD_BENCH_OBS_CG_N));
} else {
  const wanted = process.argv.slice(2) as Config[];
  const configs = wanted.length > 0 ? wanted : (Object.keys(CONFIGS) as Config[]);
  for (const c of configs) if (!(c in CONFIGS)) throw new Error(`unknown configuration ${c}`);
  // HERALD_BENCH_REPEATS=k measures each configuration k times (one after the other), so the
  // spread between runs of the same code is printed beside the differences between configurations.
  const repeats = Number(process.env.HERALD_BENCH_REPEATS ?? 1);
  const perEvent = new Map<Config, Count[]>();
  for (let r = 0; r < repeats; r++) {
    for (const c of configs) {
      const a = instructions(c, N1);
      const b = instructions(c, N2);
      const d = (k: keyof Count): number => (b[k] - a[k]) / (N2 - N1);
      const count: Count = { all: d('all'), compiling: d('compiling'), gc: d('gc') };
      perEvent.set(c, [...(perEvent.get(c) ?? []), count]);
      process.stderr.write(
        `${c}: ${Math.round(count.all)} per event (compiling ${Math.round(count.compiling)}, gc ${Math.round(count.gc)}, rest ${Math.round(steady(count))})\n`,
      );
    }
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const median = (xs: number[]): number => {
    const s = [...xs].sort((p, q) => p - q);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const col = (c: Config, f: (x: Count) => number): string => {
    const xs = perEvent.get(c)!.map(f);
    const off = perEvent.get('off')?.map(f);
    const m = median(xs);
    const range = xs.length > 1 ? ` [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]` : '';
    const extra =
      off === undefined || c === 'off'
        ? ''
        : ` (${m - median(off) >= 0 ? '+' : '−'}${fmt(Math.abs(m - median(off)))})`;
    return `${fmt(m)}${extra}${range}`;
  };
  process.stdout.write(
    [
      `| configuration | all | excl. compiling | excl. compiling and GC |`,
      `| --- | ---: | ---: | ---: |`,
      ...configs.map(
        (c) =>
          `| ${CONFIGS[c]} | ${col(c, (x) => x.all)} | ${col(c, (x) => x.all - x.compiling)} | ${col(c, steady)} |`,
      ),
      '',
      `Instructions per event, ${repeats === 1 ? 'one run' : `median of ${repeats} runs [min–max]`}; (± over off).`,
      '',
    ].join('\n'),
  );
}

/** The figure that stays put between runs of the same code: without compiling and collecting. */
function steady(x: Count): number {
  return x.all - x.compiling - x.gc;
}
