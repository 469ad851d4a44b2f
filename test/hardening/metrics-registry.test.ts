import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { createObservability } from '../../src/observability/index.js';

test('an app registry that already has http_requests_total: no throw, HTTP metrics only once mounted', async () => {
  const registry = new Registry();
  const mine = new Counter({
    name: 'http_requests_total',
    help: 'mine',
    labelNames: ['service', 'method', 'path', 'status'],
    registers: [registry],
  });
  const obs = createObservability({ serviceName: 'svc', metrics: { registry }, logging: false });
  assert.equal(
    registry.getSingleMetric('http_request_duration_seconds'),
    undefined,
    'nothing HTTP registered before mounting',
  );
  obs.http.express();
  assert.ok(registry.getSingleMetric('http_request_duration_seconds'));
  assert.equal(registry.getSingleMetric('http_requests_total'), mine, "the app's own counter is kept");
});

test('metrics.prefix keeps Herald HTTP metrics apart', () => {
  const registry = new Registry();
  new Counter({ name: 'http_requests_total', help: 'mine', registers: [registry] });
  const obs = createObservability({
    serviceName: 'svc',
    metrics: { registry, prefix: 'herald_' },
    logging: false,
  });
  obs.http.express();
  assert.ok(registry.getSingleMetric('herald_http_requests_total'));
});
