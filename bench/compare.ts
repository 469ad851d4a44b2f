/**
 * Same-run comparison of two builds of Herald on the consumer hot path:
 * `node --import tsx bench/compare.ts <before-dir> <after-dir> [rounds]`, each directory a checkout
 * built with `npm run build`. Each measurement is its own process (a warm-up run, then 3 measured
 * runs of 20,000 events through the memory transport, concurrency 32, 64 aggregates, median);
 * before and after alternate within every round so load swings on a shared machine hit both alike.
 * Configurations: plain, `timeoutMs` on the subscription, and observability fully on (metrics,
 * tracing at 10 %, info logs) as in the `observability` case. Prints a Markdown table.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const N = 20_000;
const IN_FLIGHT = 200;
const RUNS = 3;
const CONFIGS = {
  plain: 'consumer, handler that does nothing',
  timeout: 'same with `timeoutMs: 5000`',
  observability: 'same with observability on (metrics + tracing 10 % + info logs)',
} as const;
type Config = keyof typeof CONFIGS;

interface Lib {
  createHerald(o: object): Promise<{
    subscribe(s: object): unknown;
    start(): Promise<void>;
    stop(): Promise<void>;
    publish(t: string, p: unknown, o: object): Promise<unknown>;
  }>;
  MemoryTransport: new () => object;
}

async function child(dir: string, config: Config): Promise<void> {
  const dist = pathToFileURL(path.join(dir, 'dist') + '/').href;
  const lib = (await import(`${dist}index.js`)) as Lib;
  const { Writable } = await import('node:stream');
  let plugin: object | undefined;
  if (config === 'observability') {
    const obs = (await import(`${dist}observability/index.js`)) as {
      createObservability(o: object): { plugin: object };
    };
    const discard = {
      export: (_s: unknown, cb: (r: { code: number }) => void) => cb({ code: 0 }),
      shutdown: async () => {},
    };
    plugin = obs.createObservability({
      serviceName: 'bench',
      tracing: { sampleRate: 0.1, exporter: discard, registerGlobal: false },
      logging: { level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }), pretty: false },
    }).plugin;
  }
  const once = async (): Promise<{ rate: number; cpuUs: number }> => {
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
      ...(config === 'timeout' ? { timeoutMs: 5000 } : {}),
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
  };
  await once();
  const runs: { rate: number; cpuUs: number }[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  process.stdout.write(
    JSON.stringify({ rate: median(runs.map((r) => r.rate)), cpuUs: median(runs.map((r) => r.cpuUs)) }),
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function main(): void {
  const [before, after, roundsArg] = process.argv.slice(2);
  if (!before || !after) {
    console.error('usage: node --import tsx bench/compare.ts <before-dir> <after-dir> [rounds]');
    process.exit(2);
  }
  const rounds = Number(roundsArg ?? 5);
  const results = new Map<string, { rate: number; cpuUs: number }[]>();
  for (let r = 0; r < rounds; r++) {
    for (const config of Object.keys(CONFIGS) as Config[]) {
      for (const [label, dir] of [
        ['before', before],
        ['after', after],
      ] as const) {
        const out = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1]!], {
          env: { ...process.env, HERALD_COMPARE_CHILD: `${config}:${path.resolve(dir)}` },
          encoding: 'utf8',
        });
        if (out.status !== 0) throw new Error(`child ${config} ${label} failed: ${out.stderr}`);
        const key = `${config}:${label}`;
        results.set(key, [
          ...(results.get(key) ?? []),
          JSON.parse(out.stdout) as { rate: number; cpuUs: number },
        ]);
        console.error(`round ${r + 1}/${rounds} ${key} ${out.stdout}`);
      }
    }
  }
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const cpu = os.cpus();
  console.log(
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? '?'}, Node ${process.version}, load average at end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(
    `Command: \`node --import tsx bench/compare.ts <before> <after> ${rounds}\`, run at ${new Date().toISOString()}\n`,
  );
  console.log(
    '| configuration | before events/s | after events/s | before CPU µs/event | after CPU µs/event | CPU after/before |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const config of Object.keys(CONFIGS) as Config[]) {
    const b = results.get(`${config}:before`)!;
    const a = results.get(`${config}:after`)!;
    const bc = median(b.map((x) => x.cpuUs));
    const ac = median(a.map((x) => x.cpuUs));
    console.log(
      `| ${CONFIGS[config]} | ${fmt(median(b.map((x) => x.rate)))} | ${fmt(median(a.map((x) => x.rate)))} | ${bc.toFixed(1)} | ${ac.toFixed(1)} | ${(ac / bc).toFixed(2)} |`,
    );
  }
}

const spec = process.env.HERALD_COMPARE_CHILD;
if (spec) {
  const i = spec.indexOf(':');
  await child(spec.slice(i + 1), spec.slice(0, i) as Config);
} else main();
