/**
 * Redis-specific behaviour beyond the conformance suite: option checks, reclaiming the leases of a
 * dead consumer, lease renewal for slow handlers, key hold-back across members, backpressure,
 * safe trimming, and error reporting. Talks to the shared Redis under a unique prefix.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ConfigError, type Delivery, type Message } from '../../../src/index.js';
import {
  redis,
  RedisPublishError,
  type RedisTransport,
  type RedisTransportOptions,
} from '../../../src/adapters/redis/index.js';
import { needs } from '../../support/services.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import { TopicKeys } from '../../../src/adapters/redis/keys.js';
import { bindScripts } from '../../../src/adapters/redis/scripts.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from './harness.js';

const encoder = new TextEncoder();
const msg = (id: string, key?: string): Message => ({
  id,
  ...(key ? { key } : {}),
  headers: {},
  body: encoder.encode(id),
});
const range = (p: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${p}-${String(i).padStart(4, '0')}`);

describe('redis transport options', () => {
  const bad: [RedisTransportOptions, string][] = [
    [{ claimIdleMs: 0 }, 'claimIdleMs'],
    [{ blockMs: 1.5 }, 'blockMs'],
    [{ batchSize: 0 }, 'batchSize'],
    [{ trim: {} }, 'trim'],
    [{ trim: { maxLen: -1 } }, 'trim.maxLen'],
    [{ trim: { minIdAgeMs: Number.NaN } }, 'trim.minIdAgeMs'],
    [{ trim: { maxLen: 10, intervalMs: 1 } }, 'trim.intervalMs'],
    [{ prefix: 'a{b}' }, 'prefix'],
    [{ url: 'http://localhost' }, 'url'],
    [{ url: 'redis://x', redis: {} }, 'redis'],
  ];
  for (const [options, field] of bad) {
    test(`rejects a bad ${field} at construction`, () => {
      assert.throws(
        () => redis({ ...options, redis: options.redis, url: options.url }),
        (err: unknown) => err instanceof ConfigError && err.field === field,
      );
    });
  }
});

describe('redis transport', await needs('redis'), () => {
  const prefix = uniquePrefix('transport');
  const opened: RedisTransport[] = [];
  const open = (options: RedisTransportOptions = {}): RedisTransport => {
    const t = redis({ url: SHARED_URL, prefix, claimIdleMs: 300, blockMs: 200, ...options });
    opened.push(t);
    return t;
  };
  const raw = new Redis(SHARED_URL);
  after(async () => {
    await Promise.all(opened.map((t) => t.close()));
    raw.disconnect();
    await dropPrefix(SHARED_URL, prefix);
  });

  test('rejects a topic with braces (they would break the hash tag)', async () => {
    const t = open();
    await assert.rejects(
      t.publish('a{b}', [msg('x')]),
      (err: unknown) => err instanceof ConfigError && err.field === 'topic',
    );
  });

  test('leases of a dead consumer are reclaimed after claimIdleMs with attempt + 1', async () => {
    const t = open();
    const topic = unique('reclaim');
    const group = unique('g');
    // A member that reads and then dies: created by Herald, read by a raw client that never acks.
    await t.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack()).then((s) => s.close());
    await t.publish(topic, [msg('a'), msg('b')]);
    const stream = `${prefix}:{${topic}}:s`;
    const read = (await raw.xreadgroup(
      'GROUP',
      group,
      'dead',
      'COUNT',
      10,
      'STREAMS',
      stream,
      '>',
    )) as unknown[];
    assert.ok(read, 'the dead consumer read the entries');
    const got: Delivery[] = [];
    const sub = await t.subscribe(topic, { group, prefetch: 10 }, async (d) => {
      got.push(d);
      await d.ack();
    });
    await waitUntil(() => got.length === 2, 'both messages reclaimed');
    assert.deepEqual(got.map((d) => [d.message.id, d.attempt]).sort(), [
      ['a', 2],
      ['b', 2],
    ]);
    assert.equal(((await raw.xpending(stream, group)) as [number])[0], 0, 'nothing left pending');
    await sub.close();
  });

  test('a late ack of a lease another member reclaimed and nacked keeps the key with the retry', async () => {
    const t = open();
    const topic = unique('lateack');
    const group = unique('g');
    await t.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack()).then((s) => s.close());
    await t.publish(topic, [msg('k-0', 'K')]);
    const keys = new TopicKeys(prefix, topic).group(group);
    // A member that reads k-0 and stalls past claimIdleMs (a raw client that never renews).
    const read = (await raw.xreadgroup('GROUP', group, 'stalled', 'STREAMS', keys.stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const staleId = read[0]![1][0]![0];
    const seen: string[] = [];
    const sub = await t.subscribe(topic, { group, prefetch: 4 }, async (d) => {
      seen.push(`${d.message.id}#${d.attempt}`);
      if (d.message.id === 'k-0') await d.nack({ delayMs: 60_000 });
      else await d.ack();
    });
    await waitUntil(async () => (await raw.zcard(keys.delayed)) === 1, 'k-0 reclaimed and nacked');
    await t.publish(topic, [msg('k-1', 'K')]);
    await waitUntil(async () => (await raw.zcard(keys.held)) === 1, 'k-1 held behind the retry');
    // The stalled member wakes up and acks its former lease, alone in its settle call.
    const scripts = bindScripts(raw);
    const replies = await scripts.settle(keys.all(), [group, 'stalled', 'a', staleId, 'K', 0]);
    assert.deepEqual(replies, [0], 'the ack found no lease and a parked retry');
    assert.equal(await raw.hget(keys.locks, 'K'), staleId, 'the key stays with the retry');
    assert.equal(await raw.zcard(keys.held), 1, 'k-1 still waits');
    assert.deepEqual(seen, ['k-0#2']);
    await sub.close();
  });

  test('a slow handler keeps its lease: no second member gets the message meanwhile', async () => {
    const a = open();
    const b = open();
    const topic = unique('slow');
    const group = unique('g');
    const seen: string[] = [];
    const handler = async (d: Delivery): Promise<void> => {
      seen.push(`${d.message.id}#${d.attempt}`);
      await sleep(1_000); // > 3 x claimIdleMs
      await d.ack();
    };
    const s1 = await a.subscribe(topic, { group, prefetch: 1 }, handler);
    await a.publish(topic, [msg('slow-1')]);
    await waitUntil(() => seen.length === 1, 'first delivery');
    const s2 = await b.subscribe(topic, { group, prefetch: 1 }, handler);
    await sleep(1_300);
    assert.deepEqual(seen, ['slow-1#1']);
    await Promise.all([s1.close(), s2.close()]);
  });

  test('per-key hold-back spans the members of a group', async () => {
    const a = open();
    const b = open();
    const topic = unique('spankey');
    const group = unique('g');
    const atA: Delivery[] = [];
    const atB: Delivery[] = [];
    const s1 = await a.subscribe(topic, { group, prefetch: 4 }, (d) => void atA.push(d));
    await a.publish(topic, [msg('k-0', 'K')]);
    await waitUntil(() => atA.length === 1, 'first at A');
    const s2 = await b.subscribe(topic, { group, prefetch: 4 }, (d) => void atB.push(d));
    await a.publish(topic, [msg('k-1', 'K'), msg('o-0', 'O')]);
    await waitUntil(() => atA.length + atB.length === 2, 'the other key flows');
    await sleep(100);
    assert.deepEqual([...atA, ...atB].map((d) => d.message.id).sort(), ['k-0', 'o-0'], 'k-1 waits for k-0');
    await atA[0]!.ack();
    await waitUntil(() => [...atA, ...atB].some((d) => d.message.id === 'k-1'), 'k-1 after k-0 settled');
    await Promise.all([s1.close(), s2.close()]);
  });

  test('a fast producer and a stuck consumer: only prefetch messages leave Redis', async () => {
    const t = open({ batchSize: 100 });
    const topic = unique('backpressure');
    const group = unique('g');
    const held: Delivery[] = [];
    const sub = await t.subscribe(topic, { group, prefetch: 5, ordering: 'none' }, (d) => void held.push(d));
    const all = range('bp', 2_000);
    for (let i = 0; i < all.length; i += 500)
      await t.publish(
        topic,
        all.slice(i, i + 500).map((id) => msg(id)),
      );
    await waitUntil(() => held.length === 5, 'prefetch filled');
    await sleep(200);
    assert.equal(held.length, 5);
    assert.deepEqual(await t.stats(topic, group), { lag: 1_995, scheduled: 0, inFlight: 5, delayed: 0 });
    await sub.close();
  });

  test('ordering none: retries and new entries fetched together stay within the room, releases uncounted', async () => {
    const t = open({ batchSize: 8 });
    const topic = unique('plain-read');
    const group = unique('g');
    const attempts = new Map<string, number[]>();
    let inFlight = 0;
    let maxInFlight = 0;
    // Every first attempt is nacked at once, so the ready list has work while new entries arrive:
    // the fetch script's retries and the plain XREADGROUP then fill the same free slots.
    const sub = await t.subscribe(topic, { group, prefetch: 4, ordering: 'none' }, async (d) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const list = attempts.get(d.message.id) ?? [];
      list.push(d.attempt);
      attempts.set(d.message.id, list);
      await sleep(1);
      inFlight--;
      if (d.attempt === 1) await d.nack();
      else await d.ack();
    });
    const all = range('pr', 200);
    for (let i = 0; i < all.length; i += 20)
      await t.publish(
        topic,
        all.slice(i, i + 20).map((id) => msg(id)),
      );
    await waitUntil(
      () => all.every((id) => attempts.get(id)?.length === 2),
      'every message nacked once, then acked',
    );
    await sleep(100);
    for (const id of all) assert.deepEqual(attempts.get(id), [1, 2], `${id} delivered once per attempt`);
    assert.ok(maxInFlight <= 4, `at most prefetch handlers at once (${maxInFlight})`);
    const stream = `${prefix}:{${topic}}:s`;
    await waitUntil(async () => (await raw.xpending(stream, group))[0] === 0, 'nothing left pending');
    assert.deepEqual(await t.stats(topic, group), { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 });
    await sub.close();
  });

  test('trimming never drops entries a group has not settled, delayed retries included', async () => {
    const t = open();
    const topic = unique('trim');
    const group = unique('g');
    const stream = `${prefix}:{${topic}}:s`;
    const got: Delivery[] = [];
    const unsettled = (id: string): boolean => id >= 'tr-0020' && id < 'tr-0026';
    const sub = await t.subscribe(topic, { group, prefetch: 10, ordering: 'none' }, async (d) => {
      got.push(d);
      if (d.message.id === 'tr-0000' && d.attempt === 1) await d.nack({ delayMs: 400 });
      else if (!unsettled(d.message.id)) await d.ack();
    });
    await t.publish(
      topic,
      range('tr', 100).map((id) => msg(id)),
    );
    await waitUntil(() => got.length === 100, 'every message delivered once');
    assert.equal(await t.trim(topic, { maxLen: 5 }), 0, 'the parked first entry pins the stream');
    await waitUntil(() => got.length === 101, 'the retry');
    assert.equal(new TextDecoder().decode(got[100]!.message.body), 'tr-0000', 'retried with its body intact');
    const parked = `${prefix}:{${topic}}:g:${group}:pk`;
    await waitUntil(
      async () => (await raw.zcard(parked)) === 0 && (await raw.xpending(stream, group))[0] === 6,
      'the retry acked',
    );
    assert.equal(
      await t.trim(topic, { maxLen: 5 }),
      20,
      'settled entries before the oldest unsettled one go',
    );
    const [first] = await raw.xrange(stream, '-', '+', 'COUNT', 1);
    assert.equal(first![1][first![1].indexOf('i') + 1], 'tr-0020', 'the oldest unsettled entry survives');
    await Promise.all(got.filter((d) => unsettled(d.message.id)).map((d) => d.ack()));
    assert.equal(await t.trim(topic, { maxLen: 5 }), 75, 'once settled, maxLen applies');
    await sub.close();
  });

  test('a group that has not read a topic pins it; without groups maxLen applies', async () => {
    const t = open();
    const pinned = unique('pinned');
    await t.subscribe(pinned, { group: unique('g'), prefetch: 1 }, () => undefined).then((s) => s.close());
    await t.publish(
      pinned,
      range('p', 50).map((id) => msg(id)),
    );
    // The member took one before closing at most; the rest are unread by the group.
    assert.ok((await raw.xlen(`${prefix}:{${pinned}}:s`)) >= 49);
    await t.trim(pinned, { maxLen: 10 });
    assert.ok((await raw.xlen(`${prefix}:{${pinned}}:s`)) >= 49, 'unread entries are kept');
    const free = unique('free');
    await t.publish(
      free,
      range('f', 50).map((id) => msg(id)),
    );
    assert.equal(await t.trim(free, { maxLen: 10 }), 40);
  });

  test('publish trims in the background when trim is configured', async () => {
    const t = open({ trim: { maxLen: 10, intervalMs: 10 } });
    const topic = unique('autotrim');
    for (let i = 0; i < 5; i++) {
      await t.publish(
        topic,
        range(`a${i}`, 20).map((id) => msg(id)),
      );
      await sleep(20);
    }
    await waitUntil(async () => (await raw.xlen(`${prefix}:{${topic}}:s`)) <= 30, 'trimmed towards maxLen');
  });

  test('a batch is written entry for entry as one-message publishes write it, whatever mix of keys and headers', async () => {
    const t = open();
    const [single, batched] = [unique('layout-single'), unique('layout-batch')];
    // Alternating layouts, so the batch's arguments are several runs (codec.ts publishArgs).
    const messages: Message[] = [
      { id: 'kh', key: 'k1', headers: { a: '1', 'x-é': 'ü' }, body: encoder.encode('first') },
      { id: 'k', key: 'k2', headers: {}, body: encoder.encode('') },
      { id: 'k2', key: 'k2', headers: {}, body: new Uint8Array([0, 255, 10, 13]) },
      { id: 'h', headers: { b: '2' }, body: encoder.encode('third') },
      { id: 'none', headers: {}, body: encoder.encode('fourth') },
      { id: 'kh2', key: 'k1', headers: { c: '3' }, body: encoder.encode('fifth') },
    ];
    for (const m of messages) await t.publish(single, [m]);
    await t.publish(batched, messages);
    const entries = async (topic: string): Promise<Buffer[][]> =>
      (await raw.xrangeBuffer(`${prefix}:{${topic}}:s`, '-', '+')).map(([, fields]) => fields);
    const expected = await entries(single);
    assert.equal(expected.length, messages.length);
    assert.deepEqual(await entries(batched), expected);
  });

  test('a publish onto a key another client made a string fails loudly, one message or a batch, and writes nothing', async () => {
    const errors: string[] = [];
    const t = open({ onError: (err, context) => errors.push(`${context}: ${err.message}`) });
    const topic = unique('wrongtype');
    const stream = `${prefix}:{${topic}}:s`;
    await raw.set(stream, 'not a stream');
    // One message is a plain XADD, several one script call: both paths report the same way.
    for (const batch of [[msg('one')], [msg('a'), msg('b')]]) {
      await assert.rejects(
        t.publish(topic, batch),
        (err: unknown) =>
          err instanceof RedisPublishError && err.message.includes(topic) && /WRONGTYPE/.test(err.message),
      );
    }
    assert.equal(await raw.get(stream), 'not a stream');
    assert.equal(errors.filter((e) => e.startsWith(`publish to ${topic}:`)).length, 2, errors.join('\n'));
  });

  test('status, health and onError report a Redis that cannot be reached; publish fails loudly', async () => {
    const errors: string[] = [];
    const t = redis({
      redis: { host: '127.0.0.1', port: 1, maxRetriesPerRequest: 1, retryStrategy: () => 50 },
      prefix,
      onError: (err, context) => errors.push(`${context}: ${err.message}`),
    });
    opened.push(t);
    await assert.rejects(t.publish(unique('down'), [msg('x')]), RedisPublishError);
    assert.notEqual(t.status().state, 'ready');
    assert.ok(t.status().errors > 0 && t.status().lastError);
    assert.equal((await t.health(200)).ok, false);
    assert.ok(
      errors.some((e) => /connection/.test(e)),
      errors.join('\n'),
    );
    const live = open();
    assert.equal((await live.health()).ok, true);
    assert.equal(live.status().state, 'ready');
  });
});
