import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BrokenCircuitError,
  Bulkhead,
  CircuitBreaker,
  IsolatedCircuitError,
  ManualClock,
  ConfigError,
  wrap,
  type CallOutcomeEvent,
  type CircuitBreakerOptions,
  type MetricEvent,
  type StateChangeEvent,
} from '../../src/resilience/index.js';

const boom = (): never => {
  throw new Error('boom');
};

function setup(options: CircuitBreakerOptions = {}) {
  const clock = new ManualClock(1_000);
  const breaker = new CircuitBreaker({ clock, ...options });
  const changes: StateChangeEvent[] = [];
  breaker.onStateChange((e) => changes.push(e));
  return { clock, breaker, changes };
}

async function fail(breaker: CircuitBreaker, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await assert.rejects(breaker.execute(boom), /boom/);
}

async function succeed(breaker: CircuitBreaker, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal(await breaker.execute(() => 'ok'), 'ok');
}

describe('CircuitBreaker', () => {
  test('defaults: opens after 5 failures, rejects for 60 s, then half-opens', async () => {
    const { clock, breaker, changes } = setup();
    await fail(breaker, 4);
    assert.equal(breaker.state, 'closed');
    await fail(breaker);
    assert.equal(breaker.state, 'open');
    assert.deepEqual(changes[0], { from: 'closed', to: 'open', reason: 'failure-rate', openForMs: 60_000 });
    const err = await breaker.execute(() => 1).catch((e: unknown) => e);
    assert.ok(err instanceof BrokenCircuitError);
    assert.equal(err.code, 'HERALD_BROKEN_CIRCUIT');
    assert.equal(err.retryAfterMs, 60_000);
    clock.set(clock.now() + 59_999);
    assert.equal(breaker.state, 'open');
    clock.set(clock.now() + 1);
    assert.equal(breaker.state, 'half-open');
  });

  test('does not open below minimumCalls or below the failure rate', async () => {
    const { breaker } = setup({ minimumCalls: 6, failureThreshold: 3, failureRateThreshold: 0.5 });
    await fail(breaker, 3);
    await succeed(breaker, 2);
    assert.equal(breaker.state, 'closed', '5 calls < minimumCalls');
    await succeed(breaker, 1);
    assert.equal(breaker.state, 'open', '3 of 6 failed = 50%');

    const b2 = setup({ minimumCalls: 4, failureThreshold: 1, failureRateThreshold: 0.5 }).breaker;
    await succeed(b2, 3);
    await fail(b2, 1);
    assert.equal(b2.state, 'closed', '1 of 4 is 25%');
  });

  test('count window forgets calls older than its size', async () => {
    const { breaker } = setup({ window: { type: 'count', size: 4 }, minimumCalls: 4, failureThreshold: 3 });
    await fail(breaker, 2);
    await succeed(breaker, 4);
    await fail(breaker, 2);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(breaker.stats, { calls: 4, failures: 2, slow: 0 });
    await fail(breaker, 1);
    assert.equal(breaker.state, 'open');
  });

  test('time window forgets calls older than its duration', async () => {
    const { clock, breaker } = setup({
      window: { type: 'time', durationMs: 10_000, buckets: 10 },
      minimumCalls: 3,
      failureThreshold: 3,
    });
    await fail(breaker, 2);
    await clock.advance(10_000);
    assert.deepEqual(breaker.stats, { calls: 0, failures: 0, slow: 0 });
    await fail(breaker, 2);
    assert.equal(breaker.state, 'closed');
    await clock.advance(5_000);
    await fail(breaker, 1);
    assert.equal(breaker.state, 'open');
  });

  test('opens on slow-call rate even when every call succeeds', async () => {
    const { clock, breaker, changes } = setup({
      slowCallDurationMs: 100,
      slowCallRateThreshold: 0.5,
      minimumCalls: 4,
    });
    const slowCall = () =>
      breaker.execute(async () => {
        clock.set(clock.now() + 150);
        return 'slow';
      });
    await succeed(breaker, 2);
    assert.equal(await slowCall(), 'slow');
    assert.equal(breaker.state, 'closed');
    await slowCall();
    assert.equal(breaker.state, 'open');
    assert.equal(changes[0]?.reason, 'slow-call-rate');
  });

  test('half-open admits only halfOpenMaxCalls concurrent probes and closes after the success threshold', async () => {
    const { clock, breaker, changes } = setup({ openDurationMs: 1_000 });
    await fail(breaker, 5);
    await clock.advance(1_000);
    const gates: (() => void)[] = [];
    const probe = () => breaker.execute(() => new Promise<string>((r) => gates.push(() => r('p'))));
    const probes = [probe(), probe(), probe()];
    await assert.rejects(
      breaker.execute(() => 'x'),
      (e: unknown) => e instanceof BrokenCircuitError && e.retryAfterMs === 0,
    );
    assert.equal(breaker.state, 'half-open');
    gates[0]!();
    await probes[0];
    assert.equal(breaker.state, 'half-open');
    gates[1]!();
    await probes[1];
    assert.equal(breaker.state, 'closed');
    gates[2]!();
    await probes[2];
    assert.equal(breaker.state, 'closed', 'a late probe from the old generation changes nothing');
    assert.deepEqual(
      changes.map((c) => `${c.to}:${c.reason}`),
      ['open:failure-rate', 'half-open:open-elapsed', 'closed:probes-succeeded'],
    );
  });

  test('a failed probe reopens, with the open duration growing by the backoff and capped', async () => {
    const { clock, breaker, changes } = setup({
      openDurationMs: 1_000,
      openBackoff: { multiplier: 2, maxMs: 3_000 },
    });
    await fail(breaker, 5);
    for (const expected of [2_000, 3_000, 3_000]) {
      await clock.advance(changes.at(-1)!.openForMs!);
      await fail(breaker, 1);
      assert.equal(changes.at(-1)?.reason, 'probe-failed');
      assert.equal(changes.at(-1)?.openForMs, expected);
    }
    await clock.advance(3_000);
    await succeed(breaker, 2);
    assert.equal(breaker.state, 'closed');
    await fail(breaker, 5);
    assert.equal(changes.at(-1)?.openForMs, 1_000, 'backoff resets after closing');
  });

  test('half-open never sticks: probes that hang past halfOpenMaxWaitMs reopen the breaker', async () => {
    const { clock, breaker, changes } = setup({
      openDurationMs: 1_000,
      halfOpenMaxWaitMs: 5_000,
      halfOpenMaxCalls: 1,
    });
    await fail(breaker, 5);
    await clock.advance(1_000);
    let release!: () => void;
    const hung = breaker.execute(() => new Promise<void>((r) => (release = r)));
    await assert.rejects(
      breaker.execute(() => 1),
      BrokenCircuitError,
    );
    await clock.advance(5_000);
    assert.equal(breaker.state, 'open');
    assert.equal(changes.at(-1)?.reason, 'half-open-timeout');
    await clock.advance(1_000);
    await succeed(breaker, 2);
    assert.equal(breaker.state, 'closed');
    release();
    await hung;
  });

  test('flapping dependency: a steady 40% failure pattern never opens a 50% breaker, 60% does', async () => {
    const { breaker, changes } = setup({ minimumCalls: 10, failureThreshold: 1, failureRateThreshold: 0.5 });
    for (let i = 0; i < 100; i++) {
      if (i % 5 < 2) await fail(breaker);
      else await succeed(breaker);
    }
    assert.equal(changes.length, 0);
    for (let i = 0; i < 10 && breaker.state === 'closed'; i++) {
      if (i % 5 < 3) await fail(breaker);
      else await succeed(breaker);
    }
    assert.equal(breaker.state, 'open');
  });

  test('caller aborts are not counted as failures', async () => {
    const { breaker } = setup({ minimumCalls: 1, failureThreshold: 1 });
    const ac = new AbortController();
    const p = breaker.execute(
      ({ signal }) => new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason))),
      {
        signal: ac.signal,
      },
    );
    ac.abort(new Error('caller gave up'));
    await assert.rejects(p, /caller gave up/);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(breaker.stats, { calls: 0, failures: 0, slow: 0 });
  });

  test('isFailure and isResultFailure classify outcomes', async () => {
    const { breaker } = setup({
      minimumCalls: 2,
      failureThreshold: 2,
      isFailure: (e) => !(e instanceof TypeError),
      isResultFailure: (r) => r === 503,
    });
    await assert.rejects(breaker.execute(() => Promise.reject(new TypeError('client bug'))));
    await assert.rejects(breaker.execute(() => Promise.reject(new TypeError('client bug'))));
    assert.equal(breaker.state, 'closed');
    await breaker.execute(() => 503);
    await breaker.execute(() => 503);
    assert.equal(breaker.state, 'open');
  });

  test('isolate and forceClose are manual states that reset() leaves', async () => {
    const { breaker } = setup();
    breaker.isolate();
    await assert.rejects(
      breaker.execute(() => 1),
      (e: unknown) => e instanceof IsolatedCircuitError && e.code === 'HERALD_ISOLATED_CIRCUIT',
    );
    breaker.reset();
    assert.equal(await breaker.execute(() => 1), 1);
    breaker.forceClose();
    await fail(breaker, 20);
    assert.equal(breaker.state, 'forced-closed');
    assert.equal(await breaker.execute(() => 2), 2);
    breaker.reset();
    assert.equal(breaker.state, 'closed');
  });

  test('snapshot survives JSON and restores state, backoff and window', async () => {
    const { clock, breaker } = setup({ openDurationMs: 1_000, openBackoff: { multiplier: 2 } });
    await fail(breaker, 5);
    await clock.advance(1_000);
    await fail(breaker, 1);
    const saved = JSON.parse(JSON.stringify(breaker.snapshot())) as ReturnType<CircuitBreaker['snapshot']>;
    const restored = new CircuitBreaker({
      clock,
      openDurationMs: 1_000,
      openBackoff: { multiplier: 2 },
      restore: saved,
    });
    assert.equal(restored.state, 'open');
    await assert.rejects(
      restored.execute(() => 1),
      (e: unknown) => e instanceof BrokenCircuitError && e.retryAfterMs === 2_000,
    );

    const closed = setup({
      window: { type: 'count', size: 4 },
      minimumCalls: 4,
      failureThreshold: 3,
    }).breaker;
    await fail(closed, 2);
    await succeed(closed, 1);
    const copy = new CircuitBreaker({
      window: { type: 'count', size: 4 },
      minimumCalls: 4,
      failureThreshold: 3,
      restore: closed.snapshot(),
    });
    assert.deepEqual(copy.stats, { calls: 3, failures: 2, slow: 0 });
    await fail(copy, 1);
    assert.equal(copy.state, 'open');
  });

  test('tryAcquire permits feed the same state machine', async () => {
    const { breaker } = setup({ minimumCalls: 2, failureThreshold: 2 });
    breaker.tryAcquire().failure(new Error('x'));
    const p = breaker.tryAcquire();
    p.failure();
    p.failure();
    assert.equal(breaker.state, 'open');
    assert.throws(() => breaker.tryAcquire(), BrokenCircuitError);
  });

  test('memory is constant: a million calls leave the window the same size', async () => {
    const { breaker } = setup({
      window: { type: 'count', size: 100 },
      minimumCalls: 100,
      failureThreshold: 100,
    });
    for (let i = 0; i < 20_000; i++) breaker.tryAcquire().success();
    assert.deepEqual(breaker.stats, { calls: 100, failures: 0, slow: 0 });
    assert.equal(
      breaker.snapshot().window.type === 'count' &&
        (breaker.snapshot().window as { ring: number[] }).ring.length,
      100,
    );
  });

  test('bad config names the field', () => {
    assert.throws(
      () => new CircuitBreaker({ halfOpenMaxCalls: 0 }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.field === 'CircuitBreaker.halfOpenMaxCalls' &&
        e.code === 'HERALD_CONFIG_INVALID' &&
        e.message === 'CircuitBreaker.halfOpenMaxCalls: must be an integer >= 1, got 0',
    );
    assert.throws(() => new CircuitBreaker({ failureRateThreshold: 1.5 }), /failureRateThreshold/);
    assert.throws(
      () => new CircuitBreaker({ window: { type: 'count', size: 3 }, minimumCalls: 5 }),
      /minimumCalls/,
    );
    assert.throws(
      () => new CircuitBreaker({ window: { type: 'time', durationMs: -1 } }),
      /window.durationMs/,
    );
  });
});

// A closed breaker with no slow-call threshold, no metrics and no outcome listener takes a path without
// a clock read, an async frame or a per-call context (ADR 0104). These pin down that it behaves the same.
describe('CircuitBreaker untimed fast path', () => {
  test('outcome listeners subscribed later receive events, including for calls already in flight', async () => {
    const { breaker } = setup();
    await succeed(breaker, 2);
    let release!: (v: string) => void;
    const inFlight = breaker.execute(() => new Promise<string>((r) => (release = r)));
    const successes: CallOutcomeEvent[] = [];
    const failures: CallOutcomeEvent[] = [];
    breaker.onSuccess((e) => successes.push(e));
    const off = breaker.onFailure((e) => failures.push(e));
    release('late');
    assert.equal(await inFlight, 'late');
    assert.deepEqual(successes, [{ durationMs: 0, slow: false }], 'admitted untimed: no duration known');
    await fail(breaker);
    assert.equal(failures.length, 1);
    assert.equal((failures[0]!.error as Error).message, 'boom');
    off();
    await fail(breaker);
    assert.equal(failures.length, 1);
    assert.deepEqual(breaker.stats, { calls: 5, failures: 2, slow: 0 });
  });

  test('metrics see every call, rejection and transition', async () => {
    const events: MetricEvent[] = [];
    const breaker = new CircuitBreaker({
      clock: new ManualClock(),
      minimumCalls: 1,
      failureThreshold: 1,
      metrics: { record: (e) => events.push(e) },
    });
    await succeed(breaker);
    await fail(breaker);
    await assert.rejects(
      breaker.execute(() => 1),
      BrokenCircuitError,
    );
    assert.deepEqual(
      events.map((e) => e.event + (e.state ? `:${e.state}` : '')),
      ['success', 'failure', 'state:open', 'rejected'],
    );
    assert.equal(events[0]!.durationMs, 0);
  });

  test('fn gets a context with a live signal and attempt 1, with or without a caller signal', async () => {
    const breaker = new CircuitBreaker();
    const seen: [boolean, number][] = [];
    await breaker.execute(({ signal, attempt }) => seen.push([signal.aborted, attempt]));
    const ac = new AbortController();
    let passed: AbortSignal | undefined;
    await breaker.execute(({ signal }) => (passed = signal), { signal: ac.signal });
    assert.deepEqual(seen, [[false, 1]]);
    assert.equal(passed, ac.signal);
    await assert.rejects(
      breaker.execute(() => 1, { signal: AbortSignal.abort(new Error('already')) }),
      /already/,
    );
  });

  test('synchronous outcomes count before execute returns, so a burst stops at the threshold', async () => {
    const { breaker } = setup();
    let called = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        breaker.execute(() => {
          called++;
          throw new Error('boom');
        }),
      ),
    );
    assert.equal(called, 5, 'the sixth call already saw the open breaker');
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'ok')),
      [...Array<string>(5).fill('Error'), ...Array<string>(5).fill('BrokenCircuitError')],
    );
  });

  test('thenables and promises from fn are followed; a plain sync value is recorded too', async () => {
    const { breaker } = setup({ minimumCalls: 3, failureThreshold: 3 });
    const thenable = { then: (resolve: (v: number) => void) => resolve(7) };
    assert.equal(await breaker.execute(() => thenable as unknown as Promise<number>), 7);
    assert.equal(await breaker.execute(() => 8), 8);
    assert.equal(await breaker.execute(() => Promise.resolve(9)), 9);
    assert.deepEqual(breaker.stats, { calls: 3, failures: 0, slow: 0 });
  });

  test('an outcome from an earlier generation is discarded, even when fn itself moves the breaker', async () => {
    const { breaker } = setup({ minimumCalls: 1, failureThreshold: 1 });
    let reject!: (e: Error) => void;
    const pending = breaker.execute(() => new Promise((_, r) => (reject = r)));
    breaker.reset();
    reject(new Error('stale'));
    await assert.rejects(pending, /stale/);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(breaker.stats, { calls: 0, failures: 0, slow: 0 });
    await assert.rejects(
      breaker.execute(() => {
        breaker.reset();
        throw new Error('after reset');
      }),
      /after reset/,
    );
    assert.equal(breaker.state, 'closed', 'admitted before the reset, so not counted after it');
  });

  test('a throwing isResultFailure rejects the call instead of throwing from execute', async () => {
    const breaker = new CircuitBreaker({
      isResultFailure: () => {
        throw new Error('classifier bug');
      },
    });
    const p = breaker.execute(() => 1);
    await assert.rejects(p, /classifier bug/);
  });

  test('composed: the breaker fast path inside wrap counts outcomes and passes results through', async () => {
    const breaker = new CircuitBreaker({ minimumCalls: 2, failureThreshold: 2 });
    const pipeline = wrap(breaker, new Bulkhead({ maxConcurrent: 2 }));
    assert.equal(await pipeline.execute(() => 'a'), 'a');
    await assert.rejects(pipeline.execute(boom), /boom/);
    await assert.rejects(
      pipeline.execute(() => Promise.reject(new Error('async boom'))),
      /async boom/,
    );
    assert.equal(breaker.state, 'open');
    await assert.rejects(
      pipeline.execute(() => 'b'),
      BrokenCircuitError,
    );
  });
});
