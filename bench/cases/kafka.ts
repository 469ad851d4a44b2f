/**
 * Kafka transport against the raw client (`@confluentinc/kafka-javascript`, same librdkafka, same
 * producer settings) in the same run, on the same librdkafka mock cluster (a kcat child process
 * started here and killed by pid at the end). Publish in batches of 500 (each batch awaited until
 * acknowledged), then drain a backlog with one consumer that commits what it handled.
 *
 * A mock cluster is not a real broker: it keeps everything in memory and shares the machine's two
 * cores with the clients. The ratios say what Herald costs on top of the client; the absolute
 * figures say nothing about a production cluster.
 */
import kafkaClient from '@confluentinc/kafka-javascript';
import { kafka } from '../../src/adapters/kafka/index.js';
import { MockCluster } from '../../src/adapters/kafka/mock-cluster.js';
import type { Message } from '../../src/index.js';

const N = 50_000;
const BATCH = 500;
const PAYLOAD = Buffer.alloc(305, 'x');
const KEYS = 100;
const PRODUCER = {
  'enable.idempotence': true,
  acks: -1,
  'linger.ms': 5,
  'batch.num.messages': 10_000,
  'compression.codec': 'snappy',
} as const;

const messages = (n: number): Message[] =>
  Array.from({ length: n }, (_, i) => ({ id: `m-${i}`, key: `agg-${i % KEYS}`, headers: {}, body: PAYLOAD }));

async function rawPublish(brokers: string, topic: string, n: number): Promise<number> {
  const producer = new kafkaClient.Producer({ 'bootstrap.servers': brokers, dr_cb: true, ...PRODUCER });
  await new Promise<void>((resolve, reject) =>
    producer.connect({}, (err) => (err ? reject(err) : resolve())),
  );
  producer.setPollInterval(5);
  let waiting: { left: number; done: () => void } = { left: 0, done: () => undefined };
  producer.on('delivery-report', () => {
    if (--waiting.left === 0) waiting.done();
  });
  const t0 = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const count = Math.min(BATCH, n - i);
    const acked = new Promise<void>((done) => (waiting = { left: count, done }));
    for (let j = i; j < i + count; j++)
      producer.produce(topic, null, PAYLOAD, `agg-${j % KEYS}`, Date.now(), undefined, [
        { 'herald-id': `m-${j}` },
      ]);
    await acked;
  }
  const rate = (n / (performance.now() - t0)) * 1000;
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  return rate;
}

async function heraldPublish(brokers: string, topic: string, n: number): Promise<number> {
  const t = kafka({ brokers, onError: () => undefined });
  const all = messages(n);
  await t.publish(topic, all.slice(0, 1)); // connect outside the timing, as the raw case does
  const t0 = performance.now();
  for (let i = 1; i < n; i += BATCH) await t.publish(topic, all.slice(i, i + BATCH));
  const rate = ((n - 1) / (performance.now() - t0)) * 1000;
  await t.close();
  return rate;
}

/** Rate from the first record to the last one (the group join is left out of both sides). */
async function rawDrain(brokers: string, topic: string, n: number): Promise<number> {
  const consumer = new kafkaClient.KafkaConsumer({
    'bootstrap.servers': brokers,
    'group.id': `raw-${topic}`,
    'enable.auto.commit': false,
    'auto.offset.reset': 'earliest',
  });
  await new Promise<void>((resolve, reject) =>
    consumer.connect({}, (err) => (err ? reject(err) : resolve())),
  );
  consumer.setDefaultConsumeTimeout(100);
  consumer.subscribe([topic]);
  let count = 0;
  let t0 = 0;
  while (count < n) {
    const records = await new Promise<kafkaClient.Message[]>((resolve, reject) =>
      consumer.consume(1000, (err, r) => (err ? reject(err) : resolve(r))),
    );
    if (records.length === 0) continue;
    if (t0 === 0) t0 = performance.now();
    count += records.length;
    const next = new Map<number, number>();
    for (const r of records) next.set(r.partition, r.offset + 1);
    consumer.commit([...next].map(([partition, offset]) => ({ topic, partition, offset })));
  }
  const rate = (n / (performance.now() - t0)) * 1000;
  await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  return rate;
}

async function heraldDrain(
  brokers: string,
  topic: string,
  n: number,
  ordering: 'key' | 'none',
): Promise<number> {
  const t = kafka({ brokers, onError: () => undefined });
  let count = 0;
  let t0 = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sub = await t.subscribe(
    topic,
    { group: `herald-${ordering}-${topic}`, prefetch: 1000, ordering },
    (d) => {
      if (t0 === 0) t0 = performance.now();
      if (++count === n) done();
      return d.ack();
    },
  );
  await finished;
  const rate = (n / (performance.now() - t0)) * 1000;
  await sub.close();
  await t.close();
  return rate;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (a: number, b: number): string => `${Math.round((a / b) * 100)}%`;

export async function run(): Promise<string> {
  const cluster = await MockCluster.start();
  try {
    const b = cluster.bootstrap;
    const run = Date.now().toString(36);
    const rawPub = await rawPublish(b, `bench-${run}-pub-raw`, N);
    const heraldPub = await heraldPublish(b, `bench-${run}-pub-herald`, N);
    // One backlog per consumer, written by the raw producer so every side reads the same records.
    await rawPublish(b, `bench-${run}-d1`, N);
    await rawPublish(b, `bench-${run}-d2`, N);
    await rawPublish(b, `bench-${run}-d3`, N);
    const rawD = await rawDrain(b, `bench-${run}-d1`, N);
    const noneD = await heraldDrain(b, `bench-${run}-d2`, N, 'none');
    const keyD = await heraldDrain(b, `bench-${run}-d3`, N, 'key');
    return [
      `${fmt(N)} records of ${PAYLOAD.length} bytes, ${KEYS} keys, batches of ${BATCH}, idempotent producer, acks all, snappy, linger 5 ms;`,
      'raw = `@confluentinc/kafka-javascript` in the same run (produce + delivery reports per batch; `consume(1000)` + commit per batch).',
      'Against a librdkafka **mock cluster** (kcat, 3 brokers, 4 partitions) on the same 2 cores: not a real broker, so only the',
      'ratios mean something. Drain rates run from the first record received to the last (the group join is left out on both sides).',
      '',
      '| Measure | Herald | Raw client | Herald / raw |',
      '|---|---:|---:|---:|',
      `| publish, batches of ${BATCH} awaited (msg/s) | ${fmt(heraldPub)} | ${fmt(rawPub)} | ${pct(heraldPub, rawPub)} |`,
      `| drain backlog + commit, ordering none (msg/s) | ${fmt(noneD)} | ${fmt(rawD)} | ${pct(noneD, rawD)} |`,
      `| drain backlog + commit, ordering key (msg/s) | ${fmt(keyD)} | ${fmt(rawD)} | ${pct(keyD, rawD)} |`,
    ].join('\n');
  } finally {
    await cluster.stop();
  }
}
