import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { createHerald, MemoryEventStore, MemoryTransport } from '../../src/index.js';
import { createObservability } from '../../src/observability/index.js';
import { AnomalyMonitor, type AnomalyEvent } from '../../src/anomaly/index.js';
import { HealthChecker } from '../../src/health/index.js';
import { waitUntil } from '../support/wait.js';

/**
 * The monitor on a real Herald: events published and handled through the memory transport are
 * counted by herald/observability, read back from its registry, and scored. Time is a fake clock
 * stepping one second per tick (all durations below are in those seconds).
 */
describe('AnomalyMonitor', () => {
  test('a producer that stops is reported as an event, a metric and a degraded health check', async () => {
    const registry = new Registry();
    const obs = createObservability({
      serviceName: 'anomaly',
      metrics: { registry, defaultMetrics: false, statsCacheMs: 0 },
      logging: false,
      tracing: false,
    });
    const herald = obs.instrument(
      await createHerald({
        service: 'anomaly',
        transport: new MemoryTransport(),
        stores: { events: new MemoryEventStore() },
      }),
    );
    let handled = 0;
    herald.subscribe({ group: 'billing', events: ['order.placed'], handler: () => void handled++ });
    await herald.start();
    let now = 1_000_000_000;
    const events: AnomalyEvent[] = [];
    const monitor = new AnomalyMonitor({
      registry,
      now: () => now,
      stepSeconds: 1,
      windowSeconds: 5,
      shortOffsetsSeconds: [15, 30, 45],
      forSeconds: 5,
      flowStoppedForSeconds: 1,
      onEvent: (e) => events.push(e),
    });
    const health = new HealthChecker([monitor.healthCheck()]);
    try {
      let sent = 0;
      for (let s = 0; s < 70; s++) {
        if (s < 55) {
          for (let i = 0; i < 20; i++) await herald.publish('order.placed', { n: sent++ });
          await waitUntil(() => handled === sent, 'handled');
        }
        now += 1000;
        await monitor.tick();
      }
      const status = monitor.detector.status();
      assert.deepEqual(
        status.map((s) => s.signal).sort(),
        ['error_ratio', 'handling_rate', 'latency', 'publish_rate'],
        'every signal is read from the registry',
      );
      const stopped = events.filter((e) => e.kind === 'flow-stopped' && e.state === 'firing');
      assert.deepEqual(stopped.map((e) => e.signal).sort(), ['handling_rate', 'publish_rate']);
      assert.deepEqual(stopped.find((e) => e.signal === 'publish_rate')!.labels, {
        event_type: 'order.placed',
      });
      assert.deepEqual(stopped.find((e) => e.signal === 'handling_rate')!.labels, {
        group: 'billing',
        event_type: 'order.placed',
      });
      // Before the stop the flow was steady: nothing fired.
      assert.ok(
        events.every((e) => e.at > 1_000_000_000 + 55_000),
        JSON.stringify(events),
      );

      const report = await health.check();
      const check = report.checks.find((c) => c.name === 'anomalies')!;
      assert.equal(check.status, 'degraded');
      assert.match(check.error ?? '', /flow-stopped publish_rate order\.placed/);
      assert.equal(report.status, 'degraded', 'non-critical: degrades, does not fail readiness');

      const text = await registry.metrics();
      assert.match(text, /anomaly_alerts_firing\{kind="flow-stopped",signal="publish_rate"\} 1/);
      assert.match(text, /anomaly_alerts_total\{kind="flow-stopped",signal="handling_rate"\} 1/);
      assert.match(
        text,
        /anomaly_score\{signal="publish_rate",group="",event_type="order.placed",baseline="short"\} -/,
      );
    } finally {
      monitor.stop();
      await herald.stop();
    }
  });

  test('a missing registry fails at once', () => {
    assert.throws(() => new AnomalyMonitor({} as never), /registry: a prom-client Registry/);
  });
});
