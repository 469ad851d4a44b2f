import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { HealthChecker, HealthProbes, probeHandler, registerFastifyProbes } from '../../src/health/index.js';

async function get(base: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + path);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  // Deliberately blocking: this is the condition /live must detect.
  while (Date.now() < until);
}

describe('HealthProbes over node:http', () => {
  let healthy = true;
  const probes = new HealthProbes({
    checker: new HealthChecker([
      {
        name: 'db',
        cacheTtlMs: 0,
        check: async () => {
          if (!healthy) throw new Error('db down');
        },
      },
      {
        name: 'cache',
        critical: false,
        cacheTtlMs: 0,
        check: async () => {
          throw new Error('cache down');
        },
      },
    ]),
    maxEventLoopDelayMs: 150,
    eventLoop: { resolutionMs: 10, windowMs: 60_000 },
  });
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer(probeHandler(probes));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('/ready fails while starting, passes when ready, /live passes all along', async () => {
    assert.equal((await get(base, '/ready')).status, 503);
    assert.equal((await get(base, '/live')).status, 200);
    probes.markReady();
    const ready = await get(base, '/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
  });

  test('/health shows each check; degraded (non-critical failing) still answers 200', async () => {
    const { status, body } = await get(base, '/health');
    assert.equal(status, 200);
    assert.equal(body.status, 'degraded');
    const checks = body.checks as {
      name: string;
      status: string;
      error?: string;
      critical: boolean;
      latencyMs: number;
      lastChecked: string;
    }[];
    const cache = checks.find((c) => c.name === 'cache')!;
    assert.deepEqual([cache.status, cache.error, cache.critical], ['unhealthy', 'cache down', false]);
    assert.equal(typeof cache.latencyMs, 'number');
    assert.equal(typeof cache.lastChecked, 'string');
  });

  test('a critical failure: /health 503 unhealthy, /ready 503, /live still 200', async () => {
    healthy = false;
    try {
      const health = await get(base, '/health');
      assert.equal(health.status, 503);
      assert.equal(health.body.status, 'unhealthy');
      const ready = await get(base, '/ready');
      assert.equal(ready.status, 503);
      assert.match(String(ready.body.reason), /db/);
      assert.equal((await get(base, '/live')).status, 200, 'dependencies never fail liveness');
    } finally {
      healthy = true;
    }
  });

  test('/live fails after the event loop was blocked longer than the limit', async () => {
    blockEventLoop(400);
    const live = await get(base, '/live');
    assert.equal(live.status, 503);
    assert.match(String(live.body.reason), /event loop blocked/);
  });

  test('draining fails /ready; stopped fails /live; other paths 404', async () => {
    probes.markDraining();
    const ready = await get(base, '/ready');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.phase, 'draining');
    probes.markStopped();
    assert.equal((await get(base, '/live')).status, 503);
    assert.equal((await fetch(`${base}/other`)).status, 404);
  });
});

describe('probe handlers in Express and Fastify', () => {
  test('Express: the same handler is a middleware and passes other paths on', async () => {
    const probes = new HealthProbes();
    probes.markReady();
    const app = express();
    app.use(probeHandler(probes, { ready: '/readyz' }));
    app.get('/hello', (_req, res) => void res.send('hi'));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal((await get(base, '/readyz')).status, 200);
      assert.equal((await get(base, '/health')).body.status, 'healthy');
      assert.equal(await (await fetch(`${base}/hello`)).text(), 'hi');
      probes.markDraining();
      assert.equal((await get(base, '/readyz')).status, 503);
    } finally {
      server.closeAllConnections();
      server.close();
      probes.markStopped();
    }
  });

  test('Fastify: registered routes answer with the probe status', async () => {
    const probes = new HealthProbes({
      checker: new HealthChecker([
        {
          name: 'db',
          check: async () => {
            throw new Error('down');
          },
        },
      ]),
    });
    const app = Fastify();
    registerFastifyProbes(app, probes);
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 503);
      probes.markReady();
      const health = await app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 503);
      assert.equal(health.json().checks[0].error, 'down');
      assert.equal((await app.inject({ method: 'GET', url: '/live' })).statusCode, 200);
    } finally {
      await app.close();
      probes.markStopped();
    }
  });
});
