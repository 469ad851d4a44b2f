/**
 * Per-call overhead of the resilience policies next to cockatiel and opossum doing the same work in the
 * same process. Each case awaits a trivial async function through the policy, sequentially.
 *
 * Time: median of several timed rounds of many calls, after warm-up.
 * Memory: bytes allocated per call = heapUsed delta over a batch of calls, measured right after a forced
 * GC (gc() obtained at run time through `v8.setFlagsFromString('--expose-gc')`), with batches during
 * which a GC ran (seen through a `gc` PerformanceObserver) discarded; median of the kept batches.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  ConsecutiveBreaker,
  CountBreaker,
  ExponentialBackoff as CockatielBackoff,
  SamplingBreaker,
  TimeoutStrategy,
  bulkhead as cBulkhead,
  circuitBreaker as cBreaker,
  handleAll,
  retry as cRetry,
  timeout as cTimeout,
  wrap as cWrap,
} from 'cockatiel';
import OpossumBreaker from 'opossum';
import { Bulkhead, CircuitBreaker, Retry, Timeout, wrap } from '../../src/resilience/index.js';

type Case = { name: string; run: () => Promise<unknown> };

const work = async (): Promise<number> => 1;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const gcTimes: [number, number][] = [];
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcTimes.push([e.startTime, e.startTime + e.duration]);
});
observer.observe({ entryTypes: ['gc'] });

async function timeIt(c: Case, calls: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await c.run();
  return Number(process.hrtime.bigint() - start) / calls;
}

async function bytesPerCall(c: Case, calls: number, batches: number): Promise<number | undefined> {
  const kept: number[] = [];
  for (let b = 0; b < batches; b++) {
    gc();
    await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < calls; i++) await c.run();
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();
    await new Promise((r) => setImmediate(r)); // let the observer deliver entries
    const disturbed = gcTimes.some(([s, e]) => e >= t0 && s <= t1);
    if (!disturbed && after >= before) kept.push((after - before) / calls);
  }
  if (kept.length === 0) return undefined;
  kept.sort((x, y) => x - y);
  return kept[Math.floor(kept.length / 2)];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function measure(c: Case): Promise<{ ns: number; bytes: number | undefined }> {
  await timeIt(c, 20_000); // warm-up
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) rounds.push(await timeIt(c, 50_000));
  return { ns: median(rounds), bytes: await bytesPerCall(c, 1_000, 15) };
}

export async function run(): Promise<string> {
  // Breakers: the same state machine work on every side. herald's default is a count window of 10
  // calls opening at >= 50% failures once 5 calls are in; cockatiel's CountBreaker is the same design.
  // opossum only has a rolling time window, so it is compared in the time-window row, where each side
  // keeps 10 s of outcomes in 10 buckets.
  const hBreaker = new CircuitBreaker({ openDurationMs: 10_000 });
  const hTimeBreaker = new CircuitBreaker({
    openDurationMs: 10_000,
    window: { type: 'time', durationMs: 10_000, buckets: 10 },
  });
  const hRetry = new Retry({ maxRetries: 3 });
  const hBulkhead = new Bulkhead({ maxConcurrent: 10 });
  const hTimeout = new Timeout(1_000);
  const hPipeline = wrap(
    new Timeout(1_000),
    new Retry({ maxRetries: 3 }),
    new CircuitBreaker({ openDurationMs: 10_000 }),
    new Bulkhead({ maxConcurrent: 10 }),
  );
  const hTimeoutSignal = new Timeout(1_000);

  const countBreaker = () => new CountBreaker({ threshold: 0.5, size: 10, minimumNumberOfCalls: 5 });
  const cb = cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: countBreaker() });
  const cbTime = cBreaker(handleAll, {
    halfOpenAfter: 10_000,
    // minimumRps 0.5 over 10 s = the same 5-call minimum.
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 0.5 }),
  });
  const cbConsecutive = cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) });
  const cr = cRetry(handleAll, { maxAttempts: 3, backoff: new CockatielBackoff() });
  const cbh = cBulkhead(10, 0);
  const ct = cTimeout(1_000, TimeoutStrategy.Cooperative);
  const cPipeline = cWrap(
    cTimeout(1_000, TimeoutStrategy.Cooperative),
    cRetry(handleAll, { maxAttempts: 3, backoff: new CockatielBackoff() }),
    cBreaker(handleAll, { halfOpenAfter: 10_000, breaker: countBreaker() }),
    cBulkhead(10, 0),
  );
  // Latency percentiles off: no herald breaker here keeps latencies, so opossum should not either.
  const opossumOptions = {
    resetTimeout: 10_000,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
    rollingPercentilesEnabled: false,
    volumeThreshold: 5,
    errorThresholdPercentage: 50,
  };
  const ob = new OpossumBreaker(work, { ...opossumOptions, timeout: false });
  const obTimeout = new OpossumBreaker(work, { ...opossumOptions, timeout: 1_000 });

  const rows: [string, Case, Case | undefined, Case | undefined][] = [
    ['bare call (`await fn()`)', { name: 'bare', run: work }, undefined, undefined],
    [
      'circuit breaker, count window',
      { name: 'h', run: () => hBreaker.execute(work) },
      { name: 'c', run: () => cb.execute(work) },
      undefined,
    ],
    [
      'circuit breaker, 10 s time window',
      { name: 'h', run: () => hTimeBreaker.execute(work) },
      { name: 'c', run: () => cbTime.execute(work) },
      { name: 'o', run: () => ob.fire() },
    ],
    [
      'retry (no failure)',
      { name: 'h', run: () => hRetry.execute(work) },
      { name: 'c', run: () => cr.execute(work) },
      undefined,
    ],
    [
      'bulkhead',
      { name: 'h', run: () => hBulkhead.execute(work) },
      { name: 'c', run: () => cbh.execute(work) },
      undefined,
    ],
    [
      'timeout (fn ignores signal)',
      { name: 'h', run: () => hTimeout.execute(work) },
      { name: 'c', run: () => ct.execute(work) },
      { name: 'o', run: () => obTimeout.fire() },
    ],
    [
      'timeout (fn reads ctx.signal)',
      { name: 'h', run: () => hTimeoutSignal.execute(({ signal }) => (signal.aborted ? 0 : work())) },
      { name: 'c', run: () => ct.execute(({ signal }) => (signal.aborted ? 0 : work())) },
      undefined,
    ],
    [
      'timeout → retry → breaker → bulkhead',
      { name: 'h', run: () => hPipeline.execute(work) },
      { name: 'c', run: () => cPipeline.execute(work) },
      undefined,
    ],
  ];

  const fmtNs = (n: number) => `${Math.round(n).toLocaleString('en-US')} ns`;
  const fmtB = (b: number | undefined) => (b === undefined ? 'n/a' : `~${Math.round(b)} B`);
  const cell = (m?: { ns: number; bytes: number | undefined }) =>
    m ? `${fmtNs(m.ns)} / ${fmtB(m.bytes)}` : '—';
  const lines = ['| Case | herald | cockatiel | opossum |', '| --- | ---: | ---: | ---: |'];
  for (const [label, h, c, o] of rows) {
    const hm = await measure(h);
    const cm = c ? await measure(c) : undefined;
    const om = o ? await measure(o) : undefined;
    lines.push(`| ${label} | ${cell(hm)} | ${cell(cm)} | ${cell(om)} |`);
  }
  const consecutive = await measure({ name: 'c', run: () => cbConsecutive.execute(work) });
  observer.disconnect();
  ob.shutdown();
  obTimeout.shutdown();

  return [
    'Per-call overhead, time / bytes allocated per call (lower is better). Each cell: median of 7 rounds of',
    '50,000 sequential awaited calls after 20,000 warm-up calls. Bytes: `process.memoryUsage().heapUsed` delta over',
    'batches of 1,000 calls right after a forced GC (`gc` enabled at run time with `v8.setFlagsFromString`), batches',
    'overlapping a GC (seen by a `gc` PerformanceObserver) discarded, median of the rest; approximate (±50 B).',
    'The bare row is the cost of the awaited function itself, included in every other row. No call fails, so',
    'every row measures the closed / no-retry / free-slot path.',
    '',
    ...lines,
    '',
    'What each side does per call:',
    '',
    '- circuit breaker, count window: herald `new CircuitBreaker()` defaults (last 10 outcomes in a ring, opens at',
    '  ≥ 50% failures once 5 calls are in, no slow-call threshold, so no clock read: ADR 0104); cockatiel',
    '  `circuitBreaker(handleAll, { breaker: new CountBreaker({ threshold: 0.5, size: 10, minimumNumberOfCalls: 5 }) })`,',
    '  the same design. opossum has no count window. For reference, cockatiel with `ConsecutiveBreaker(5)` (a single',
    `  counter, no window) measured ${cell(consecutive)} in this run.`,
    '- circuit breaker, 10 s time window: herald `window: { type: "time", durationMs: 10_000, buckets: 10 }` (one',
    '  clock read per call, when the outcome lands in its bucket); cockatiel `SamplingBreaker({ threshold: 0.5,',
    '  duration: 10_000, minimumRps: 0.5 })` (10 one-second windows, `Date.now()` per call); opossum',
    '  `new CircuitBreaker(fn, { timeout: false, rollingCountTimeout: 10_000, rollingCountBuckets: 10,',
    '  rollingPercentilesEnabled: false, volumeThreshold: 5, errorThresholdPercentage: 50 })` (it also times every call',
    '  and emits `fire`/`success` events by design).',
    '- retry: herald `Retry({ maxRetries: 3 })`, cockatiel `retry(handleAll, { maxAttempts: 3, backoff:',
    '  ExponentialBackoff })`; both exponential backoff, the first attempt succeeds.',
    '- bulkhead: herald `Bulkhead({ maxConcurrent: 10 })` (no queue), cockatiel `bulkhead(10, 0)`.',
    '- timeout: herald `Timeout(1000)` (cooperative), cockatiel `timeout(1000, Cooperative)`, opossum the time-window',
    "  breaker above with `timeout: 1000` (its breaker plus its timer). herald's timeout shares one deadline timer per",
    '  policy (ADR 0100) and creates the AbortController only when the function reads `ctx.signal` (ADR 0101).',
    '- pipeline: the same four policies on both sides, cockatiel with the CountBreaker above.',
  ].join('\n');
}
