import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../src/observability/fast-metrics.js';
import { mulberry32 } from '../resilience/prng.js';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

describe('fast metrics', () => {
  test('a FastHistogram exposes exactly what a prom-client Histogram does for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const fast = new FastHistogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['a'],
      buckets: BUCKETS,
      registers: [ours],
    });
    const ref = new Histogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['a'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const rnd = mulberry32(7);
    const series = { x: fast.labels({ a: 'x' }), y: fast.labels({ a: 'y' }) };
    for (let i = 0; i < 5000; i++) {
      const a = rnd() < 0.3 ? 'x' : 'y';
      // Bucket edges included: a value equal to a bound belongs to that bound's bucket.
      const v = i % 17 === 0 ? BUCKETS[i % BUCKETS.length]! : rnd() ** 3 * 20;
      series[a].observe(v);
      ref.observe({ a }, v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    ours.resetMetrics();
    theirs.resetMetrics();
    series.x.observe(0.5);
    ref.observe({ a: 'x' }, 0.5);
    // prom-client forgets series on reset; ours keeps them at zero (callers hold them), so compare one series.
    const seriesX = (text: string): string[] => text.split('\n').filter((l) => l.includes('a="x"'));
    assert.deepEqual(seriesX(await ours.metrics()), seriesX(await theirs.metrics()));
  });

  test('a FastCounter exposes exactly what a prom-client Counter does, also as OpenMetrics', async () => {
    for (const contentType of [
      Registry.PROMETHEUS_CONTENT_TYPE,
      Registry.OPENMETRICS_CONTENT_TYPE,
    ] as const) {
      const ours = new Registry<typeof contentType>();
      const theirs = new Registry<typeof contentType>();
      ours.setContentType(contentType);
      theirs.setContentType(contentType);
      const fast = new FastCounter({
        name: 'c_total',
        help: 'c',
        labelNames: ['a', 'b'],
        registers: [ours as Registry],
      });
      const ref = new Counter({
        name: 'c_total',
        help: 'c',
        labelNames: ['a', 'b'],
        registers: [theirs as Registry],
      });
      fast.labels({ a: '1', b: 'x' }).inc();
      fast.labels({ a: '1', b: 'x' }).inc(2.5);
      fast.labels({ a: '2', b: 'y"\n' }).inc();
      ref.inc({ a: '1', b: 'x' });
      ref.inc({ a: '1', b: 'x' }, 2.5);
      ref.inc({ a: '2', b: 'y"\n' });
      assert.equal(await ours.metrics(), await theirs.metrics());
    }
  });

  test('bad label sets and values fail loudly', () => {
    const r = new Registry();
    const c = new FastCounter({ name: 'x_total', help: 'x', labelNames: ['a'], registers: [r] });
    assert.throws(() => c.labels({}), /label "a" is missing/);
    assert.throws(() => c.labels({ a: '1', b: '2' }), /unknown label "b"/);
    assert.throws(() => c.labels({ a: '1' }).inc(-1), RangeError);
    const h = new FastHistogram({ name: 'y', help: 'y', buckets: [1], registers: [r] });
    assert.throws(() => h.labels().observe(Number.NaN), TypeError);
    assert.throws(
      () => new FastHistogram({ name: 'z', help: 'z', buckets: [1, 1], registers: [r] }),
      /distinct/,
    );
    assert.throws(
      () => new FastCounter({ name: 'x_total', help: 'x', registers: [r] }),
      /already been registered/,
    );
  });
});
