import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AdaptiveThrottle,
  KeyedLimiter,
  LoadShedError,
  LoadShedder,
  LruMap,
  ManualClock,
  RateLimitPolicy,
  RateLimitedError,
  SlidingWindowLimiter,
  TokenBucket,
  flush,
} from '../../src/resilience/index.js';
import { mulberry32, requestTimes } from './prng.js';

const SEEDS = [1, 7, 42, 1337, 2024, 99991];

describe('TokenBucket', () => {
  test('allows a burst of capacity, then refills smoothly', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ capacity: 5, refillPerSecond: 10, clock });
    for (let i = 0; i < 5; i++) assert.equal(bucket.tryAcquire().allowed, true);
    const denied = bucket.tryAcquire();
    assert.equal(denied.allowed, false);
    assert.equal(denied.retryAfterMs, 100);
    clock.set(99);
    assert.equal(bucket.tryAcquire().allowed, false);
    clock.set(100);
    assert.equal(bucket.tryAcquire().allowed, true);
    clock.set(10_000);
    assert.equal(bucket.available, 5, 'never above capacity');
    assert.equal(bucket.tryAcquire(undefined, 6).retryAfterMs, Infinity);
  });

  for (const seed of SEEDS) {
    test(`property (seed ${seed}): any interval T admits at most capacity + rate × T`, () => {
      const random = mulberry32(seed);
      const clock = new ManualClock();
      const capacity = 1 + Math.floor(random() * 20);
      const rate = 1 + Math.floor(random() * 50);
      const bucket = new TokenBucket({ capacity, refillPerSecond: rate, clock });
      const admitted: number[] = [];
      for (const t of requestTimes(random, 3_000, 60_000)) {
        clock.set(t);
        if (bucket.tryAcquire().allowed) admitted.push(t);
      }
      assert.ok(admitted.length > capacity, `seed ${seed}: the test must exercise the limit`);
      for (let i = 0; i < admitted.length; i++) {
        for (let j = i; j < admitted.length; j++) {
          const span = admitted[j]! - admitted[i]!;
          if (span > 5_000) break;
          assert.ok(
            j - i + 1 <= capacity + (rate * span) / 1000 + 1e-9,
            `seed ${seed}: ${j - i + 1} in ${span} ms`,
          );
        }
      }
    });
  }
});

describe('SlidingWindowLimiter', () => {
  test('exact window: no burst at the edge of a window', () => {
    const clock = new ManualClock();
    const limiter = new SlidingWindowLimiter({ limit: 3, windowMs: 1_000, clock });
    clock.set(900);
    for (let i = 0; i < 3; i++) assert.equal(limiter.tryAcquire().allowed, true);
    clock.set(1_100);
    const d = limiter.tryAcquire();
    assert.equal(d.allowed, false, 'a fixed window would reset at 1000 and allow a second burst');
    assert.equal(d.retryAfterMs, 800);
    clock.set(1_899.999);
    assert.equal(limiter.tryAcquire().allowed, false);
    clock.set(1_900);
    assert.equal(limiter.tryAcquire().allowed, true, 'the window is [t − windowMs, t) wide: 900 has left it');
  });

  test('multi-permit requests and retryAfter for them', () => {
    const clock = new ManualClock();
    const limiter = new SlidingWindowLimiter({ limit: 4, windowMs: 100, clock });
    assert.equal(limiter.tryAcquire('', 3).allowed, true);
    clock.set(10);
    assert.equal(limiter.tryAcquire('', 1).allowed, true);
    clock.set(20);
    const d = limiter.tryAcquire('', 2);
    assert.equal(d.allowed, false);
    assert.equal(d.retryAfterMs, 80);
    assert.equal(limiter.tryAcquire('', 5).retryAfterMs, Infinity);
  });

  for (const seed of SEEDS) {
    test(`property (seed ${seed}): never more than limit in any window`, () => {
      const random = mulberry32(seed);
      const clock = new ManualClock();
      const limit = 1 + Math.floor(random() * 30);
      const windowMs = 50 + Math.floor(random() * 2_000);
      const limiter = new SlidingWindowLimiter({ limit, windowMs, clock });
      const admitted: number[] = [];
      let denied = 0;
      for (const t of requestTimes(random, 3_000, 60_000)) {
        clock.set(t);
        const d = limiter.tryAcquire();
        if (d.allowed) admitted.push(t);
        else denied++;
      }
      assert.ok(denied > 0, `seed ${seed}: the test must exercise the limit`);
      for (let i = 0; i + limit < admitted.length; i++) {
        assert.ok(
          admitted[i + limit]! - admitted[i]! >= windowMs,
          `seed ${seed}: ${limit + 1} admitted within ${windowMs} ms`,
        );
      }
    });
  }

  test('retryAfterMs is exact: the request is admitted then and not a moment before', () => {
    const random = mulberry32(5);
    const clock = new ManualClock();
    const limiter = new SlidingWindowLimiter({ limit: 5, windowMs: 1_000, clock });
    for (const t of requestTimes(random, 500, 10_000)) {
      clock.set(t);
      const d = limiter.tryAcquire();
      if (d.allowed || d.retryAfterMs === 0) continue;
      clock.set(t + d.retryAfterMs - 0.01);
      assert.equal(limiter.tryAcquire().allowed, false);
      clock.set(t + d.retryAfterMs + 1e-6); // 1 ns of slack for float rounding of t + retryAfterMs
      assert.equal(limiter.tryAcquire().allowed, true);
    }
  });
});

describe('KeyedLimiter and LRU', () => {
  test('one budget per key, with the key count bounded by maxKeys', () => {
    const clock = new ManualClock();
    let created = 0;
    const keyed = new KeyedLimiter(
      () => {
        created++;
        return new TokenBucket({ capacity: 2, refillPerSecond: 1, clock });
      },
      { maxKeys: 3 },
    );
    assert.equal(keyed.limiterFor('a').tryAcquire().allowed, true);
    assert.equal(keyed.limiterFor('a').tryAcquire().allowed, true);
    assert.equal(keyed.limiterFor('a').tryAcquire().allowed, false);
    assert.equal((keyed.tryAcquire('b') as { allowed: boolean }).allowed, true);
    for (let i = 0; i < 1_000; i++) keyed.limiterFor(`tenant-${i}`).tryAcquire();
    assert.equal(keyed.size, 3);
    assert.equal(created, 1_002);
  });

  test('LruMap evicts the least recently used entry', () => {
    const evicted: string[] = [];
    const lru = new LruMap<string, number>(2, (k) => evicted.push(k));
    lru.set('a', 1);
    lru.set('b', 2);
    lru.get('a');
    lru.set('c', 3);
    assert.deepEqual(evicted, ['b']);
    assert.deepEqual([...lru.keys()], ['a', 'c']);
  });

  test('RateLimitPolicy rejects with RateLimitedError carrying retryAfterMs, and supports async limiters', async () => {
    const clock = new ManualClock();
    const policy = new RateLimitPolicy(new TokenBucket({ capacity: 1, refillPerSecond: 2, clock }), {
      name: 'sms',
    });
    assert.equal(await policy.execute(() => 'sent'), 'sent');
    await assert.rejects(
      policy.execute(() => 'sent'),
      (e: unknown) =>
        e instanceof RateLimitedError &&
        e.retryAfterMs === 500 &&
        e.code === 'HERALD_RATE_LIMITED' &&
        /"sms"/.test(e.message),
    );
    const asyncPolicy = new RateLimitPolicy({
      tryAcquire: async () => ({ allowed: false, remaining: 0, retryAfterMs: 9 }),
    });
    await assert.rejects(
      asyncPolicy.execute(() => 1),
      (e: unknown) => e instanceof RateLimitedError && e.retryAfterMs === 9,
    );
  });
});

describe('AdaptiveThrottle', () => {
  test('no throttling while the backend accepts; rejects with the SRE probability when it refuses', async () => {
    const clock = new ManualClock();
    let draw = 0.5;
    const throttle = new AdaptiveThrottle({ clock, k: 2, windowMs: 10_000, buckets: 10, random: () => draw });
    for (let i = 0; i < 10; i++) await throttle.execute(() => 'ok');
    assert.equal(throttle.probability, 0);
    for (let i = 0; i < 30; i++)
      await throttle.execute(() => Promise.reject(new Error('503'))).catch(() => {});
    // requests 40, accepts 10: (40 − 20) / 41
    assert.ok(Math.abs(throttle.probability - 20 / 41) < 1e-9);
    draw = 0.48;
    await assert.rejects(
      throttle.execute(() => 'x'),
      RateLimitedError,
    );
    draw = 0.9;
    assert.equal(await throttle.execute(() => 'x'), 'x');
    await clock.advance(10_000);
    assert.equal(throttle.probability, 0, 'history ages out of the window');
  });

  test('isRejection decides which errors count against accepts', async () => {
    const throttle = new AdaptiveThrottle({
      clock: new ManualClock(),
      isRejection: (e) => (e as Error).message === 'overloaded',
    });
    for (let i = 0; i < 20; i++)
      await throttle.execute(() => Promise.reject(new Error('not found'))).catch(() => {});
    assert.equal(throttle.probability, 0);
  });
});

describe('LoadShedder', () => {
  test('sheds in-flight calls above throughput × latency, and not before it has data', async () => {
    const clock = new ManualClock();
    let hot = false;
    const shedder = new LoadShedder({
      clock,
      windowMs: 1_000,
      buckets: 10,
      coolOffMs: 0,
      overloaded: () => hot,
    });
    // No history yet: nothing is shed however many calls are in flight, even when overloaded.
    hot = true;
    const gates: (() => void)[] = [];
    const hold = () => shedder.execute(() => new Promise<void>((r) => gates.push(r)));
    const early = Array.from({ length: 20 }, hold);
    await flush();
    assert.equal(shedder.inFlight, 20);
    gates.splice(0).forEach((g) => g());
    await Promise.all(early);
    await clock.advance(1_000); // let that zero-latency history age out of the window
    hot = false; // the host is fine while the shedder learns (as a CPU probe would say)
    // Teach it: waves of 5 calls taking 50 ms each → 10 calls per 100 ms bucket at 50 ms latency,
    // so the capacity is 10/100 × 50 = 5 in flight (and the waves themselves stay within it).
    for (let wave = 0; wave < 6; wave++) {
      const batch = Array.from({ length: 5 }, hold);
      await clock.advance(50);
      gates.splice(0).forEach((g) => g());
      await Promise.all(batch);
    }
    await clock.advance(100);
    assert.equal(shedder.maxInFlight, 5);
    hot = true;
    const running = Array.from({ length: 6 }, hold);
    await flush();
    const shed: number[] = [];
    shedder.onShed((e) => shed.push(e.inFlight));
    await assert.rejects(hold(), (e: unknown) => e instanceof LoadShedError && e.code === 'HERALD_LOAD_SHED');
    assert.deepEqual(shed, [6]);
    gates.splice(0).forEach((g) => g());
    await Promise.all(running);
  });

  test('does not shed while the overload probe says the host is fine', async () => {
    const clock = new ManualClock();
    const shedder = new LoadShedder({
      clock,
      windowMs: 1_000,
      buckets: 10,
      overloaded: () => false,
      coolOffMs: 0,
    });
    await shedder.execute(async () => clock.advance(100));
    await clock.advance(200);
    const gates: (() => void)[] = [];
    const running = Array.from({ length: 50 }, () =>
      shedder.execute(() => new Promise<void>((r) => gates.push(r))),
    );
    await flush();
    assert.equal(shedder.inFlight, 50);
    gates.forEach((g) => g());
    await Promise.all(running);
  });
});
