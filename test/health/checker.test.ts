import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { HealthChecker, aggregate } from '../../src/health/index.js';
import { sleep } from '../support/wait.js';

describe('HealthChecker', () => {
  test('healthy when every check passes; results carry latency, critical and lastChecked', async () => {
    const checker = new HealthChecker([
      { name: 'a', check: async () => {} },
      { name: 'b', critical: false, check: async () => ({ details: { x: 1 } }) },
    ]);
    const report = await checker.check();
    assert.equal(report.status, 'healthy');
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['a', 'b'],
    );
    const b = report.checks[1]!;
    assert.equal(b.critical, false);
    assert.deepEqual(b.details, { x: 1 });
    assert.ok(b.latencyMs >= 0);
    assert.ok(!Number.isNaN(Date.parse(b.lastChecked)));
  });

  test('a failing critical check makes the report unhealthy, with the error message', async () => {
    const checker = new HealthChecker([
      {
        name: 'db',
        check: async () => {
          throw new Error('connection refused');
        },
      },
      { name: 'ok', check: async () => {} },
    ]);
    const report = await checker.check();
    assert.equal(report.status, 'unhealthy');
    assert.equal(report.checks[0]!.status, 'unhealthy');
    assert.equal(report.checks[0]!.error, 'connection refused');
  });

  test('a failing non-critical check only degrades the report', async () => {
    const checker = new HealthChecker([
      {
        name: 'cache',
        critical: false,
        check: async () => {
          throw new Error('down');
        },
      },
    ]);
    assert.equal((await checker.check()).status, 'degraded');
  });

  test('checks run concurrently, each bounded by its own timeout, and the slow one is aborted', async () => {
    let aborted: unknown;
    const checker = new HealthChecker([
      {
        name: 'hangs',
        timeoutMs: 50,
        check: (signal) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted = signal.reason;
              reject(signal.reason as Error);
            }),
          ),
      },
      { name: 'quick', check: async () => {} },
    ]);
    const report = await checker.check();
    const hangs = report.checks[0]!;
    assert.equal(hangs.status, 'unhealthy');
    assert.match(hangs.error ?? '', /did not answer within 50 ms/);
    assert.ok(aborted instanceof Error, 'the check saw the abort');
    assert.equal(report.checks[1]!.status, 'healthy');
  });

  test('a check slower than its latency threshold is degraded', async () => {
    const checker = new HealthChecker([{ name: 'slow', degradedAfterMs: 10, check: () => sleep(40) }]);
    const result = (await checker.check()).checks[0]!;
    assert.equal(result.status, 'degraded');
    assert.match(result.error ?? '', /slow: answered in .* threshold 10 ms/);
  });

  test('a check may report degraded itself', async () => {
    const checker = new HealthChecker([
      { name: 'x', check: async () => ({ status: 'degraded', message: 'half the replicas' }) },
    ]);
    const report = await checker.check();
    assert.equal(report.status, 'degraded');
    assert.equal(report.checks[0]!.error, 'half the replicas');
  });

  test('results are cached for cacheTtlMs and concurrent calls share one in-flight run', async () => {
    let runs = 0;
    const checker = new HealthChecker([
      {
        name: 'dep',
        cacheTtlMs: 60_000,
        check: async () => {
          runs++;
          await sleep(20);
        },
      },
    ]);
    const reports = await Promise.all(Array.from({ length: 50 }, () => checker.check()));
    assert.equal(runs, 1, 'a probe storm runs the check once');
    assert.ok(reports.every((r) => r.status === 'healthy'));
    const again = await checker.checkOne('dep');
    assert.equal(runs, 1);
    assert.equal(again.cached, true);
  });

  test('cacheTtlMs 0 runs the check every time (once the previous run finished)', async () => {
    let runs = 0;
    const checker = new HealthChecker([
      {
        name: 'dep',
        cacheTtlMs: 0,
        check: async () => {
          runs++;
        },
      },
    ]);
    await checker.check();
    await checker.check();
    assert.equal(runs, 2);
  });

  test('a check that throws synchronously is reported, not thrown', async () => {
    const checker = new HealthChecker([
      {
        name: 'sync',
        check: () => {
          throw new TypeError('boom');
        },
      },
    ]);
    assert.equal((await checker.check()).checks[0]!.error, 'boom');
  });

  test('rejects duplicate names and bad settings with ConfigError', async () => {
    const checker = new HealthChecker([{ name: 'a', check: async () => {} }]);
    assert.throws(() => checker.add({ name: 'a', check: async () => {} }), ConfigError);
    assert.throws(() => checker.add({ name: 'b', timeoutMs: 0, check: async () => {} }), /b\.timeoutMs/);
    assert.throws(() => checker.add({ name: '', check: async () => {} }), /check\.name/);
    await assert.rejects(() => checker.checkOne('nope'), /no health check named "nope"/);
  });

  test('aggregate: critical unhealthy wins over degraded', () => {
    assert.equal(aggregate([]), 'healthy');
    assert.equal(
      aggregate([
        { status: 'degraded', critical: true },
        { status: 'unhealthy', critical: true },
      ]),
      'unhealthy',
    );
    assert.equal(aggregate([{ status: 'unhealthy', critical: false }]), 'degraded');
  });
});
