import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { AnomalyDetector, median, robustScore, SIGNALS, type AnomalyEvent } from '../../src/anomaly/index.js';

const MIN = 60_000;
const WEEK = 7 * 24 * 60 * MIN;
const L = { group: 'billing', event_type: 'order.placed' };

/** Feeds `value(minute)` for `minutes` minutes from `from` and returns the events raised. */
function run(
  d: AnomalyDetector,
  value: (m: number) => number | undefined,
  minutes: number,
  signal: 'publish_rate' | 'handling_rate' | 'error_ratio' | 'latency' = 'handling_rate',
  from = 0,
): AnomalyEvent[] {
  const events: AnomalyEvent[] = [];
  const off = d.onEvent((e) => events.push(e));
  for (let m = from; m < from + minutes; m++) d.observe(signal, L, value(m), m * MIN);
  off();
  return events;
}

describe('robust score', () => {
  test('median, MAD and the three scale terms', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    const o = { madFactor: 1.4826, relativeFloor: 0.1, absoluteFloor: 0.05 };
    // MAD term wins: points 10, 12, 20 → baseline 12, deviations 2, 0, 8 → MAD 2.
    const a = robustScore(20, [10, 12, 20], o);
    assert.deepEqual([a.baseline, a.mad], [12, 2]);
    assert.ok(Math.abs(a.scale - 2.9652) < 1e-9);
    // Relative term wins for a regular series: MAD 0, 10% of 100.
    assert.equal(robustScore(130, [100, 100, 100], o).score, 3);
    // Absolute floor wins for a quiet one: 0.01 events/s never pages on its own noise.
    assert.equal(robustScore(0.1, [0.01, 0.01, 0.01], o).scale, 0.05);
  });

  test('every signal has a floor and a direction', () => {
    for (const s of SIGNALS) {
      assert.ok(s.absoluteFloor > 0, s.name);
      assert.ok(['both', 'up'].includes(s.direction), s.name);
    }
  });
});

describe('AnomalyDetector', () => {
  test('warm-up: no score before the short-term baseline has its history, then a short-term score', () => {
    const d = new AnomalyDetector();
    run(d, () => 10, 45);
    assert.equal(d.status()[0]!.score, undefined);
    assert.equal(d.status()[0]!.warmingUp, true);
    // A 10× spike during warm-up cannot alert: there is nothing to compare with.
    const early = new AnomalyDetector();
    assert.deepEqual(
      run(early, (m) => (m < 20 ? 10 : 100), 40),
      [],
    );
    run(d, () => 10, 1, 'handling_rate', 45);
    assert.equal(d.status()[0]!.baseline, 'short');
    assert.equal(d.status()[0]!.score!.score, 0);
    assert.equal(d.status()[0]!.warmingUp, false);
  });

  test('an anomaly fires after forSeconds and resolves when the value is back', () => {
    const d = new AnomalyDetector();
    const events = run(d, (m) => (m >= 60 && m < 80 ? 20 : 10), 120);
    const firing = events.filter((e) => e.state === 'firing');
    assert.equal(firing.length, 1);
    assert.equal(firing[0]!.kind, 'anomaly');
    assert.equal(firing[0]!.since, 60 * MIN);
    assert.equal(firing[0]!.at, 65 * MIN, 'fires once the condition has held forSeconds (5 min)');
    assert.equal(firing[0]!.baseline, 'short');
    assert.ok(firing[0]!.score!.score > 3);
    const resolved = events.find((e) => e.state === 'resolved');
    assert.ok(resolved && resolved.at >= 80 * MIN);
    assert.deepEqual(d.firing(), []);
  });

  test('a deviation shorter than forSeconds does not fire; a deviation under 3 × scale never does', () => {
    const d = new AnomalyDetector();
    assert.deepEqual(
      run(d, (m) => (m >= 60 && m < 64 ? 20 : 10), 120),
      [],
    );
    const e = new AnomalyDetector();
    assert.deepEqual(
      run(e, (m) => (m >= 60 ? 12.5 : 10), 120),
      [],
      '+25% is under 3 × 10%',
    );
  });

  test('error ratio and latency page upwards only; rates page both ways', () => {
    const d = new AnomalyDetector();
    assert.deepEqual(
      run(d, (m) => (m >= 60 ? 0 : 0.2), 90, 'error_ratio'),
      [],
    );
    assert.equal(
      run(d, (m) => (m >= 60 ? 0.6 : 0.2), 90, 'latency', 100).filter((e) => e.state === 'firing').length,
      0,
    );
    const up = new AnomalyDetector();
    assert.equal(
      run(up, (m) => (m >= 60 ? 0.5 : 0.05), 90, 'latency').filter((e) => e.state === 'firing').length,
      1,
    );
    const drop = new AnomalyDetector();
    assert.equal(
      run(drop, (m) => (m >= 60 ? 3 : 10), 90, 'publish_rate').filter((e) => e.state === 'firing').length,
      1,
    );
  });

  test('flow stopped fires after one minute of rate 0 when traffic is expected, not for a quiet series', () => {
    const d = new AnomalyDetector({ forSeconds: 3600 });
    const events = run(d, (m) => (m >= 60 ? 0 : 1), 70, 'publish_rate');
    const stopped = events.filter((e) => e.kind === 'flow-stopped' && e.state === 'firing');
    assert.equal(stopped.length, 1);
    assert.equal(stopped[0]!.at, 61 * MIN);
    // 0.02 events/s is 6 events per 5-minute window: a window without one is ordinary.
    const quiet = new AnomalyDetector({ forSeconds: 3600 });
    assert.deepEqual(
      run(quiet, (m) => (m >= 60 ? 0 : 0.02), 70, 'publish_rate'),
      [],
    );
  });

  test('with three weeks of history the seasonal baseline is used and follows the weekly shape', () => {
    // A flow that is 10/s on even hours and 40/s on odd ones: the short-term baseline would page
    // at every change, the same-hour-last-weeks baseline does not.
    const shape = (m: number): number => (Math.floor(m / 60) % 2 === 0 ? 10 : 40);
    const d = new AnomalyDetector({ forSeconds: 60 });
    const warm = run(d, shape, (3 * WEEK) / MIN);
    assert.ok(
      warm.some((e) => e.state === 'firing'),
      'the short-term baseline pages on the hourly shape',
    );
    const later = run(d, shape, 24 * 60, 'handling_rate', (3 * WEEK) / MIN);
    assert.deepEqual(later, []);
    assert.equal(d.status()[0]!.baseline, 'seasonal');
    // ...and a real change is still caught against it.
    const spike = run(d, (m) => shape(m) * 3, 30, 'handling_rate', (3 * WEEK) / MIN + 24 * 60);
    assert.ok(spike.some((e) => e.state === 'firing' && e.baseline === 'seasonal'));
  });

  test('a gap in the data makes the baseline incomplete instead of comparing with stale values', () => {
    const d = new AnomalyDetector();
    run(d, () => 10, 60);
    run(d, () => 100, 1, 'handling_rate', 120); // one hour without data
    assert.equal(d.status()[0]!.score, undefined);
  });

  test('bad options fail at once, naming the field and the known ones', () => {
    assert.throws(
      () => new AnomalyDetector({ thresold: 3 } as never),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.field, 'thresold');
        assert.match(e.message, /known: .*threshold/);
        return true;
      },
    );
    assert.throws(
      () => new AnomalyDetector({ windowSeconds: 90 }),
      /windowSeconds: must be a multiple of stepSeconds/,
    );
    assert.throws(
      () => new AnomalyDetector({ signals: ['queue_depth' as never] }),
      /unknown signal "queue_depth"; known: publish_rate/,
    );
    assert.throws(() => new AnomalyDetector({ threshold: -1 }), /threshold: must be a positive number/);
  });
});
