/**
 * The NATS backend through the registry, the way config and the CLI open it: URL checks, a dead
 * broker failing start within the connect timeout with its URL, and the health check's report of
 * the stream's storage and replicas.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { backends } from '../../../src/backends/index.js';
import { durabilityWarnings } from '../../../src/adapters/nats/health.js';
import { HealthChecker } from '../../../src/health/checker.js';
import { needs } from '../../support/services.js';
import { dropNamespace, freePort, SHARED_URL, uniqueNamespace } from './harness.js';

describe('nats backend', () => {
  test('URLs: hosts, namespace, and clear errors for the rest', () => {
    assert.deepEqual(backends.parse('nats://127.0.0.1:4222,10.0.0.2:4222?namespace=shop'), {
      backend: 'nats',
      url: 'nats://127.0.0.1:4222,10.0.0.2:4222?namespace=shop',
      params: { servers: 'nats://127.0.0.1:4222,nats://10.0.0.2:4222', namespace: 'shop' },
    });
    assert.throws(
      () => backends.parseOrThrow('nats://127.0.0.1:4222?prefix=x'),
      /unknown URL parameter prefix; known: namespace/,
    );
    assert.throws(() => backends.parseOrThrow('nats://127.0.0.1:4222?namespace=a.b'), /namespace must be/);
  });

  test('a broker that is not there fails start within the connect timeout, naming the URL', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    await assert.rejects(backends.open(url, { connectTimeoutMs: 1000 }), (err: Error) => {
      assert.match(err.message, new RegExp(url.replace(/[.:/]/g, '\\$&')));
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'failed within the timeout');
  });

  test('memory storage and single replicas are flagged', () => {
    assert.match(durabilityWarnings('s', 'memory', 3)[0]!, /memory storage/);
    assert.match(durabilityWarnings('s', 'file', 1)[0]!, /1 replica/);
    assert.deepEqual(durabilityWarnings('s', 'file', 3), []);
  });
});

describe('nats backend on the shared server', await needs('nats'), () => {
  const namespace = uniqueNamespace('backend');
  after(() => dropNamespace(SHARED_URL, namespace));

  test('opened by URL; the health check reports storage and replicas and flags one replica', async () => {
    const url = `${SHARED_URL}?namespace=${namespace}`;
    const opened = await backends.open(url);
    await opened.transport.publish('health', [{ id: 'h-1', headers: {}, body: new Uint8Array([1]) }]);
    const check = await backends.healthCheck(url);
    const report = await new HealthChecker([check!]).check();
    const result = report.checks[0]!;
    assert.equal(result.status, 'degraded');
    assert.match(String(result.error), /1 replica/);
    assert.deepEqual((result.details as Record<string, unknown>)[`${namespace}-topics`], {
      storage: 'file',
      replicas: 1,
      messages: 1,
    });
    await opened.close();
  });
});
