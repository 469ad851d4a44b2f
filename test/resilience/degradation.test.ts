import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DegradationManager, ManualClock, type LevelChangeEvent } from '../../src/resilience/index.js';

function setup() {
  const clock = new ManualClock();
  const manager = new DegradationManager({
    clock,
    windowMs: 10_000,
    buckets: 10,
    minSamples: 10,
    evaluateEveryMs: 0,
    recoveryHoldMs: 5_000,
    thresholds: { partial: { errorRate: 0.2, latencyMs: 500 }, full: { errorRate: 0.5 } },
    features: { recommendations: 'normal', search: 'partial' },
  });
  const changes: LevelChangeEvent[] = [];
  manager.onLevelChange((e) => changes.push(e));
  return { clock, manager, changes };
}

describe('DegradationManager', () => {
  test('escalates on error rate, maps features per level, and needs minSamples', () => {
    const fresh = setup().manager;
    for (let i = 0; i < 9; i++) fresh.record(10, false);
    assert.equal(fresh.level, 'normal', '100% errors but below minSamples');
    fresh.record(10, false);
    assert.equal(fresh.level, 'full');

    const { manager, changes } = setup();
    for (let i = 0; i < 15; i++) manager.record(10, true);
    for (let i = 0; i < 5; i++) manager.record(10, false);
    assert.equal(manager.level, 'partial', '5/20 = 25% errors');
    assert.equal(manager.isEnabled('recommendations'), false);
    assert.equal(manager.isEnabled('search'), true);
    assert.equal(manager.isEnabled('unknown-feature'), true);
    for (let i = 0; i < 20; i++) manager.record(10, false);
    assert.equal(manager.level, 'full');
    assert.equal(manager.isEnabled('search'), false);
    assert.deepEqual(
      changes.map((c) => `${c.from}->${c.to}`),
      ['normal->partial', 'partial->full'],
    );
  });

  test('escalates on the latency percentile', () => {
    const { manager } = setup();
    for (let i = 0; i < 97; i++) manager.record(20);
    assert.equal(manager.level, 'normal');
    for (let i = 0; i < 3; i++) manager.record(2_000);
    assert.equal(manager.level, 'partial', 'p99 above 500 ms');
    assert.ok(manager.figures().latencyMs >= 2_000);
  });

  test('hysteresis: no step down until figures stay under the recovery threshold for the hold time', async () => {
    const { clock, manager, changes } = setup();
    for (let i = 0; i < 7; i++) manager.record(10, true);
    for (let i = 0; i < 3; i++) manager.record(10, false);
    assert.equal(manager.level, 'partial');
    // Errors age out, then the rate hovers at 18%: under 20% but above the 16% recovery threshold.
    await clock.advance(10_000);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 41; i++) manager.record(10, true);
      for (let i = 0; i < 9; i++) manager.record(10, false);
      await clock.advance(2_000);
    }
    assert.equal(manager.level, 'partial', 'flapping around the threshold does not step down');
    await clock.advance(10_000);
    for (let i = 0; i < 50; i++) manager.record(10, true);
    assert.equal(manager.level, 'partial', 'calm, but not for the hold time yet');
    await clock.advance(4_999);
    manager.record(10, true);
    assert.equal(manager.level, 'partial');
    await clock.advance(1);
    manager.record(10, true);
    assert.equal(manager.level, 'normal');
    assert.equal(changes.length, 2);
  });

  test('manual override wins until cleared', () => {
    const { manager, changes } = setup();
    manager.override('full');
    assert.equal(manager.level, 'full');
    for (let i = 0; i < 50; i++) manager.record(1, true);
    assert.equal(manager.level, 'full');
    manager.override(undefined);
    assert.equal(manager.level, 'normal');
    assert.deepEqual(
      changes.map((c) => c.reason),
      ['override', 'override-cleared'],
    );
  });

  test('bad config names the field', () => {
    assert.throws(() => new DegradationManager({ features: { x: 'broken' as 'full' } }), /features.x/);
    assert.throws(
      () => new DegradationManager({ thresholds: { partial: { errorRate: 2 } } }),
      /thresholds.partial.errorRate/,
    );
  });
});
