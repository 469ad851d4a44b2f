import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Bulkhead,
  BulkheadRejectedError,
  CircuitBreaker,
  ExponentialBackoff,
  Fallback,
  Hedge,
  ManualClock,
  RateLimitedError,
  ResilienceError,
  Retry,
  RetryExhaustedError,
  Timeout,
  TimeoutError,
  flush,
  wrap,
  type RetryEvent,
} from '../../src/resilience/index.js';

describe('ExponentialBackoff', () => {
  test('none: initial × multiplier^n capped at maxDelay', () => {
    const b = new ExponentialBackoff({ initialDelayMs: 100, multiplier: 2, maxDelayMs: 500, jitter: 'none' });
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => b.delay(n, 0, Math.random)),
      [100, 200, 400, 500, 500],
    );
  });
  test('full jitter scales the exponential delay by the random draw', () => {
    const b = new ExponentialBackoff({ initialDelayMs: 100, jitter: 'full' });
    assert.equal(
      b.delay(3, 0, () => 0.5),
      200,
    );
    assert.equal(
      b.delay(3, 0, () => 0),
      0,
    );
  });
  test('decorrelated jitter stays in [initial, min(max, previous × 3)]', () => {
    const b = new ExponentialBackoff({ initialDelayMs: 100, maxDelayMs: 1_000, jitter: 'decorrelated' });
    assert.equal(
      b.delay(1, 100, () => 0),
      100,
    );
    assert.equal(b.delay(2, 200, () => 0.999999) <= 600, true);
    assert.equal(
      b.delay(5, 900, () => 0.99),
      1_000,
    );
  });
  test('bad config names the field', () => {
    assert.throws(
      () => new ExponentialBackoff({ multiplier: 0.5 }),
      /Retry.multiplier: must be a number >= 1, got 0.5/,
    );
    assert.throws(() => new ExponentialBackoff({ initialDelayMs: 10, maxDelayMs: 5 }), /maxDelayMs/);
  });
});

describe('Retry', () => {
  test('retries with backoff delays on the clock and reports onRetry', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock, jitter: 'none' });
    const events: RetryEvent[] = [];
    retry.onRetry((e) => events.push(e));
    let calls = 0;
    const p = retry.execute(({ attempt }) => {
      calls++;
      if (attempt < 3) throw new Error(`fail ${attempt}`);
      return 'done';
    });
    await flush();
    assert.equal(calls, 1);
    await clock.advance(99);
    assert.equal(calls, 1);
    await clock.advance(1);
    assert.equal(calls, 2);
    await clock.advance(200);
    assert.equal(await p, 'done');
    assert.deepEqual(
      events.map((e) => [e.attempt, e.delayMs]),
      [
        [1, 100],
        [2, 200],
      ],
    );
  });

  test('defaults: 3 retries then RetryExhaustedError with the last error as cause', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock });
    let calls = 0;
    const p = retry.execute(() => {
      calls++;
      throw new Error(`fail ${calls}`);
    });
    const check = assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof RetryExhaustedError);
      assert.ok(e instanceof ResilienceError);
      assert.equal(e.code, 'HERALD_RETRY_EXHAUSTED');
      assert.equal(e.attempts, 4);
      assert.equal((e.cause as Error).message, 'fail 4');
      return true;
    });
    await clock.advance(60_000);
    await check;
    assert.equal(calls, 4);
  });

  test('retryOn false rethrows the original error at once', async () => {
    const retry = new Retry({ retryOn: (e) => !(e instanceof TypeError) });
    let calls = 0;
    await assert.rejects(
      retry.execute(() => {
        calls++;
        throw new TypeError('bug');
      }),
      TypeError,
    );
    assert.equal(calls, 1);
  });

  test('retryOnResult retries results and returns the last one when exhausted', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock, maxRetries: 2, retryOnResult: (r) => r === 503 });
    let calls = 0;
    const p = retry.execute(() => (++calls === 3 ? 503 : 503));
    await clock.advance(60_000);
    assert.equal(await p, 503);
    assert.equal(calls, 3);
    const ok = new Retry({ clock, retryOnResult: (r) => r === 503 });
    let n = 0;
    const q = ok.execute(() => (++n < 2 ? 503 : 200));
    await clock.advance(60_000);
    assert.equal(await q, 200);
  });

  test('maxElapsedMs stops before a delay that would overrun the budget', async () => {
    const clock = new ManualClock();
    const retry = new Retry({
      clock,
      maxRetries: 10,
      jitter: 'none',
      initialDelayMs: 100,
      maxElapsedMs: 350,
    });
    let calls = 0;
    const p = retry.execute(() => {
      calls++;
      throw new Error('x');
    });
    const check = assert.rejects(
      p,
      (e: unknown) => e instanceof RetryExhaustedError && /maxElapsedMs/.test(e.message),
    );
    await clock.advance(10_000);
    await check;
    assert.equal(calls, 3, '0 → 100 → 300; the next delay (400) would end at 700 > 350');
  });

  test('honours retryAfterMs on errors (e.g. RateLimitedError) and delayFor', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock, jitter: 'none' });
    let calls = 0;
    const p = retry.execute(() => {
      if (++calls === 1) throw new RateLimitedError('api', 2_500);
      return calls;
    });
    await clock.advance(2_499);
    assert.equal(calls, 1);
    await clock.advance(1);
    assert.equal(await p, 2);
    const custom = new Retry({ clock, delayFor: () => 7 });
    const delays: number[] = [];
    custom.onRetry((e) => delays.push(e.delayMs));
    let k = 0;
    const q = custom.execute(() => {
      if (++k < 2) throw new Error('x');
      return k;
    });
    await clock.advance(7);
    assert.equal(await q, 2);
    assert.deepEqual(delays, [7]);
  });

  test('abort mid-retry (during the backoff delay) stops at once with the abort reason', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock, jitter: 'none', initialDelayMs: 1_000 });
    const ac = new AbortController();
    let calls = 0;
    const p = retry.execute(
      () => {
        calls++;
        throw new Error('x');
      },
      { signal: ac.signal },
    );
    await clock.advance(500);
    ac.abort(new Error('shutdown'));
    await assert.rejects(p, /shutdown/);
    await clock.advance(10_000);
    assert.equal(calls, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  test('a first attempt that rejects asynchronously is retried; attempts are numbered', async () => {
    const clock = new ManualClock();
    const retry = new Retry({ clock, jitter: 'none', initialDelayMs: 10 });
    const attempts: number[] = [];
    const p = retry.execute(async ({ attempt }) => {
      attempts.push(attempt);
      await Promise.resolve();
      if (attempt === 1) throw new Error('async fail');
      return 'ok';
    });
    await clock.advance(10);
    assert.equal(await p, 'ok');
    assert.deepEqual(attempts, [1, 2]);
  });

  test('a first attempt failing with a non-retryable error gives up with that error and the reason', async () => {
    const retry = new Retry({ retryOn: () => false });
    const reasons: string[] = [];
    retry.onGiveUp((e) => reasons.push(e.reason));
    await assert.rejects(
      retry.execute(() => Promise.reject(new TypeError('bad input'))),
      TypeError,
    );
    assert.deepEqual(reasons, ['not-retryable']);
  });

  test('an already aborted signal never calls fn', async () => {
    let called = false;
    await assert.rejects(
      new Retry().execute(() => (called = true), { signal: AbortSignal.abort(new Error('early')) }),
      /early/,
    );
    assert.equal(called, false);
  });
});

describe('Timeout', () => {
  test('cooperative: aborts ctx.signal at the deadline and rejects with TimeoutError', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(1_000, { clock });
    let seen: AbortSignal | undefined;
    const p = timeout.execute(
      ({ signal }) =>
        new Promise((_, reject) => {
          seen = signal;
          signal.addEventListener('abort', () => reject(signal.reason));
        }),
    );
    const check = assert.rejects(
      p,
      (e: unknown) => e instanceof TimeoutError && e.code === 'HERALD_TIMEOUT' && e.timeoutMs === 1_000,
    );
    await clock.advance(999);
    assert.equal(seen?.aborted, false);
    await clock.advance(1);
    await check;
    assert.equal(seen?.aborted, true);
  });

  test('cooperative: a call that ignores the signal and succeeds late is returned', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(10, { clock });
    const p = timeout.execute(async () => {
      await clock.advance(50);
      return 'late';
    });
    assert.equal(await p, 'late');
  });

  test('aggressive: rejects at the deadline even if fn never settles', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(100, { clock, strategy: 'aggressive' });
    let signal: AbortSignal | undefined;
    const p = timeout.execute((ctx) => {
      signal = ctx.signal;
      return new Promise(() => {});
    });
    const check = assert.rejects(p, TimeoutError);
    await clock.advance(100);
    await check;
    assert.equal(signal?.aborted, true);
  });

  test('aggressive: the caller aborting rejects at once', async () => {
    const timeout = new Timeout(60_000, { clock: new ManualClock(), strategy: 'aggressive' });
    const ac = new AbortController();
    const p = timeout.execute(() => new Promise(() => {}), { signal: ac.signal });
    ac.abort(new Error('bye'));
    await assert.rejects(p, /bye/);
  });

  test('one shared timer serves all pending calls; completed calls leave no deadline behind', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(1_000, { clock });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => timeout.execute(() => i)));
    assert.equal(results.length, 100);
    assert.ok(clock.pendingTimers <= 1, `expected at most one timer, saw ${clock.pendingTimers}`);
    const gates: (() => void)[] = [];
    const pending = Array.from({ length: 50 }, () =>
      timeout.execute(() => new Promise<void>((r) => gates.push(r))),
    );
    assert.ok(clock.pendingTimers <= 1);
    for (const g of gates) g();
    await Promise.all(pending);
    await clock.advance(1_000);
    assert.equal(clock.pendingTimers, 0);
  });

  test('deadlines fire in order across calls started at different times', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(100, { clock });
    const order: number[] = [];
    const start = (id: number) =>
      timeout
        .execute(
          ({ signal }) => new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason))),
        )
        .catch(() => order.push(id));
    const a = start(1);
    await clock.advance(30);
    const b = start(2);
    await clock.advance(69);
    assert.deepEqual(order, []);
    await clock.advance(1);
    assert.deepEqual(order, [1]);
    await clock.advance(30);
    await Promise.all([a, b]);
    assert.deepEqual(order, [1, 2]);
  });

  test('does not create an AbortController unless fn reads ctx.signal', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(100, { clock });
    const original = globalThis.AbortController;
    let created = 0;
    globalThis.AbortController = class extends original {
      constructor() {
        super();
        created++;
      }
    };
    try {
      await timeout.execute(() => 1);
      assert.equal(created, 0);
      await timeout.execute(({ signal }) => signal.aborted);
      assert.equal(created, 1);
    } finally {
      globalThis.AbortController = original;
    }
  });

  test('rejects a non-positive timeout', () => {
    assert.throws(() => new Timeout(0), /Timeout.timeoutMs: must be a number > 0, got 0/);
  });
});

describe('Bulkhead', () => {
  test('runs maxConcurrent, queues maxQueue, rejects the rest with a typed error', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: 1 });
    const rejects: number[] = [];
    bulkhead.onReject((e) => rejects.push(e.queued));
    const gates: (() => void)[] = [];
    const task = () => bulkhead.execute(() => new Promise<void>((r) => gates.push(r)));
    const running = [task(), task(), task()];
    await flush();
    assert.equal(bulkhead.running, 2);
    assert.equal(bulkhead.queueLength, 1);
    await assert.rejects(
      task(),
      (e: unknown) => e instanceof BulkheadRejectedError && e.code === 'HERALD_BULKHEAD_REJECTED',
    );
    assert.deepEqual(rejects, [1]);
    gates[0]!();
    await flush();
    assert.equal(gates.length, 3, 'the queued call got the freed slot');
    gates[1]!();
    gates[2]!();
    await Promise.all(running);
    assert.equal(bulkhead.running, 0);
  });

  test('no starvation: a freed slot goes to the oldest waiter, not to a newcomer', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5 });
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const task = (id: string) =>
      bulkhead.execute(
        () =>
          new Promise<void>((r) => {
            order.push(id);
            gates.set(id, r);
          }),
      );
    const all = [task('a'), task('b'), task('c')];
    await flush();
    gates.get('a')!();
    all.push(task('late'));
    await flush();
    gates.get('b')!();
    await flush();
    gates.get('c')!();
    await flush();
    gates.get('late')!();
    await Promise.all(all);
    assert.deepEqual(order, ['a', 'b', 'c', 'late']);
  });

  test('a queued call whose signal aborts leaves the queue and never runs', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 2 });
    let release!: () => void;
    const first = bulkhead.execute(() => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    let ran = false;
    const queued = bulkhead.execute(() => (ran = true), { signal: ac.signal });
    const third = bulkhead.execute(() => 'third');
    await flush();
    ac.abort(new Error('gave up'));
    await assert.rejects(queued, /gave up/);
    assert.equal(bulkhead.queueLength, 1);
    release();
    await first;
    assert.equal(await third, 'third');
    assert.equal(ran, false);
    assert.equal(bulkhead.running, 0);
  });

  test('a slot is freed when fn rejects or throws, and handed to the oldest waiter', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1 });
    let fail!: (e: Error) => void;
    const first = bulkhead.execute(() => new Promise((_, rej) => (fail = rej)));
    const queued = bulkhead.execute(() => 'queued');
    assert.equal(bulkhead.queueLength, 1);
    fail(new Error('first failed'));
    await assert.rejects(first, /first failed/);
    assert.equal(await queued, 'queued');
    assert.equal(bulkhead.running, 0);
    const thrown = bulkhead.execute(() => {
      throw new Error('sync throw');
    });
    assert.equal(bulkhead.running, 0, 'a synchronous throw frees the slot at once');
    await assert.rejects(thrown, /sync throw/);
  });

  test('a synchronous result frees its slot before execute returns; rejection is never a sync throw', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => bulkhead.execute(() => i)));
    assert.deepEqual(results, [0, 1, 2, 3, 4], 'no call was rejected: each freed its slot at once');
    let release!: () => void;
    const held = bulkhead.execute(() => new Promise<void>((r) => (release = r)));
    let rejected: Promise<unknown> | undefined;
    assert.doesNotThrow(() => (rejected = bulkhead.execute(() => 'x')));
    await assert.rejects(rejected!, BulkheadRejectedError);
    release();
    await held;
  });

  test('fn gets a live signal and attempt 1; a caller signal is passed through', async () => {
    const bulkhead = new Bulkhead();
    const seen: [boolean, number][] = [];
    await bulkhead.execute(({ signal, attempt }) => seen.push([signal.aborted, attempt]));
    assert.deepEqual(seen, [[false, 1]]);
    const ac = new AbortController();
    let passed: AbortSignal | undefined;
    await bulkhead.execute(({ signal }) => (passed = signal), { signal: ac.signal });
    assert.equal(passed, ac.signal);
    await assert.rejects(
      bulkhead.execute(() => 1, { signal: AbortSignal.abort(new Error('already')) }),
      /already/,
    );
    assert.equal(bulkhead.running, 0);
  });

  test('onReject listeners subscribed at any time see rejections', async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    let release!: () => void;
    const held = bulkhead.execute(() => new Promise<void>((r) => (release = r)));
    await assert.rejects(
      bulkhead.execute(() => 1),
      BulkheadRejectedError,
    );
    const seen: number[] = [];
    bulkhead.onReject((e) => seen.push(e.running));
    await assert.rejects(
      bulkhead.execute(() => 1),
      BulkheadRejectedError,
    );
    assert.deepEqual(seen, [1]);
    release();
    await held;
  });

  test('bad config names the field', () => {
    assert.throws(
      () => new Bulkhead({ maxConcurrent: 0 }),
      /Bulkhead.maxConcurrent: must be an integer >= 1, got 0/,
    );
    assert.throws(() => new Bulkhead({ maxQueue: -1 }), /maxQueue/);
  });
});

describe('wrap', () => {
  test('composes outer → inner: timeout around retry around breaker around bulkhead', async () => {
    const clock = new ManualClock();
    const timeout = new Timeout(1_000, { clock });
    const retry = new Retry({ clock, jitter: 'none', initialDelayMs: 100 });
    const breaker = new CircuitBreaker({ clock, minimumCalls: 2, failureThreshold: 2 });
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const pipeline = wrap(timeout, retry, breaker, bulkhead);
    let calls = 0;
    const p = pipeline.execute(({ attempt }) => {
      calls++;
      if (attempt < 2) throw new Error('transient');
      return `ok after ${attempt}`;
    });
    await clock.advance(100);
    assert.equal(await p, 'ok after 2');
    assert.equal(calls, 2);
    assert.deepEqual(breaker.stats, { calls: 2, failures: 1, slow: 0 });
  });

  test('an outer timeout aborts an inner retry loop mid-delay', async () => {
    const clock = new ManualClock();
    const pipeline = wrap(
      new Timeout(250, { clock }),
      new Retry({ clock, jitter: 'none', initialDelayMs: 200, maxRetries: 10 }),
    );
    let calls = 0;
    const p = pipeline.execute(() => {
      calls++;
      throw new Error('x');
    });
    const check = assert.rejects(p, TimeoutError);
    await clock.advance(1_000);
    await check;
    assert.equal(calls, 2, 'attempt at 0 and at 200; the timeout at 250 cut the next delay');
  });

  test('a timeout per attempt inside a retry gives each attempt a fresh signal', async () => {
    const clock = new ManualClock();
    const pipeline = wrap(
      new Retry({ clock, jitter: 'none', initialDelayMs: 10 }),
      new Timeout(100, { clock }),
    );
    const abortedAtStart: boolean[] = [];
    const p = pipeline.execute(({ signal, attempt }) => {
      abortedAtStart.push(signal.aborted);
      if (attempt === 1)
        return new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)));
      return 'second';
    });
    await clock.advance(200);
    assert.equal(await p, 'second');
    assert.deepEqual(abortedAtStart, [false, false]);
  });

  test('retry does not hammer an open breaker', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ clock, minimumCalls: 1, failureThreshold: 1 });
    const pipeline = wrap(new Retry({ clock, maxRetries: 5 }), breaker);
    let calls = 0;
    const p = pipeline.execute(() => {
      calls++;
      throw new Error('down');
    });
    await clock.advance(10_000);
    await assert.rejects(p, /open/);
    assert.equal(calls, 1);
  });

  test('fallback outermost replaces rejections from inner policies', async () => {
    const fallback = new Fallback(() => 'cached');
    const bulkhead = new Bulkhead({ maxConcurrent: 1 });
    const seen: unknown[] = [];
    fallback.onFallback((e) => seen.push(e.error));
    const pipeline = wrap(fallback, bulkhead);
    let release!: () => void;
    const first = pipeline.execute(() => new Promise<string>((r) => (release = () => r('fresh'))));
    assert.equal(await pipeline.execute(() => 'never'), 'cached');
    assert.ok(seen[0] instanceof BulkheadRejectedError);
    release();
    assert.equal(await first, 'fresh');
    const selective = new Fallback(() => 0, { shouldHandle: (e) => e instanceof TimeoutError });
    await assert.rejects(
      selective.execute(() => Promise.reject(new Error('other'))),
      /other/,
    );
  });

  test('wraps foreign policies that only have execute()', async () => {
    const log: string[] = [];
    const foreign = {
      async execute<T>(fn: (ctx: { signal: AbortSignal; attempt: number }) => Promise<T> | T): Promise<T> {
        log.push('before');
        const r = await fn({ signal: new AbortController().signal, attempt: 1 });
        log.push('after');
        return r;
      },
    };
    assert.equal(await wrap(foreign, new Bulkhead()).execute(() => 5), 5);
    assert.deepEqual(log, ['before', 'after']);
  });
});

describe('Hedge', () => {
  test('sends a second attempt after the delay and takes the first success, aborting the loser', async () => {
    const clock = new ManualClock();
    const hedge = new Hedge({ delayMs: 50, clock });
    const signals: AbortSignal[] = [];
    const resolvers: ((v: string) => void)[] = [];
    const p = hedge.execute(
      ({ signal }) =>
        new Promise<string>((r) => {
          signals.push(signal);
          resolvers.push(r);
        }),
    );
    await clock.advance(49);
    assert.equal(signals.length, 1);
    await clock.advance(1);
    assert.equal(signals.length, 2);
    resolvers[1]!('second');
    assert.equal(await p, 'second');
    assert.equal(signals[0]!.aborted, true);
    assert.equal(signals[1]!.aborted, false);
  });

  test('a fast success sends no hedge; an early failure triggers the hedge at once', async () => {
    const clock = new ManualClock();
    const hedge = new Hedge({ delayMs: 50, clock });
    let calls = 0;
    assert.equal(await hedge.execute(() => ++calls), 1);
    await clock.advance(100);
    assert.equal(calls, 1);
    calls = 0;
    const p = hedge.execute(() => {
      if (++calls === 1) throw new Error('first failed');
      return 'hedged';
    });
    assert.equal(await p, 'hedged');
    assert.equal(calls, 2);
  });

  test('rejects with the last error when every attempt fails', async () => {
    const clock = new ManualClock();
    const hedge = new Hedge({ delayMs: 10, maxHedges: 2, clock });
    let n = 0;
    await assert.rejects(
      hedge.execute(() => {
        throw new Error(`fail ${++n}`);
      }),
      /fail 3/,
    );
  });
});
