/**
 * Read-ahead (`bufferSize`, ADR 0304/0305): entries a consumer fetched ahead of its handler slots are
 * leases like handed-out ones. While the holder lives, nobody else gets them; once it dies, they are
 * reclaimed, in key order.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ConfigError, type Message } from '../../../src/index.js';
import { redis, type RedisTransport, type RedisTransportOptions } from '../../../src/adapters/redis/index.js';
import { needs } from '../../support/services.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from './harness.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'buffer-holder.ts');

describe('redis transport: bufferSize option', () => {
  const bad: [RedisTransportOptions, string][] = [
    [{ bufferSize: -1 }, 'bufferSize'],
    [{ bufferSize: 2.5 }, 'bufferSize'],
    [{ bufferSize: '64' as unknown as number }, 'bufferSize'],
    [{ bufferSize: 1_000_000 }, 'bufferSize'],
  ];
  for (const [options, field] of bad) {
    test(`rejects bufferSize ${JSON.stringify(options.bufferSize)} naming the field`, () => {
      assert.throws(
        () => redis(options),
        (err: unknown) => err instanceof ConfigError && err.field === field,
      );
    });
  }

  test('accepts 0 (fetch only for free handler slots)', async () => {
    const t = redis({ url: SHARED_URL, prefix: uniquePrefix('buffer-zero'), bufferSize: 0 });
    await t.close();
  });
});

describe('redis transport: leases of entries waiting in the local buffer', await needs('redis'), () => {
  const prefix = uniquePrefix('read-ahead');
  const raw = new Redis(SHARED_URL);
  const children = new Set<ChildProcess>();
  const transports: RedisTransport[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(transports.map((t) => t.close()));
    raw.disconnect();
    await dropPrefix(SHARED_URL, prefix);
  });

  for (const ordering of ['none', 'key'] as const) {
    test(`ordering ${ordering}: not reclaimed while the holder lives, reclaimed in order once it dies`, async () => {
      const claimIdleMs = 300;
      const topic = unique('ahead');
      const group = unique('g');
      const stream = `${prefix}:{${topic}}:s`;
      const publisher = redis({ url: SHARED_URL, prefix });
      transports.push(publisher);
      const total = 300;
      const messages: Message[] = Array.from({ length: total }, (_, i) => ({
        id: `m-${String(i).padStart(4, '0')}`,
        key: `k${i % 7}`,
        headers: {},
        body: new Uint8Array([i % 256]),
      }));
      for (let i = 0; i < total; i += 100) await publisher.publish(topic, messages.slice(i, i + 100));

      const child = fork(fixture, [], {
        execArgv: ['--import', 'tsx'],
        env: {
          ...process.env,
          HOLDER_REDIS_URL: SHARED_URL,
          HOLDER_PREFIX: prefix,
          HOLDER_TOPIC: topic,
          HOLDER_GROUP: group,
          HOLDER_ORDERING: ordering,
          HOLDER_CLAIM_IDLE_MS: String(claimIdleMs),
          HOLDER_ACK_FIRST: '60',
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.add(child);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const stuckOn = await new Promise<string>((resolve, reject) => {
        child.on('message', (m) => {
          if (typeof m === 'object' && m !== null && 'stuckOn' in m) resolve(String(m.stuckOn));
        });
        child.once('exit', (code, signal) => reject(new Error(`holder exited early (${code ?? signal})`)));
      });
      await sleep(100); // let a fetch that was under way land in the buffer

      // Everything the holder leased beyond the one in its handler waits in its local buffer.
      const pending = (await raw.xpending(stream, group, '-', '+', 1000)) as [string, string][];
      const holderName = pending[0]![1];
      const leased = pending.filter(([, owner]) => owner === holderName).map(([id]) => id);
      assert.ok(leased.length > 1, `the holder read ahead (it holds ${leased.length} entries)`);

      // Another member, for well over claimIdleMs: it gets the rest of the stream but none of those.
      const got: { id: string; streamId: string; key: string }[] = [];
      const other = redis({ url: SHARED_URL, prefix, claimIdleMs, blockMs: 100 });
      transports.push(other);
      const sub = await other.subscribe(topic, { group, prefetch: 10, ordering }, async (d) => {
        got.push({
          id: d.message.id,
          streamId: (d as unknown as { streamId: string }).streamId,
          key: d.message.key!,
        });
        await d.ack();
      });
      await sleep(6 * claimIdleMs);
      const stolen = got.filter((g) => leased.includes(g.streamId));
      assert.deepEqual(stolen, [], 'no entry leased by the live holder went to another member');
      const still = (await raw.xpending(stream, group, '-', '+', 1000)) as [string, string][];
      for (const id of leased)
        assert.ok(
          still.some(([sid, owner]) => sid === id && owner === holderName),
          `${id} is still leased to the holder`,
        );

      // The holder dies: its buffered entries (and the one it hung on) come to the other member.
      child.kill('SIGKILL');
      await exited;
      await waitUntil(
        () => leased.every((id) => got.some((g) => g.streamId === id)),
        'every entry the dead holder leased is delivered to the other member',
        15_000,
      );
      assert.ok(
        got.some((g) => g.id === stuckOn),
        'the entry the holder hung on is redelivered too',
      );
      await waitUntil(
        () => new Set(got.map((g) => g.id)).size >= total - 60,
        'everything not acked by the holder is handled',
      );
      if (ordering === 'key') {
        // Per key, the other member handled its messages in publish order.
        for (let k = 0; k < 7; k++) {
          const ids = got.filter((g) => g.key === `k${k}`).map((g) => g.id);
          assert.deepEqual(ids, [...ids].sort(), `order of k${k}`);
        }
      }
      await sub.close();
    });
  }
});

describe('redis transport: how far a consumer reads ahead', await needs('redis'), () => {
  const prefix = uniquePrefix('ahead-size');
  const raw = new Redis(SHARED_URL);
  const transports: RedisTransport[] = [];
  after(async () => {
    await Promise.all(transports.map((t) => t.close()));
    raw.disconnect();
    await dropPrefix(SHARED_URL, prefix);
  });

  /**
   * Releases whoever waits on `next()` together every 2 ms, so handlers finish in batches, as a
   * batch of writes would.
   */
  function everyTwoMs(): { next: () => Promise<void>; stop: () => void } {
    let open!: () => void;
    let gate = new Promise<void>((resolve) => (open = resolve));
    const timer = setInterval(() => {
      open();
      gate = new Promise<void>((resolve) => (open = resolve));
    }, 2);
    return { next: () => gate, stop: () => clearInterval(timer) };
  }

  /**
   * Drains `total` messages over `keys` keys (prefetch 4, ordering by key unless told) and returns the most
   * entries the group had leased at once, sampled from the PEL with Redis's own client: handed out,
   * buffered and followers alike. The handlers finish together every 2 ms, as a batch of writes
   * would: read-ahead grows only when a whole prefetch window settles between two fetches.
   */
  async function mostLeased(
    keys: number,
    options: RedisTransportOptions,
    ordering: 'key' | 'none' = 'key',
    total = 400,
  ): Promise<number> {
    const topic = unique('size');
    const group = unique('g');
    const stream = `${prefix}:{${topic}}:s`;
    const t = redis({ url: SHARED_URL, prefix, ...options });
    transports.push(t);
    const messages: Message[] = Array.from({ length: total }, (_, i) => ({
      id: `m-${i}`,
      key: `k${i % keys}`,
      headers: {},
      body: new Uint8Array(0),
    }));
    await t.publish(topic, messages);
    let handled = 0;
    const ticker = everyTwoMs();
    const sub = await t.subscribe(
      topic,
      { group, prefetch: 4, ordering, startFrom: 'earliest' },
      async (d) => {
        await ticker.next();
        await d.ack();
        handled++;
      },
    );
    let most = 0;
    try {
      while (handled < total) {
        const [count] = (await raw.xpending(stream, group)) as [number];
        most = Math.max(most, Number(count));
        await sleep(3);
      }
    } finally {
      ticker.stop();
      await sub.close();
    }
    return most;
  }

  test('by default a consumer whose keys do not repeat reads well beyond its free handler slots', async () => {
    const most = await mostLeased(400, {});
    // prefetch 4 + bufferSize 64 = 68 at most; with bufferSize 0 it is 4 (next test).
    assert.ok(most > 16, `leased at most ${most} at once with prefetch 4`);
  });

  test('bufferSize 0 leases no more than the free handler slots', async () => {
    const most = await mostLeased(400, { bufferSize: 0 });
    assert.ok(most <= 4, `leased at most ${most} at once with prefetch 4`);
  });

  test('a consumer whose fetches come back mostly followers stops reading ahead (ADR 0312)', async () => {
    // Eight keys in turn: once the window passes eight entries, every further one is a follower.
    // Without the check read-ahead grows to the 64 of bufferSize all the same (68 leased at once).
    const most = await mostLeased(8, {});
    assert.ok(most <= 24, `leased at most ${most} at once with prefetch 4`);
  });

  test('with ordering none the default read-ahead goes beyond the bound of ordering by key (ADR 0313)', async () => {
    // By key the default bound is 64 (68 leased with prefetch 4); with ordering none it is 512.
    const most = await mostLeased(1, {}, 'none', 1500);
    assert.ok(most > 68, `leased at most ${most} at once with prefetch 4`);
  });

  test('an explicit bufferSize bounds a subscription with ordering none as well', async () => {
    const most = await mostLeased(1, { bufferSize: 64 }, 'none', 1500);
    assert.ok(most <= 68, `leased at most ${most} at once with prefetch 4`);
  });

  test('a read-ahead that grew shrinks once the handlers slow down (ADR 0313)', async () => {
    const total = 3000;
    const topic = unique('slow');
    const group = unique('g');
    const stream = `${prefix}:{${topic}}:s`;
    const t = redis({ url: SHARED_URL, prefix });
    transports.push(t);
    await t.publish(
      topic,
      Array.from({ length: total }, (_, i) => ({ id: `m-${i}`, headers: {}, body: new Uint8Array(0) })),
    );
    // Fast (a batch every 2 ms, as mostLeased) until the read-ahead has grown, then 25 ms a message.
    let slow = false;
    const ticker = everyTwoMs();
    const sub = await t.subscribe(
      topic,
      { group, prefetch: 4, ordering: 'none', startFrom: 'earliest' },
      async (d) => {
        if (slow) await sleep(25);
        else await ticker.next();
        await d.ack();
      },
    );
    const leased = async (): Promise<number> => Number(((await raw.xpending(stream, group)) as [number])[0]);
    try {
      let grown = 0;
      await waitUntil(
        async () => (grown = Math.max(grown, await leased())) > 68,
        'the read-ahead grows beyond 64 while the handlers are fast',
      );
      slow = true;
      // Four handlers of 25 ms get through 160 a second. Without the shrink the buffer is refilled to
      // 512 every time it is down to half (256 to 516 leased). With it, the first half that takes
      // over 250 ms (256 entries: 1.6 s) halves the read-ahead three times, to 64 (65 or 66 leased
      // in the runs here), where a half (0.2 s) neither shrinks it nor lets it grow.
      await sleep(4_000);
      let most = 0;
      for (let i = 0; i < 20; i++) {
        most = Math.max(most, await leased());
        await sleep(50);
      }
      assert.ok(most <= 100, `leased ${most} at once 4 s after the handlers slowed down (${grown} before)`);
    } finally {
      ticker.stop();
      await sub.close();
    }
  });
});
