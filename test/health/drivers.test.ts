import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { natsHealthCheck } from '../../src/adapters/nats/index.js';
import { postgresHealthCheck } from '../../src/adapters/postgres/index.js';
import { redisHealthCheck } from '../../src/adapters/redis/health.js';
import { sqliteHealthCheck } from '../../src/adapters/sqlite/health.js';
import { HealthChecker, type HealthCheck } from '../../src/health/index.js';
import { needs } from '../support/services.js';
import { closedPort, silentServer } from './net-helpers.js';

async function run(check: HealthCheck) {
  return (await new HealthChecker([{ ...check, cacheTtlMs: 0 }]).check()).checks[0]!;
}

let hanging: Awaited<ReturnType<typeof silentServer>>;
let closed: number;
before(async () => {
  hanging = await silentServer();
  closed = await closedPort();
});
after(() => hanging.close());

describe('sqliteHealthCheck', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-health-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('healthy on a real database file, with and without quick_check', async () => {
    const file = path.join(dir, 'ok.db');
    const db = new Database(file);
    db.exec('CREATE TABLE t (x)');
    db.close();
    const simple = await run(sqliteHealthCheck({ path: file }));
    assert.equal(simple.status, 'healthy', simple.error);
    assert.deepEqual(simple.details, { objects: 1 });
    assert.equal((await run(sqliteHealthCheck({ path: file, quickCheck: true }))).status, 'healthy');
  });
  test('unhealthy when the file is missing (and does not create it)', async () => {
    const file = path.join(dir, 'missing.db');
    const r = await run(sqliteHealthCheck({ path: file }));
    assert.equal(r.status, 'unhealthy');
    assert.throws(() => new Database(file, { fileMustExist: true }), 'the check created no file');
  });
  test('unhealthy when the file is not a database', async () => {
    const file = path.join(dir, 'junk.db');
    writeFileSync(file, 'this is not sqlite'.repeat(100));
    const r = await run(sqliteHealthCheck({ path: file, quickCheck: true }));
    assert.equal(r.status, 'unhealthy');
    assert.match(r.error ?? '', /not a database/i);
  });
});

describe('postgresHealthCheck', async () => {
  const opts = await needs('postgres');
  const url = 'postgres://postgres@127.0.0.1:5432/test';
  test('healthy against the real server (own connection and a pool)', opts, async () => {
    assert.equal((await run(postgresHealthCheck({ connectionString: url }))).status, 'healthy');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      assert.equal((await run(postgresHealthCheck({ pool }))).status, 'healthy');
    } finally {
      await pool.end();
    }
  });
  test('unhealthy when stopped (closed port)', async () => {
    const r = await run(
      postgresHealthCheck({ config: { host: '127.0.0.1', port: closed, user: 'postgres' } }),
    );
    assert.equal(r.status, 'unhealthy');
    assert.match(r.error ?? '', /ECONNREFUSED/);
  });
  test('unhealthy (timed out) when the server accepts but never answers', async () => {
    const r = await run(
      postgresHealthCheck({
        config: { host: '127.0.0.1', port: hanging.port, user: 'postgres' },
        timeoutMs: 150,
      }),
    );
    assert.equal(r.status, 'unhealthy');
    assert.match(r.error ?? '', /within 150 ms|timeout/i);
  });
  test('needs exactly one way to connect', () => {
    assert.throws(() => postgresHealthCheck({}), /exactly one of pool, connectionString, config/);
  });
});

describe('redisHealthCheck', async () => {
  const opts = await needs('redis');
  test('healthy against the real server (own connection and a shared client)', opts, async () => {
    assert.equal((await run(redisHealthCheck({ url: 'redis://127.0.0.1:6379' }))).status, 'healthy');
    const client = new Redis('redis://127.0.0.1:6379');
    try {
      assert.equal((await run(redisHealthCheck({ client }))).status, 'healthy');
      assert.equal(client.status, 'ready', 'a shared client is not closed');
    } finally {
      client.disconnect();
    }
  });
  test('unhealthy when stopped (closed port), without waiting for the timeout', async () => {
    const r = await run(redisHealthCheck({ url: `redis://127.0.0.1:${closed}`, timeoutMs: 5000 }));
    assert.equal(r.status, 'unhealthy');
    assert.ok(r.latencyMs < 5000);
  });
  test('unhealthy (timed out) when the server accepts but never answers', async () => {
    const r = await run(redisHealthCheck({ url: `redis://127.0.0.1:${hanging.port}`, timeoutMs: 150 }));
    assert.equal(r.status, 'unhealthy');
  });
});

describe('natsHealthCheck', async () => {
  const opts = await needs('nats');
  test('healthy against the real server, with rtt in details', opts, async () => {
    const r = await run(natsHealthCheck({ servers: 'nats://127.0.0.1:4222' }));
    assert.equal(r.status, 'healthy', r.error);
    assert.equal(typeof r.details?.rttMs, 'number');
    const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    try {
      assert.equal((await run(natsHealthCheck({ connection: nc }))).status, 'healthy');
    } finally {
      await nc.close();
    }
    assert.match((await run(natsHealthCheck({ connection: nc }))).error ?? '', /closed/);
  });
  test('unhealthy when stopped (closed port)', async () => {
    assert.equal((await run(natsHealthCheck({ servers: `nats://127.0.0.1:${closed}` }))).status, 'unhealthy');
  });
  test('unhealthy (timed out) when the server accepts but never answers', async () => {
    const r = await run(natsHealthCheck({ servers: `nats://127.0.0.1:${hanging.port}`, timeoutMs: 150 }));
    assert.equal(r.status, 'unhealthy');
  });
});
