/**
 * Kafka-specific behaviour beyond the conformance suite: hostile records written with kcat,
 * options and URL checks, compression codecs, and what a restart of the mock cluster can show.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { createHerald, MemoryDeadLetterStore } from '../../../src/index.js';
import { backends } from '../../../src/backends/index.js';
import { kafka, mirrorDeadLetters } from '../../../src/adapters/kafka/index.js';
import { librdkafkaFeatures, librdkafkaVersion } from '../../../src/adapters/kafka/driver.js';
import { checkCompression } from '../../../src/adapters/kafka/options.js';
import { ConfigError } from '../../../src/contracts/errors.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import {
  kafkaAvailable,
  REAL_BROKERS,
  startCluster,
  testTransport,
  uniqueNamespace,
  type TestCluster,
} from './harness.js';

describe('kafka transport', kafkaAvailable(), () => {
  let cluster: TestCluster;
  const namespace = uniqueNamespace('transport');
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster.stop());

  test('a record produced by kcat with no Herald headers and a garbage value goes to the DLQ (decode); the group goes on', async () => {
    const topic = unique('hostile');
    const deadLetters = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'hostile',
      transport: testTransport(cluster.brokers, namespace),
      stores: { deadLetters },
      routing: { 'hostile.*': topic },
    });
    const handled: string[] = [];
    herald.subscribe({
      group: unique('g'),
      events: ['hostile.thing.done'],
      handler: (e) => void handled.push(e.id),
    });
    await herald.start();
    // Written with the broker's own client, outside Herald: no herald-id, no content-type.
    execFileSync('kcat', ['-b', cluster.brokers, '-P', '-t', `${namespace}.${topic}`, '-k', 'junk-key'], {
      input: '\u0000\u00ff{not json at all',
    });
    const good = await herald.publish('hostile.thing.done', { ok: true });
    await waitUntil(() => handled.includes(good.id), 'the valid event after the garbage one', 20_000);
    await waitUntil(async () => (await deadLetters.count()) === 1, 'the garbage record dead-lettered');
    const { items } = await deadLetters.list();
    assert.equal(items[0]!.reason, 'decode');
    assert.equal(items[0]!.message.key, 'junk-key');
    assert.match(
      items[0]!.message.id,
      new RegExp(`^${topic}:\\d+:\\d+$`),
      'id falls back to topic:partition:offset',
    );
    await herald.stop();
  });

  test('mirrored dead letters land in the store and on <topic>.dlq with the reason in headers', async () => {
    const topic = unique('mirror');
    const transport = testTransport(cluster.brokers, namespace);
    const store = new MemoryDeadLetterStore();
    const herald = await createHerald({
      service: 'mirror',
      transport,
      stores: { deadLetters: mirrorDeadLetters(store, transport) },
      routing: { 'mirror.*': topic },
      closeResources: false,
    });
    herald.subscribe({
      group: unique('g'),
      events: ['mirror.thing.failed'],
      retry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
      handler: () => {
        throw new Error('always');
      },
    });
    await herald.start();
    const event = await herald.publish('mirror.thing.failed', { n: 1 });
    const mirrored: Record<string, string>[] = [];
    const sub = await transport.subscribe(`${topic}.dlq`, { group: unique('g'), prefetch: 4 }, async (d) => {
      mirrored.push({ id: d.message.id, ...d.message.headers });
      await d.ack();
    });
    await waitUntil(() => mirrored.length === 1, 'the mirrored dead letter', 20_000);
    assert.equal(await store.count(), 1);
    assert.equal(mirrored[0]!['id'], event.id);
    assert.equal(mirrored[0]!['herald-dlq-reason'], 'max-attempts');
    assert.equal(mirrored[0]!['herald-dlq-error'], 'always');
    assert.equal(mirrored[0]!['herald-dlq-attempts'], '2');
    await sub.close();
    await herald.stop();
    await transport.close();
  });

  for (const compression of ['none', 'snappy', 'lz4', 'gzip', 'zstd'] as const) {
    test(`compression ${compression}: a record published with it is consumed back intact`, async () => {
      // Every codec the options accept must be compiled into this librdkafka build (.ci builds
      // the client with libzstd-dev); otherwise construction fails (tested below), not this.
      assert.ok(
        compression === 'none' || librdkafkaFeatures.includes(compression),
        `librdkafka ${librdkafkaVersion} lacks ${compression} (builtin.features: ${librdkafkaFeatures.join(',')})`,
      );
      const t = testTransport(cluster.brokers, namespace, { compression });
      const topic = unique(`codec-${compression}`);
      const got: string[] = [];
      const sub = await t.subscribe(topic, { group: unique('g'), prefetch: 8 }, async (d) => {
        got.push(new TextDecoder().decode(d.message.body));
        await d.ack();
      });
      // Compressible and not: a run of one letter and random bytes, in one batch.
      const random = Buffer.from(
        Array.from({ length: 3000 }, () => Math.floor(Math.random() * 256)),
      ).toString('base64');
      await t.publish(topic, [
        { id: '1', headers: {}, body: new TextEncoder().encode('x'.repeat(5000)) },
        { id: '2', headers: {}, body: new TextEncoder().encode(random) },
      ]);
      await waitUntil(() => got.length === 2, `two ${compression} records`);
      assert.deepEqual(got.sort(), ['x'.repeat(5000), random].sort());
      await sub.close();
      await t.close();
    });
  }

  test('a codec this librdkafka build lacks fails at construction, naming the option and what the build supports', () => {
    assert.throws(
      () => checkCompression('zstd', ['gzip', 'snappy', 'ssl', 'lz4'], '2.15.1'),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^compression: "zstd" is not compiled into this librdkafka 2\.15\.1/);
        assert.match(err.message, /this build supports "none", "snappy", "lz4", "gzip"/);
        assert.match(err.message, /libzstd-dev/);
        return true;
      },
    );
    assert.doesNotThrow(() => checkCompression('none', [], '2.15.1'));
    // The transport runs the check with this build's own feature list.
    for (const c of ['snappy', 'lz4', 'gzip', 'zstd'] as const)
      if (!librdkafkaFeatures.includes(c))
        assert.throws(() => kafka({ brokers: 'h:1', compression: c }), /compression:/);
      else assert.doesNotThrow(() => kafka({ brokers: 'h:1', compression: c }));
  });

  test('options and URLs are checked with errors that name the field', () => {
    assert.throws(
      () => kafka({ brokers: '127.0.0.1:9092', lingerMS: 5 } as never),
      /lingerMS: unknown Kafka transport option; known: brokers/,
    );
    assert.throws(() => kafka({ brokers: 'nohostport' }), /brokers: expected host:port/);
    assert.throws(
      () => kafka({ brokers: 'h:1', acks: 1, idempotent: true }),
      /idempotent: an idempotent producer needs acks "all"/,
    );
    assert.throws(
      () => kafka({ brokers: 'h:1', compression: 'brotli' as never }),
      /compression: must be one of/,
    );
    const parsed = backends.parse('kafka://a:9092,b:9093?namespace=ns');
    assert.ok('params' in parsed);
    assert.deepEqual(parsed.params, { brokers: 'a:9092,b:9093', namespace: 'ns' });
    assert.match(
      JSON.stringify(backends.parse('kafka://a:9092?prefix=x')),
      /unknown URL parameter prefix; known: namespace, mirrorDlq/,
    );
    assert.match(JSON.stringify(backends.parse('kafka://')), /at least one broker/);
  });

  test('a dead cluster fails opening within the timeout, naming the URL', async () => {
    const started = Date.now();
    await assert.rejects(
      backends.open('kafka://127.0.0.1:1', { connectTimeoutMs: 1500 }),
      /kafka:\/\/127\.0\.0\.1:1 is unreachable/,
    );
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  test('a publish or subscribe against a dead cluster rejects naming the brokers, and nothing throws behind it', async () => {
    // The client throws "not connected" when a client that never connected is closed; that once
    // escaped from the connect callback as an uncaught exception (the runner fails this test then).
    const dead = testTransport('127.0.0.1:1', namespace, { connectTimeoutMs: 500 });
    await assert.rejects(
      dead.publish(unique('dead'), [{ id: '1', headers: {}, body: new Uint8Array([1]) }]),
      /127\.0\.0\.1:1/,
    );
    await assert.rejects(
      dead.subscribe(unique('dead'), { group: unique('g'), prefetch: 1 }, () => undefined),
      /127\.0\.0\.1:1/,
    );
    await dead.close();
    await sleep(200); // an exception thrown after the rejection would land here
  });

  test(
    'mock cluster restart: publishes fail loudly while it is down; clients of the new cluster work',
    { skip: REAL_BROKERS ? 'needs the mock cluster (KAFKA_BROKERS names a real one)' : false },
    async () => {
      // What this can show: a publish to a dead cluster rejects (it never resolves as if stored),
      // and a consumer whose cluster vanished does not crash the process. What it cannot show:
      // durability across a broker restart, since the mock keeps nothing and comes back on new ports.
      const topic = unique('restart');
      const t = testTransport(cluster.brokers, namespace, { publishTimeoutMs: 1500 });
      const sub = await t.subscribe(topic, { group: unique('g'), prefetch: 4 }, (d) => d.ack());
      await t.publish(topic, [{ id: 'before', headers: {}, body: new Uint8Array([1]) }]);
      await cluster.stop();
      const started = Date.now();
      await assert.rejects(
        t.publish(topic, [{ id: 'during', headers: {}, body: new Uint8Array([2]) }]),
        /publishing to restart-.* failed/,
      );
      assert.ok(Date.now() - started < 10_000);
      await sleep(200);
      await sub.close();
      await t.close();
      await cluster.restart!();
      const fresh = testTransport(cluster.brokers, namespace);
      const got: string[] = [];
      const sub2 = await fresh.subscribe(topic, { group: unique('g'), prefetch: 4 }, async (d) => {
        got.push(d.message.id);
        await d.ack();
      });
      await fresh.publish(topic, [{ id: 'after', headers: {}, body: new Uint8Array([3]) }]);
      await waitUntil(() => got.includes('after'), 'a record on the new cluster');
      assert.deepEqual(got, ['after'], 'the new mock cluster starts empty');
      await sub2.close();
      await fresh.close();
    },
  );
});
