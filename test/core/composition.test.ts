import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createHerald,
  defaultClassify,
  defineEvent,
  DeferredError,
  isHeraldError,
  MemoryDeadLetterStore,
  MemoryTransport,
  PermanentError,
  type ErrorClassifier,
  type Observer,
} from '../../src/index.js';
import {
  BrokenCircuitError,
  Bulkhead,
  CircuitBreaker,
  RateLimitedError,
  TimeoutError,
  wrap,
} from '../../src/resilience/index.js';
import { sleep, waitUntil } from '../support/wait.js';

const Charged = defineEvent('billing.card.charged');

async function setup() {
  const deadLetters = new MemoryDeadLetterStore();
  const herald = await createHerald({
    service: 'billing',
    transport: new MemoryTransport(),
    stores: { deadLetters },
  });
  const retries: { delayMs: number; error: Error }[] = [];
  const failures: number[] = [];
  const observer: Observer = {
    onRetryScheduled: (i) => void retries.push({ delayMs: i.delayMs, error: i.error }),
    onHandlerFailed: (i) => void failures.push(i.attempt),
  };
  herald.observe(observer);
  return { herald, deadLetters, retries, failures };
}

class CardDeclined extends Error {}
class GatewayBusy extends Error {}

describe('error classifier', () => {
  test('the default: codes decide, across loaded copies of the package', () => {
    assert.deepEqual(defaultClassify(new BrokenCircuitError('pay', 1234.2)), {
      action: 'defer',
      delayMs: 1235,
    });
    // Probe slots taken (retry-after 0): deferred by a floor, never spun on.
    assert.deepEqual(defaultClassify(new BrokenCircuitError('pay', 0)), { action: 'defer', delayMs: 100 });
    assert.deepEqual(defaultClassify(new RateLimitedError('api', 700)), { action: 'defer', delayMs: 700 });
    assert.deepEqual(defaultClassify(new DeferredError('busy', 5000)), { action: 'defer', delayMs: 5000 });
    assert.deepEqual(defaultClassify(new PermanentError('no')), {
      action: 'dead-letter',
      reason: 'permanent',
    });
    assert.deepEqual(defaultClassify(Object.assign(new Error('x'), { retryable: false })), {
      action: 'dead-letter',
      reason: 'permanent',
    });
    assert.deepEqual(defaultClassify(new TimeoutError(10)), { action: 'retry' });
    assert.deepEqual(defaultClassify(new Error('flaky')), { action: 'retry' });

    // An error made by another copy of Herald: same global brand, different class.
    class OtherCopyError extends Error {
      readonly code = 'HERALD_PERMANENT';
    }
    Object.defineProperty(OtherCopyError.prototype, Symbol.for('herald.error'), { value: true });
    const foreign = new OtherCopyError('from the other copy');
    assert.ok(isHeraldError(foreign));
    assert.ok(isHeraldError(foreign, 'HERALD_PERMANENT'));
    assert.ok(!isHeraldError(foreign, 'HERALD_TIMEOUT'));
    assert.ok(!isHeraldError(new Error('plain')));
    assert.deepEqual(defaultClassify(foreign), { action: 'dead-letter', reason: 'permanent' });
  });

  test('a subscription classifier marks errors permanent or retries after its own delay; undefined falls back', async () => {
    const { herald, deadLetters, retries } = await setup();
    const classify: ErrorClassifier = (err) =>
      err instanceof CardDeclined
        ? { action: 'dead-letter', reason: 'permanent' }
        : err instanceof GatewayBusy
          ? { action: 'retry', delayMs: 42 }
          : undefined;
    let busyOnce = true;
    herald.subscribe({
      group: 'charges',
      events: [Charged],
      retry: { maxAttempts: 3, initialDelayMs: 5, jitter: false },
      classify,
      handler: (e) => {
        const kind = (e.payload as { kind: string }).kind;
        if (kind === 'declined') throw new CardDeclined('card declined');
        if (kind === 'busy' && busyOnce) {
          busyOnce = false;
          throw new GatewayBusy('gateway busy');
        }
        if (kind === 'plain') throw new Error('plain failure');
      },
    });
    await herald.start();
    await herald.publish(Charged, { kind: 'declined' });
    await herald.publish(Charged, { kind: 'busy' });
    await herald.publish(Charged, { kind: 'plain' });
    await waitUntil(async () => (await deadLetters.count()) === 2, 'declined and plain dead-lettered');
    const entries = (await deadLetters.list()).items;
    const declined = entries.find((e) => e.error.message === 'card declined')!;
    assert.equal(declined.reason, 'permanent');
    assert.equal(declined.attempts, 1, 'dead-lettered on the first failure');
    const plain = entries.find((e) => e.error.message === 'plain failure')!;
    assert.equal(plain.reason, 'max-attempts');
    assert.equal(plain.attempts, 3);
    const busy = retries.find((r) => r.error instanceof GatewayBusy);
    assert.equal(busy?.delayMs, 42, 'the classifier chose the delay');
    // The default backoff applied to the unclassified error: 5, then 10 (no jitter).
    assert.deepEqual(
      retries.filter((r) => r.error.message === 'plain failure').map((r) => r.delayMs),
      [5, 10],
    );
    await herald.stop();
  });

  test('a bad classifier or policy option fails at subscribe, naming the field', async () => {
    const { herald } = await setup();
    const handler = (): void => {};
    assert.throws(
      () => herald.subscribe({ group: 'g', events: [Charged], handler, classify: 'permanent' as never }),
      (e: unknown) => isHeraldError(e, 'HERALD_CONFIG_INVALID') && /^classify:/.test((e as Error).message),
    );
    assert.throws(
      () => herald.subscribe({ group: 'g', events: [Charged], handler, policy: {} as never }),
      /ConfigError: policy: must have an execute/,
    );
    assert.throws(
      () => herald.subscribe({ group: 'g', events: [Charged], handler, timeoutMs: 0 }),
      /ConfigError: timeoutMs: must be a number > 0/,
    );
    await herald.stop();
  });
});

describe('subscription policy', () => {
  test('a bulkhead bounds handler concurrency below the consumer concurrency', async () => {
    const { herald, deadLetters } = await setup();
    let running = 0;
    let peak = 0;
    let done = 0;
    herald.subscribe({
      group: 'g',
      events: [Charged],
      concurrency: 8,
      ordering: 'none',
      policy: new Bulkhead({ maxConcurrent: 2, maxQueue: 100 }),
      handler: async () => {
        peak = Math.max(peak, ++running);
        await sleep(5);
        running--;
        done++;
      },
    });
    await herald.start();
    for (let i = 0; i < 12; i++) await herald.publish(Charged, { i });
    await waitUntil(() => done === 12, 'all handled');
    assert.equal(peak, 2);
    assert.equal(await deadLetters.count(), 0);
    await herald.stop();
  });

  test('any { execute(fn, { signal }) } wraps the handler and passes a signal', async () => {
    const { herald } = await setup();
    const calls: boolean[] = [];
    const mine = {
      execute<T>(
        fn: (c: { signal: AbortSignal; attempt: number }) => T | Promise<T>,
        opts?: { signal?: AbortSignal },
      ) {
        calls.push(opts?.signal instanceof AbortSignal);
        return Promise.resolve(fn({ signal: opts!.signal!, attempt: 1 }));
      },
    };
    let seenSignal: AbortSignal | undefined;
    herald.subscribe({
      group: 'g',
      events: [Charged],
      policy: mine,
      handler: (_e, ctx) => void (seenSignal = ctx.signal),
    });
    await herald.start();
    await herald.publish(Charged, {});
    await waitUntil(() => seenSignal !== undefined, 'handled');
    assert.deepEqual(calls, [true]);
    await herald.stop();
  });

  test('timeoutMs inside the policy: a breaker counts timeouts as failures', async () => {
    const { herald, retries } = await setup();
    const breaker = new CircuitBreaker({ minimumCalls: 1, failureThreshold: 1, openDurationMs: 60_000 });
    let started = 0;
    herald.subscribe({
      group: 'g',
      events: [Charged],
      timeoutMs: 20,
      policy: wrap(breaker),
      retry: { maxAttempts: 5, initialDelayMs: 5 },
      handler: (_e, ctx) =>
        new Promise<void>((resolve) => {
          started++;
          ctx.signal.addEventListener('abort', () => resolve());
        }),
    });
    await herald.start();
    await herald.publish(Charged, {});
    await waitUntil(() => retries.length >= 2, 'a timeout, then the open breaker');
    assert.ok(retries[0]!.error instanceof TimeoutError);
    assert.ok(retries[1]!.error instanceof BrokenCircuitError, 'the breaker opened on the timeout');
    assert.equal(started, 1, 'the open breaker kept the handler from running');
    assert.equal(breaker.state, 'open');
    await herald.stop();
  });
});

describe('downstream outage behind a breaker', () => {
  /**
   * Five payments while the gateway is down for 700 ms. With a breaker as the subscription's policy,
   * the open breaker's retry-after becomes the redelivery delay and no attempt is spent, so nothing
   * is dead-lettered and every payment goes through after the outage. Without it, the same retry
   * budget is spent inside the outage and the payments land in the DLQ (the control).
   */
  async function outage(withBreaker: boolean) {
    const { herald, deadLetters, retries } = await setup();
    const downUntil = Date.now() + 700;
    const charged = new Set<number>();
    const breaker = new CircuitBreaker({
      minimumCalls: 1,
      failureThreshold: 1,
      openDurationMs: 300,
      halfOpenMaxCalls: 1,
      halfOpenSuccessThreshold: 1,
    });
    herald.subscribe({
      group: 'payments',
      events: [Charged],
      ordering: 'none',
      retry: { maxAttempts: 4, initialDelayMs: 10, maxDelayMs: 40 },
      ...(withBreaker ? { policy: breaker } : {}),
      handler: (e) => {
        if (Date.now() < downUntil) throw new Error('gateway unavailable');
        charged.add((e.payload as { n: number }).n);
      },
    });
    await herald.start();
    for (let n = 0; n < 5; n++) await herald.publish(Charged, { n });
    await waitUntil(
      async () => charged.size + (await deadLetters.count()) === 5,
      'every payment charged or dead-lettered',
      10_000,
    );
    await herald.stop();
    return { charged: charged.size, dead: await deadLetters.count(), retries };
  }

  test('an open breaker defers without spending attempts: nothing is dead-lettered', async () => {
    const r = await outage(true);
    assert.equal(r.dead, 0);
    assert.equal(r.charged, 5);
    assert.ok(
      r.retries.some((x) => x.error instanceof BrokenCircuitError && x.delayMs >= 100),
      'redeliveries were scheduled from the breaker',
    );
  });

  test('control: the same outage without the breaker dead-letters', async () => {
    const r = await outage(false);
    assert.equal(r.dead, 5);
  });
});
