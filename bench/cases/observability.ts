/**
 * Cost of full observability on the memory transport's end-to-end rate: publish N events, wait
 * until all are handled; everything off vs metrics + tracing (10% sampled, batch processor with a
 * discarding exporter) + info logging to a discarded stream. Same process, same run.
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createHerald, MemoryTransport, type HeraldPlugin } from '../../src/index.js';
import { createObservability } from '../../src/observability/index.js';

const N = 20_000;
const IN_FLIGHT = 200;
const ROUNDS = 5;

class DiscardExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (r: { code: ExportResultCode }) => void): void {
    this.spans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
}

async function once(plugin: HeraldPlugin | undefined): Promise<{ rate: number; cpuUs: number }> {
  const herald = await createHerald({
    service: 'bench',
    transport: new MemoryTransport(),
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

/** One configuration in this process: a warm-up, then one measured run; prints the rate. */
async function child(mode: 'on' | 'off'): Promise<void> {
  const exporter = new DiscardExporter();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const plugin = (): HeraldPlugin | undefined =>
    mode === 'off'
      ? undefined
      : createObservability({
          serviceName: 'bench',
          metrics: true,
          tracing: { sampleRate: 0.1, exporter, registerGlobal: false },
          logging: { level: 'info', destination: sink, pretty: false },
        }).plugin;
  await once(plugin());
  const { rate, cpuUs } = await once(plugin());
  process.stdout.write(JSON.stringify({ rate, cpuUs, spans: exporter.spans }));
}

/**
 * Each measurement runs in its own process, alternating off/on: tracing installs a process-wide
 * AsyncLocalStorage context manager, which would otherwise tax the "off" runs that follow, and
 * alternating spreads the machine's load swings over both sides.
 */
function spawnChild(mode: 'on' | 'off'): { rate: number; cpuUs: number; spans: number } {
  const out = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, HERALD_BENCH_OBS_CHILD: mode },
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`bench child (${mode}) failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as { rate: number; cpuUs: number; spans: number };
}

export async function run(): Promise<string> {
  const off: number[] = [];
  const on: number[] = [];
  const offCpu: number[] = [];
  const onCpu: number[] = [];
  let spans = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const a = spawnChild('off');
    off.push(a.rate);
    offCpu.push(a.cpuUs);
    const b = spawnChild('on');
    on.push(b.rate);
    onCpu.push(b.cpuUs);
    spans += b.spans;
  }
  const ratio = median(on) / median(off);
  const cpuRatio = median(offCpu) / median(onCpu);
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  return [
    `Memory transport, ${N.toLocaleString('en-US')} events published (${IN_FLIGHT} outstanding publishes), consumer concurrency 32, ordered by 64 aggregates. ${ROUNDS} rounds, each configuration in its own process (warm-up run, then the measured run), off and on alternating; medians compared.`,
    '',
    '| configuration | end-to-end events/s (median) | rounds | CPU µs per event (median) |',
    '| --- | ---: | --- | ---: |',
    `| everything off | ${fmt(median(off))} | ${off.map(fmt).join(', ')} | ${median(offCpu).toFixed(1)} |`,
    `| metrics + tracing (10% sampled, batch processor, discarding exporter) + pino info to a discarded stream | ${fmt(median(on))} | ${on.map(fmt).join(', ')} | ${median(onCpu).toFixed(1)} |`,
    '',
    `Ratio on/off by wall-clock rate: **${ratio.toFixed(3)}** (loss ${((1 - ratio) * 100).toFixed(1)}%); by CPU time per event: **${cpuRatio.toFixed(3)}** (loss ${((1 - cpuRatio) * 100).toFixed(1)}%). Goal: under 5%. CPU time is the steadier figure on a shared machine. Spans exported (warm-up + measured on-runs): ${spans.toLocaleString('en-US')}.`,
  ].join('\n');
}

const childMode = process.env.HERALD_BENCH_OBS_CHILD;
if (childMode === 'on' || childMode === 'off') await child(childMode);
