import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { createObservability, UNMATCHED_ROUTE } from '../../src/observability/index.js';
import { metricValue } from './helpers.js';

function obsFor(service: string) {
  const registry = new Registry();
  return {
    registry,
    obs: createObservability({ serviceName: service, metrics: { registry }, logging: false }),
  };
}

describe('HTTP server metrics', () => {
  test('node:http: route templates, unmatched requests and status codes', async () => {
    const { registry, obs } = obsFor('svc-node');
    const server = createServer(
      obs.http.node(
        (req, res) => {
          res.statusCode = req.url?.startsWith('/users/') ? 200 : 404;
          res.end();
        },
        ['/users/:id', '/health'],
      ),
    );
    const port = await listen(server);
    await call(port, 'GET', '/users/17');
    await call(port, 'GET', '/users/42?x=1');
    await call(port, 'POST', '/nope/123');
    server.close();
    assert.equal(
      await metricValue(registry, 'http_requests_total', {
        service: 'svc-node',
        method: 'GET',
        path: '/users/:id',
        status: '200',
      }),
      2,
    );
    assert.equal(
      await metricValue(registry, 'http_requests_total', {
        method: 'POST',
        path: UNMATCHED_ROUTE,
        status: '404',
      }),
      1,
    );
    assert.equal(
      await metricValue(
        registry,
        'http_request_duration_seconds',
        { service: 'svc-node', path: '/users/:id' },
        '_count',
      ),
      2,
    );
    const { values } = await registry.getSingleMetric('http_requests_total')!.get();
    assert.ok(
      values.every((v) => !String(v.labels.path).includes('17')),
      'no raw URLs in labels',
    );
  });

  test('Express: baseUrl + route.path, nested routers, 404s', async () => {
    const { registry, obs } = obsFor('svc-express');
    const app = express();
    app.use(obs.http.express());
    const api = express.Router();
    api.get('/orders/:orderId', (_req, res) => void res.status(201).send('ok'));
    app.use('/api/v1', api);
    app.get('/ping', (_req, res) => void res.send('pong'));
    const server = createServer(app);
    const port = await listen(server);
    await call(port, 'GET', '/api/v1/orders/9');
    await call(port, 'GET', '/api/v1/orders/10');
    await call(port, 'GET', '/ping');
    await call(port, 'GET', '/missing/thing');
    server.close();
    assert.equal(
      await metricValue(registry, 'http_requests_total', {
        service: 'svc-express',
        method: 'GET',
        path: '/api/v1/orders/:orderId',
        status: '201',
      }),
      2,
    );
    assert.equal(await metricValue(registry, 'http_requests_total', { path: '/ping', status: '200' }), 1);
    assert.equal(
      await metricValue(registry, 'http_requests_total', { path: UNMATCHED_ROUTE, status: '404' }),
      1,
    );
  });

  test('Fastify: routeOptions.url, prefixes, 404s', async () => {
    const { registry, obs } = obsFor('svc-fastify');
    const app = Fastify();
    obs.http.fastify(app);
    app.get('/items/:id', async () => ({ ok: true }));
    await app.register(
      async (child) => {
        child.post('/carts/:cartId/items', async (_req, reply) => reply.code(202).send());
      },
      { prefix: '/shop' },
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    await call(port, 'GET', '/items/1');
    await call(port, 'POST', '/shop/carts/c1/items');
    await call(port, 'GET', '/nowhere');
    await app.close();
    assert.equal(
      await metricValue(registry, 'http_requests_total', {
        service: 'svc-fastify',
        method: 'GET',
        path: '/items/:id',
        status: '200',
      }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'http_requests_total', {
        method: 'POST',
        path: '/shop/carts/:cartId/items',
        status: '202',
      }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'http_requests_total', { path: UNMATCHED_ROUTE, status: '404' }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'http_request_duration_seconds', { path: '/items/:id' }, '_count'),
      1,
    );
  });

  test('cache and db helpers', async () => {
    const { registry, obs } = obsFor('svc-helpers');
    await obs.cache!.track('users', 'get', async () => undefined);
    await obs.cache!.track('users', 'get', async () => ({ id: 1 }));
    await assert.rejects(obs.db!.time('insert', 'orders', async () => Promise.reject(new Error('dup'))));
    assert.equal(
      await metricValue(registry, 'cache_hits_total', { cache_name: 'users', operation: 'get' }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'cache_misses_total', { cache_name: 'users', operation: 'get' }),
      1,
    );
    assert.equal(
      await metricValue(
        registry,
        'db_query_duration_seconds',
        { service: 'svc-helpers', operation: 'insert', table: 'orders' },
        '_count',
      ),
      1,
    );
  });
});

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

function call(port: number, method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, (res) => {
      res.resume();
      // 'finish' on the server fires before the client sees the end; give the hook its turn.
      res.on('end', () => setImmediate(() => resolve(res.statusCode ?? 0)));
    })
      .on('error', reject)
      .end();
  });
}
