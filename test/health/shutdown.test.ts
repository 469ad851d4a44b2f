import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sqlite, sqliteStores } from '../../src/adapters/sqlite/index.js';
import { defineEvent } from '../../src/core/event.js';
import { createHerald } from '../../src/core/herald.js';
import { Lifecycle, HealthProbes, signalExitCode } from '../../src/health/index.js';
import { waitUntil } from '../support/wait.js';

const fixture = fileURLToPath(new URL('./fixtures/sqlite-consumer.ts', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'herald-shutdown-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const OrderPlaced = defineEvent<{ n: number }>('orders.placed');

function handled(log: string): { id: string; attempt: number }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, attempt] = l.split(' ');
      return { id: id!, attempt: Number(attempt) };
    });
}

async function publish(db: string, count: number): Promise<string[]> {
  const herald = await createHerald({ service: 'publisher', transport: sqlite({ path: db }) });
  const events = await herald.publishBatch(
    Array.from({ length: count }, (_, n) => ({ event: OrderPlaced, payload: { n } })),
  );
  await herald.stop();
  return events.map((e) => e.id);
}

function startChild(
  db: string,
  log: string,
  handlerMs: number,
): { child: ChildProcess; exited: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, DB: db, LOG: log, HANDLER_MS: String(handlerMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, exited };
}

/** A second member of the same group finishes whatever is left. */
async function finishRest(db: string, log: string, expected: readonly string[]): Promise<number> {
  const herald = await createHerald({
    service: 'second',
    transport: sqlite({ path: db, visibilityTimeoutMs: 1500, pollIntervalMs: 20 }),
    stores: sqliteStores({ path: db }),
  });
  herald.subscribe({
    group: 'workers',
    events: [OrderPlaced],
    ordering: 'none',
    handler: async (event, ctx) => {
      const { appendFileSync } = await import('node:fs');
      appendFileSync(log, `${event.id} ${ctx.attempt}\n`);
    },
  });
  await herald.start();
  try {
    await waitUntil(
      () => new Set(handled(log).map((h) => h.id)).size >= expected.length,
      'every event handled',
      20_000,
    );
    return await herald.deadLetters.count();
  } finally {
    await herald.stop();
  }
}

describe('graceful shutdown of a SQLite consumer under load', () => {
  test('SIGTERM mid-work: drains in-flight handlers, exits 0, nothing lost, duplicated or dead-lettered', async () => {
    const db = path.join(dir, 'graceful.db');
    const log = path.join(dir, 'graceful.log');
    const ids = await publish(db, 300);
    const { child, exited } = startChild(db, log, 15);
    await waitUntil(() => handled(log).length >= 40, 'the child is busy', 20_000);
    child.kill('SIGTERM');
    const { code, stderr } = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /shutdown complete/);
    const byChild = handled(log);
    assert.ok(byChild.length < ids.length, `the child was stopped mid-work (handled ${byChild.length})`);

    const deadLetters = await finishRest(db, log, ids);
    const all = handled(log);
    assert.deepEqual(new Set(all.map((h) => h.id)), new Set(ids), 'every published event was handled');
    assert.equal(all.length, ids.length, 'no event handled twice: in-flight work was drained and acked');
    assert.ok(
      all.every((h) => h.attempt === 1),
      'no delivery counted as a failed attempt',
    );
    assert.equal(deadLetters, 0, 'nothing dead-lettered');
  });

  test('a second signal forces exit 143; the unfinished messages are redelivered, not lost', async () => {
    const db = path.join(dir, 'forced.db');
    const log = path.join(dir, 'forced.log');
    const ids = await publish(db, 40);
    const { child, exited } = startChild(db, log, 400);
    await waitUntil(() => handled(log).length >= 8, 'the child is busy', 20_000);
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100)); // inside the drain: handlers still running
    child.kill('SIGTERM');
    const { code, stderr } = await exited;
    assert.equal(code, 143, stderr);
    assert.match(stderr, /second signal/);

    const deadLetters = await finishRest(db, log, ids);
    assert.deepEqual(
      new Set(handled(log).map((h) => h.id)),
      new Set(ids),
      'at least once: every event handled',
    );
    assert.equal(deadLetters, 0);
  });
});

describe('Lifecycle (in process)', () => {
  test('order: readiness fails first, then stop, then hooks; shutdown() is idempotent', async () => {
    const steps: string[] = [];
    const probes = new HealthProbes();
    probes.markReady();
    const lifecycle = new Lifecycle(
      { stop: async () => void steps.push(`stop (phase ${probes.phase})`) },
      { probes, readinessDelayMs: 20, exit: false, onShutdown: [() => void steps.push('hook')] },
    );
    const first = lifecycle.shutdown();
    assert.equal(probes.phase, 'draining');
    assert.equal((await probes.ready()).status, 503);
    assert.equal(lifecycle.shutdown(), first);
    await first;
    assert.deepEqual(steps, ['stop (phase draining)', 'hook']);
    assert.equal(probes.phase, 'stopped');
  });

  test('a stop that exceeds the shutdown timeout rejects', async () => {
    const lifecycle = new Lifecycle(
      { stop: () => new Promise(() => {}) },
      { readinessDelayMs: 0, drainTimeoutMs: 30, exit: false },
    );
    await assert.rejects(lifecycle.shutdown(), /did not finish within drainTimeoutMs=30/);
  });

  test('signal exit codes follow 128 + signal number', () => {
    assert.equal(signalExitCode('SIGINT'), 130);
    assert.equal(signalExitCode('SIGTERM'), 143);
  });
});
