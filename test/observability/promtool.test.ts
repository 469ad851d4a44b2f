import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import { describe, test } from 'node:test';
import { createHerald, MemoryTransport } from '../../src/index.js';
import { createObservability } from '../../src/observability/index.js';
import { unique, waitUntil } from '../support/wait.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const installed = promtool.status === 0;
// Locally a missing promtool skips; under CI it must fail (install it with `apt-get install -y prometheus`).
const skip =
  !installed && process.env.CI !== 'true' ? 'promtool not installed (apt-get install -y prometheus)' : false;

describe('Prometheus exposition', () => {
  test('promtool check metrics accepts the /metrics output', { skip }, async () => {
    assert.ok(installed, 'promtool is required under CI: apt-get install -y prometheus');
    const obs = createObservability({
      serviceName: 'svc-prom',
      metrics: { defaultMetrics: true },
      logging: false,
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-prom', transport: new MemoryTransport() }),
    );
    let n = 0;
    herald.subscribe({
      group: unique('g'),
      events: ['prom.metric.checked'],
      retry: false,
      handler: (e) => {
        n++;
        if ((e.payload as { fail?: boolean }).fail) throw new Error('x');
      },
    });
    await herald.start();
    await herald.publish('prom.metric.checked', {});
    await herald.publish('prom.metric.checked', { fail: true });
    await waitUntil(() => n === 2, 'handled');
    obs.cache?.hit('users');
    obs.cache?.miss('users');
    await obs.db?.time('select', 'users', async () => 1);
    obs.grpc?.record('server', '/pkg.Svc/Get', 'OK', 0.002);

    const server = createServer((req, res) =>
      req.url === '/metrics'
        ? obs.metricsHandler(req, res)
        : obs.http.node(() => res.end('ok'), ['/x'])(req, res),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await get(port, '/x');
    const { status, body, type } = await get(port, '/metrics');
    server.close();
    await herald.stop();
    assert.equal(status, 200);
    assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(
      body,
      /^events_published_total\{event_type="prom.metric.checked",source="svc-prom",topic="prom.events"\} 2$/m,
    );
    assert.match(body, /^http_requests_total\{service="svc-prom",method="GET",path="\/x",status="200"\} 1$/m);
    assert.doesNotMatch(body, /nodejs_active_\w+_total/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });
});

function get(
  port: number,
  path: string,
): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    })
      .on('error', reject)
      .end();
  });
}
