import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import {
  HealthChecker,
  breakerCheck,
  deadLetterGrowthCheck,
  httpCheck,
  lagCheck,
  probeCheck,
  type HealthCheck,
} from '../../src/health/index.js';
import { MemoryTransport } from '../../src/transport/memory.js';
import { sleep, unique } from '../support/wait.js';
import { closedPort } from './net-helpers.js';

async function run(check: HealthCheck) {
  return (await new HealthChecker([{ ...check, cacheTtlMs: 0 }]).check()).checks[0]!;
}

describe('httpCheck against a real HTTP server', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 300);
      if (req.url === '/broken') return void ((res.statusCode = 500), res.end());
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('healthy on 200 with the status in details', async () => {
    const r = await run(httpCheck({ url: `${base}/` }));
    assert.equal(r.status, 'healthy');
    assert.deepEqual(r.details, { status: 200 });
  });
  test('unhealthy on a 500', async () => {
    const r = await run(httpCheck({ url: `${base}/broken` }));
    assert.equal(r.status, 'unhealthy');
    assert.match(r.error ?? '', /answered 500/);
  });
  test('degraded when slower than the latency threshold', async () => {
    const r = await run(httpCheck({ url: `${base}/slow`, degradedAfterMs: 50, timeoutMs: 2000 }));
    assert.equal(r.status, 'degraded');
  });
  test('unhealthy when it does not answer within the timeout (server sleeps)', async () => {
    const r = await run(httpCheck({ url: `${base}/slow`, timeoutMs: 60 }));
    assert.equal(r.status, 'unhealthy');
    assert.match(r.error ?? '', /within 60 ms/);
  });
  test('unhealthy when nothing listens (closed port)', async () => {
    const r = await run(httpCheck({ url: `http://127.0.0.1:${await closedPort()}/` }));
    assert.equal(r.status, 'unhealthy');
    assert.ok((r.error ?? '').length > 0);
  });
  test('a bad URL is a ConfigError', () => {
    assert.throws(() => httpCheck({ url: 'not a url' }), ConfigError);
  });
});

describe('lagCheck with the memory transport', () => {
  test('degraded over maxLag, unhealthy over failLag, healthy once consumed', async () => {
    const transport = new MemoryTransport();
    const topic = unique('orders');
    const group = unique('billing');
    const body = new Uint8Array([1]);
    await transport.publish(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ id: `m${i}`, headers: {}, body })),
    );
    const options = { transport, groups: [{ topic, group }] };
    assert.equal((await run(lagCheck({ ...options, maxLag: 10 }))).status, 'healthy');
    const degraded = await run(lagCheck({ ...options, maxLag: 2 }));
    assert.equal(degraded.status, 'degraded');
    assert.deepEqual(degraded.details, { lag: { [`${group}@${topic}`]: 5 } });
    assert.equal(degraded.critical, false);
    assert.equal((await run(lagCheck({ ...options, maxLag: 2, failLag: 4 }))).status, 'unhealthy');
    const sub = await transport.subscribe(topic, { group, prefetch: 10 }, (d) => d.ack());
    await sleep(30);
    assert.equal(
      (await run(lagCheck({ transport, subscriptions: [{ topics: [topic], group }], maxLag: 0 }))).status,
      'healthy',
    );
    await sub.close();
    await transport.close();
  });
  test('a transport without stats() is a ConfigError', () => {
    assert.throws(() => lagCheck({ transport: { name: 'x' }, maxLag: 1 }), /has no stats/);
  });
});

describe('deadLetterGrowthCheck', () => {
  test('healthy when stable, degraded when the count grows within the window', async () => {
    let count = 3;
    const check = {
      ...deadLetterGrowthCheck({ deadLetters: { count: async () => count }, windowMs: 60_000 }),
      cacheTtlMs: 0,
    };
    const checker = new HealthChecker([check]);
    assert.equal((await checker.check()).status, 'healthy', 'a non-empty but stable DLQ is fine');
    assert.equal((await checker.check()).status, 'healthy');
    count = 5;
    const grown = (await checker.check()).checks[0]!;
    assert.equal(grown.status, 'degraded');
    assert.deepEqual(grown.details, { count: 5, growth: 2, windowMs: 60_000 });
  });
  test('growth older than the window no longer counts', async () => {
    let count = 0;
    const checker = new HealthChecker([
      {
        ...deadLetterGrowthCheck({
          deadLetters: { count: async () => count },
          windowMs: 30,
          over: 'unhealthy',
        }),
        cacheTtlMs: 0,
      },
    ]);
    await checker.check();
    count = 1;
    assert.equal(
      (await checker.check()).status,
      'degraded',
      'non-critical by default, so unhealthy only degrades the whole',
    );
    await sleep(50);
    await checker.check(); // a sample after the window: it becomes the baseline
    await sleep(50);
    assert.equal((await checker.check()).checks[0]!.status, 'healthy');
  });
});

describe('breakerCheck', () => {
  test('maps closed / half-open / open from an object or a function', async () => {
    const breaker = { state: 'closed' };
    assert.equal((await run(breakerCheck({ name: 'payments', breaker }))).status, 'healthy');
    breaker.state = 'half-open';
    assert.equal((await run(breakerCheck({ name: 'payments', breaker }))).status, 'degraded');
    assert.equal((await run(breakerCheck({ name: 'payments', breaker: () => 'open' }))).status, 'unhealthy');
    const report = await new HealthChecker([
      breakerCheck({ name: 'payments', breaker: () => 'open' }),
    ]).check();
    assert.equal(report.status, 'degraded', 'an open breaker is non-critical by default');
    assert.match(
      (await run(breakerCheck({ name: 'p', breaker: () => 'weird' }))).error ?? '',
      /unknown breaker state/,
    );
    assert.throws(() => breakerCheck({ name: 'p', breaker: {} as never }), ConfigError);
  });
});

describe('probeCheck (e.g. Kafka through your own admin client)', () => {
  test('healthy when the probe resolves, unhealthy with its error when it rejects', async () => {
    assert.equal(
      (await run(probeCheck({ name: 'kafka', probe: async () => 'cluster-id' }))).status,
      'healthy',
    );
    const r = await run(
      probeCheck({
        name: 'kafka',
        probe: async () => {
          throw new Error('no brokers');
        },
      }),
    );
    assert.equal(r.error, 'no brokers');
    assert.throws(() => probeCheck({ name: 'k', probe: undefined as never }), ConfigError);
  });
});
