import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { redis } from '../../src/adapters/redis/index.js';
import { sqlite } from '../../src/adapters/sqlite/index.js';
import { backends } from '../../src/backends/index.js';
import { createHerald, defineEvent, PermanentError } from '../../src/index.js';
import { dropPrefix, OwnRedis, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';
import { waitUntil } from '../support/wait.js';

const run = promisify(execFile);
const FIXTURE = join(import.meta.dirname, 'fixtures', 'exits.ts');
const Thing = defineEvent<{ n: number }>('thing.item.created');

/** Runs a fixture scenario; rejects if the process has not exited by itself within `timeoutMs`. */
async function scenario(args: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', FIXTURE, ...args], {
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('brokers that are down, slow or stalled', () => {
  test('an unreachable Redis fails start() within the connect timeout, naming the URL, and the process exits', async () => {
    const r = await scenario(['unreachable', 'redis://127.0.0.1:6390'], 20_000);
    assert.equal(r['code'], 'HERALD_TRANSPORT_UNREACHABLE');
    assert.match(String(r['message']), /redis:\/\/127\.0\.0\.1:6390/);
    assert.ok(Number(r['ms']) < 1500 + 700, `start failed after ${String(r['ms'])} ms`);
  });

  test('partial redisStores(): the unused store holds no connection, and the process exits after stop()', async () => {
    const prefix = uniquePrefix('partial');
    try {
      assert.deepEqual(await scenario(['partial-stores', SHARED_URL, prefix], 20_000), { stopped: true });
    } finally {
      await dropPrefix(SHARED_URL, prefix);
    }
  });

  test(
    'stop() is bounded when the Redis server hangs (SIGSTOP) with a handler in flight',
    { skip: !OwnRedis.available() },
    async () => {
      const server = await OwnRedis.start();
      try {
        const herald = await createHerald({
          service: 's',
          transport: redis({ url: server.url, onError: () => undefined }),
          drainTimeoutMs: 500,
        });
        let started = 0;
        herald.subscribe({
          group: 'g',
          events: [Thing],
          handler: async (_e, ctx) => {
            started++;
            await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          },
        });
        await herald.start();
        await herald.publish(Thing, { n: 1 });
        await waitUntil(() => started === 1, 'the handler to start');
        process.kill(server.pid!, 'SIGSTOP');
        const t0 = Date.now();
        await herald.stop();
        const took = Date.now() - t0;
        // drain timeout + the transport's bounded close (the step limit is the outer bound).
        assert.ok(took < 500 + 3000, `stop() took ${took} ms`);
      } finally {
        process.kill(server.pid!, 'SIGCONT');
        await server.stop();
      }
    },
  );
});

describe('durable transports bring their durable stores', () => {
  test('sqlite({ path }) alone: dead letters land in the same file, where the CLI finds them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-default-stores-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.db');
    const herald = await createHerald({ service: 's', transport: sqlite({ path }) });
    herald.subscribe({
      group: 'g',
      events: [Thing],
      idempotency: true, // needs a store: the file's own
      handler: () => {
        throw new PermanentError('no');
      },
    });
    await herald.start();
    await herald.publish(Thing, { n: 1 });
    await waitUntil(async () => (await herald.deadLetters.count({})) === 1, 'a dead letter');
    await herald.stop();
    const opened = await backends.open(`sqlite://${path}`, { mustExist: true });
    try {
      assert.equal(await opened.stores.deadLetters!.count({ group: 'g' }), 1);
    } finally {
      await opened.close();
    }
  });

  test('redis({ url }) alone: dead letters go to Redis; stores given explicitly win', async () => {
    const prefix = uniquePrefix('defaults');
    try {
      const herald = await createHerald({ service: 's', transport: redis({ url: SHARED_URL, prefix }) });
      herald.subscribe({
        group: 'g',
        events: [Thing],
        handler: () => {
          throw new PermanentError('no');
        },
      });
      await herald.start();
      await herald.publish(Thing, { n: 1 });
      await waitUntil(async () => (await herald.deadLetters.count({})) === 1, 'a dead letter');
      await herald.stop();
      const opened = await backends.open(`${SHARED_URL}?namespace=${prefix}`, { mustExist: true });
      try {
        assert.equal(await opened.stores.deadLetters!.count({ group: 'g' }), 1);
      } finally {
        await opened.close();
      }
    } finally {
      await dropPrefix(SHARED_URL, prefix);
    }
  });
});
