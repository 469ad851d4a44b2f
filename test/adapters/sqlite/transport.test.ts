import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ConfigError } from '../../../src/core/errors.js';
import { SqliteTransport, sqlite } from '../../../src/adapters/sqlite/index.js';
import type { Delivery } from '../../../src/transport/transport.js';
import { msg, sleep, tempDir, text, unique, until } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const file = tmp.file();
const open: SqliteTransport[] = [];
after(async () => {
  for (const t of open) await t.close();
});

function transport(options: Partial<ConstructorParameters<typeof SqliteTransport>[0]> = {}): SqliteTransport {
  const t = sqlite({ path: file, pollIntervalMs: 20, ...options });
  open.push(t);
  return t;
}

describe('SqliteTransport', () => {
  test('every group gets every message; members of a group share them', async () => {
    const [a, b] = [transport(), transport()];
    const topic = unique('t');
    const seen = { g1: [] as string[], g2: [] as string[] };
    const ack = (list: string[]) => async (d: Delivery) => {
      list.push(d.message.id);
      await d.ack();
    };
    await a.subscribe(topic, { group: 'g1', prefetch: 4 }, ack(seen.g1));
    await b.subscribe(topic, { group: 'g1', prefetch: 4 }, ack(seen.g1));
    await b.subscribe(topic, { group: 'g2', prefetch: 4 }, ack(seen.g2));
    const ids = Array.from({ length: 50 }, (_, i) => `m${i}`);
    await a.publish(
      topic,
      ids.map((id) => msg(id)),
    );
    await until(() => seen.g1.length >= 50 && seen.g2.length >= 50);
    await sleep(30);
    assert.deepEqual([...seen.g1].sort(), [...ids].sort());
    assert.deepEqual(seen.g2, ids);
  });

  test('a message round-trips id, key, headers and body as a Uint8Array', async () => {
    const t = transport();
    const topic = unique('t');
    const got: Delivery[] = [];
    await t.subscribe(topic, { group: 'g', prefetch: 1 }, (d) => void got.push(d));
    const body = new Uint8Array([0, 1, 2, 255]);
    await t.publish(topic, [{ id: 'x', key: 'k', headers: { a: '1', traceparent: 'tp' }, body }]);
    await until(() => got.length === 1);
    const d = got[0]!;
    assert.equal(d.message.id, 'x');
    assert.equal(d.message.key, 'k');
    assert.deepEqual(d.message.headers, { a: '1', traceparent: 'tp' });
    assert.equal(Object.getPrototypeOf(d.message.body), Uint8Array.prototype);
    assert.deepEqual([...d.message.body], [0, 1, 2, 255]);
    assert.equal(d.attempt, 1);
    assert.equal(d.topic, topic);
    assert.equal(d.group, 'g');
    await d.ack();
  });

  test('per-key order holds across two instances with concurrency, and a key is never in flight twice', async () => {
    const [a, b] = [transport(), transport()];
    const topic = unique('t');
    const order = new Map<string, number[]>();
    const inFlight = new Set<string>();
    let overlaps = 0;
    let handled = 0;
    const handler = async (d: Delivery) => {
      const key = d.message.key!;
      if (inFlight.has(key)) overlaps++;
      inFlight.add(key);
      await sleep(Math.random() * 3);
      // Fail some first attempts: a retrying message must hold its key back.
      if (d.attempt === 1 && Math.random() < 0.2) {
        inFlight.delete(key);
        await d.nack({ delayMs: 5 });
        return;
      }
      (order.get(key) ?? order.set(key, []).get(key)!).push(Number(text(d)));
      inFlight.delete(key);
      handled++;
      await d.ack();
    };
    await a.subscribe(topic, { group: 'g', prefetch: 8 }, handler);
    await b.subscribe(topic, { group: 'g', prefetch: 8 }, handler);
    const keys = ['k0', 'k1', 'k2', 'k3'];
    for (let batch = 0; batch < 5; batch++) {
      const messages = Array.from({ length: 20 }, (_, i) => {
        const n = batch * 20 + i;
        return msg(`m${n}`, keys[n % keys.length], String(n));
      });
      await (batch % 2 === 0 ? a : b).publish(topic, messages);
    }
    await until(() => handled === 100, 10_000, 'all 100 handled');
    assert.equal(overlaps, 0);
    for (const [key, seq] of order) {
      assert.deepEqual(
        seq,
        [...seq].sort((x, y) => x - y),
        `order of ${key}`,
      );
      assert.equal(seq.length, 25);
    }
  });

  test('nack with delay is the retry queue: redelivered after the delay with attempt + 1', async () => {
    const t = transport();
    const topic = unique('t');
    const got: { attempt: number; at: number }[] = [];
    let nacked = false;
    await t.subscribe(topic, { group: 'g', prefetch: 2 }, async (d) => {
      got.push({ attempt: d.attempt, at: Date.now() });
      if (d.attempt === 1) {
        await d.nack({ delayMs: 150 });
        nacked = true;
      } else await d.ack();
    });
    await t.publish(topic, [msg('a')]);
    await until(() => nacked);
    const stats = await t.stats(topic, 'g');
    assert.deepEqual(stats, { lag: 0, scheduled: 0, inFlight: 0, delayed: 1 });
    await until(() => got.length === 2);
    assert.equal(got[1]!.attempt, 2);
    assert.ok(got[1]!.at - got[0]!.at >= 145, `redelivered after ${got[1]!.at - got[0]!.at} ms`);
  });

  test('release gives the message back without counting an attempt', async () => {
    const t = transport();
    const topic = unique('t');
    const attempts: number[] = [];
    await t.subscribe(topic, { group: 'g', prefetch: 1 }, async (d) => {
      attempts.push(d.attempt);
      if (attempts.length < 3) await d.release();
      else await d.ack();
    });
    await t.publish(topic, [msg('a')]);
    await until(() => attempts.length === 3);
    assert.deepEqual(attempts, [1, 1, 1]);
  });

  test('a settle by a holder whose lease was taken over leaves the new holder alone', async () => {
    const [a, b] = [transport(), transport()];
    const topic = unique('t');
    const first: Delivery[] = [];
    const second: Delivery[] = [];
    const subA = await a.subscribe(topic, { group: 'g', prefetch: 1 }, (d) => void first.push(d));
    await a.publish(topic, [msg('a')]);
    await until(() => first.length === 1);
    await subA.close();
    // Simulate A stalling past its visibility timeout: its lease expires without a release.
    const raw = new Database(file);
    raw.prepare('UPDATE herald_pending SET lease_until = 1 WHERE lease_token IS NOT NULL').run();
    raw.close();
    await b.subscribe(topic, { group: 'g', prefetch: 1 }, (d) => void second.push(d));
    await until(() => second.length === 1);
    assert.equal(second[0]!.attempt, 2);
    await first[0]!.ack(); // stale: must not delete B's lease
    assert.deepEqual(await b.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 1, delayed: 0 });
    await first[0]!.nack({ delayMs: 10_000 }); // also a no-op
    assert.deepEqual(await b.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 1, delayed: 0 });
    await second[0]!.ack();
    assert.deepEqual(await b.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 });
  });

  test('close() returns unsettled deliveries uncounted; settling them afterwards is a no-op', async () => {
    const a = transport();
    const b = transport();
    const topic = unique('t');
    const held: Delivery[] = [];
    await a.subscribe(topic, { group: 'g', prefetch: 5 }, (d) => void held.push(d));
    await a.publish(topic, [msg('1'), msg('2'), msg('3')]);
    await until(() => held.length === 3);
    await a.close();
    await held[0]!.ack();
    const again: Delivery[] = [];
    await b.subscribe(topic, { group: 'g', prefetch: 5 }, async (d) => {
      again.push(d);
      await d.ack();
    });
    await until(() => again.length === 3);
    assert.deepEqual(
      again.map((d) => [d.message.id, d.attempt]),
      [
        ['1', 1],
        ['2', 1],
        ['3', 1],
      ],
    );
    await assert.rejects(a.publish(topic, [msg('4')]), { code: 'HERALD_CLOSED' });
  });

  test('messages survive closing every instance and reopening the file', async () => {
    const topic = unique('t');
    const p = new SqliteTransport({ path: file });
    await p.publish(topic, [msg('a', 'k'), msg('b', 'k')]);
    await p.close();
    const c = transport();
    const got: string[] = [];
    await c.subscribe(topic, { group: 'g', prefetch: 2 }, async (d) => {
      got.push(d.message.id);
      await d.ack();
    });
    await until(() => got.length === 2);
    assert.deepEqual(got, ['a', 'b']);
  });

  test('startFrom latest skips what was published before the group existed', async () => {
    const t = transport();
    const topic = unique('t');
    await t.publish(topic, [msg('old')]);
    const got: string[] = [];
    await t.subscribe(topic, { group: 'g', prefetch: 2, startFrom: 'latest' }, async (d) => {
      got.push(d.message.id);
      await d.ack();
    });
    await t.publish(topic, [msg('new')]);
    await until(() => got.length === 1);
    await sleep(30);
    assert.deepEqual(got, ['new']);
  });

  test('retention never deletes what a group has not acknowledged', async () => {
    const t = transport({ retention: { maxMessages: 2, maxAgeMs: Infinity } });
    const topic = unique('t');
    const slow: Delivery[] = [];
    let fastAcked = 0;
    await t.subscribe(topic, { group: 'fast', prefetch: 10 }, async (d) => {
      fastAcked++;
      await d.ack();
    });
    const slowSub = await t.subscribe(topic, { group: 'slow', prefetch: 5 }, (d) => void slow.push(d));
    await t.publish(
      topic,
      Array.from({ length: 10 }, (_, i) => msg(`m${i}`)),
    );
    await until(() => fastAcked === 10 && slow.length === 5);
    assert.equal(await t.applyRetention(), 0, 'slow has acked nothing');
    await slowSub.close();
    for (const d of slow) await d.ack();
    assert.equal(await t.applyRetention(), 5, 'the five acked by both groups');
    assert.equal(await t.deleteGroup(topic, 'slow'), true);
    assert.equal(await t.applyRetention(), 3, 'down to maxMessages once the slow group is gone');
    const raw = new Database(file, { readonly: true });
    const left = raw
      .prepare(
        'SELECT m.id FROM herald_messages m JOIN herald_topics t ON t.id = m.topic_id WHERE t.name = ? ORDER BY seq',
      )
      .all(topic);
    raw.close();
    assert.deepEqual(left, [{ id: 'm8' }, { id: 'm9' }]);
  });

  test('retention by age deletes old acknowledged messages', async () => {
    const t = transport({ retention: { maxAgeMs: 1 } });
    const topic = unique('t');
    let acked = 0;
    await t.subscribe(topic, { group: 'g', prefetch: 10 }, async (d) => {
      if (d.message.id !== 'keep') {
        acked++;
        await d.ack();
      }
    });
    await t.publish(topic, [msg('a'), msg('b'), msg('keep'), msg('c')]);
    await until(() => acked === 3);
    await sleep(5);
    assert.equal(await t.applyRetention(), 2, 'a and b; "keep" is unacked and c is after it');
  });

  test('stats report lag, in-flight and delayed', async () => {
    const t = transport();
    const topic = unique('t');
    await t.publish(topic, [msg('1'), msg('2'), msg('3')]);
    assert.deepEqual(await t.stats(topic, 'nobody'), { lag: 3, scheduled: 0, inFlight: 0, delayed: 0 });
    const held: Delivery[] = [];
    await t.subscribe(topic, { group: 'g', prefetch: 2 }, (d) => void held.push(d));
    await until(() => held.length === 2);
    assert.deepEqual(await t.stats(topic, 'g'), { lag: 1, scheduled: 0, inFlight: 2, delayed: 0 });
    await held[0]!.nack({ delayMs: 60_000 });
    await until(() => held.length === 3);
    assert.deepEqual(await t.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 2, delayed: 1 });
  });

  test('options are validated at construction with a ConfigError naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'path'],
      [{ path: '' }, 'path'],
      [{ path: file, visibilityTimeoutMs: 10 }, 'visibilityTimeoutMs'],
      [{ path: file, visibilityTimeoutMs: 1.5 }, 'visibilityTimeoutMs'],
      [{ path: file, pollIntervalMs: 0 }, 'pollIntervalMs'],
      [{ path: file, busyTimeoutMs: -1 }, 'busyTimeoutMs'],
      [{ path: file, retention: { maxAgeMs: -5 } }, 'retention.maxAgeMs'],
      [{ path: file, retention: { maxMessages: 0 } }, 'retention.maxMessages'],
      [{ path: file, retention: { maxAge: 5 } }, 'retention.maxAge'],
      [{ path: file, retention: 5 }, 'retention'],
      [{ path: file, synchronous: 'off' }, 'synchronous'],
      [{ path: file, visibilityTimeout: 5 }, 'visibilityTimeout'],
    ];
    for (const [options, field] of cases) {
      assert.throws(
        () => sqlite(options as never),
        (err: unknown) => err instanceof ConfigError && err.field === field,
        `expected ConfigError(${field}) for ${JSON.stringify(options)}`,
      );
    }
  });

  test('subscribe and nack validate their arguments', async () => {
    const t = transport();
    await assert.rejects(
      t.subscribe('', { group: 'g', prefetch: 1 }, () => {}),
      { field: 'topic' },
    );
    await assert.rejects(
      t.subscribe('x', { group: 'g', prefetch: 0 }, () => {}),
      { field: 'prefetch' },
    );
    const topic = unique('t');
    const got: Delivery[] = [];
    await t.subscribe(topic, { group: 'g', prefetch: 1 }, (d) => void got.push(d));
    await t.publish(topic, [msg('a')]);
    await until(() => got.length === 1);
    await assert.rejects(got[0]!.nack({ delayMs: -1 }), { field: 'delayMs' });
    await got[0]!.ack();
  });
});
