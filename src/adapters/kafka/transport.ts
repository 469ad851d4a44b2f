import { ClosedError, HeraldError, toError } from '../../core/errors.js';
import type {
  DeliveryHandler,
  GroupStats,
  Message,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  TopicTopology,
  Transport,
  TransportCapabilities,
} from '../../transport/transport.js';
import { scheduledTime, validateSubscribeOptions } from '../../transport/validate.js';
import { bodyBuffer, encodeHeaders } from './codec.js';
import { GroupConsumer } from './consumer.js';
import {
  disconnectQuietly,
  KafkaConsumer,
  librdkafkaFeatures,
  librdkafkaVersion,
  Producer,
  type KafkaConsumerClient,
  type ProducerClient,
} from './driver.js';
import {
  checkCompression,
  kafkaName,
  resolveKafkaOptions,
  type KafkaTransportOptions,
  type ResolvedKafkaOptions,
} from './options.js';
import { Scheduler, SCHEDULE_TOPIC, SCHEDULER_GROUP, type Placement } from './scheduler.js';
import { Topology } from './topology.js';

/** A publish was not acknowledged (or not all of it). Records acknowledged before the error stay. */
export class KafkaPublishError extends HeraldError {
  constructor(topic: string, cause: unknown) {
    super(
      'HERALD_KAFKA_PUBLISH',
      `publishing to ${topic} failed: ${toError(cause).message}; publish the batch again (consumers with an idempotency store drop the duplicates)`,
      { cause },
    );
  }
}

/** The brokers did not answer within the connect timeout. */
export class KafkaConnectError extends HeraldError {
  constructor(brokers: string, cause: unknown) {
    super('HERALD_KAFKA_CONNECT', `cannot reach Kafka at ${brokers}: ${toError(cause).message}`, { cause });
  }
}

interface PendingBatch {
  remaining: number;
  /** Where each record landed, by its index in the batch. */
  readonly placements: Placement[];
  error: unknown;
  resolve(): void;
  reject(err: unknown): void;
}

/** librdkafka's local queue is full: wait for deliveries before producing more. */
const QUEUE_FULL = -184;

/**
 * Transport on Kafka through librdkafka (`@confluentinc/kafka-javascript`): one Kafka topic per
 * Herald topic (`<namespace>.<topic>`), one consumer group per Herald group, the aggregate id as
 * record key. See docs/adapters/kafka.md.
 */
export class KafkaTransport implements Transport {
  readonly name = 'kafka';
  readonly capabilities: TransportCapabilities = {
    persistent: true,
    distributed: true,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
    scheduledPublish: true,
  };

  readonly options: ResolvedKafkaOptions;
  private producer: ProducerClient | undefined;
  private connecting: Promise<ProducerClient> | undefined;
  private readonly consumers = new Set<GroupConsumer>();
  private readonly admins = new Map<string, Promise<KafkaConsumerClient>>();
  private readonly lastReported = new Map<string, number>();
  private closing: Promise<void> | undefined;
  private readonly scheduler: Scheduler;
  private readonly topologyView: Topology;

  constructor(options: KafkaTransportOptions) {
    this.options = resolveKafkaOptions(options);
    checkCompression(this.options.compression, librdkafkaFeatures, librdkafkaVersion);
    this.scheduler = new Scheduler({
      options: this.options,
      report: (err, context) => this.report(err, context),
      produce: (kafkaTopic, messages) => this.produce(kafkaTopic, messages),
      offsets: () => this.partitionLag(SCHEDULE_TOPIC, SCHEDULER_GROUP),
    });
    this.topologyView = new Topology({
      options: this.options,
      report: (err, context) => this.report(err, context),
      produce: (kafkaTopic, messages) => this.produce(kafkaTopic, messages),
    });
  }

  /**
   * Resolves once every record of the batch is acknowledged as configured by `acks`. With a
   * future `deliverAt` the records go to the schedule topic instead (ADR 0923).
   */
  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    if (this.closing) throw new ClosedError('KafkaTransport');
    const kafkaTopic = kafkaName(this.options.namespace, topic, 'topic');
    const deliverAt = scheduledTime(options, Date.now());
    if (messages.length === 0) return;
    try {
      if (deliverAt !== undefined && deliverAt > Date.now())
        await this.scheduler.publish(topic, messages, deliverAt);
      else await this.produce(kafkaTopic, messages);
    } catch (err) {
      throw new KafkaPublishError(topic, err);
    }
  }

  /**
   * Cancels scheduled messages not moved to their topic yet. Resolves once the cancel records are
   * written and read back in order: the count is exact (ADR 0923).
   */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    if (this.closing) throw new ClosedError('KafkaTransport');
    kafkaName(this.options.namespace, topic, 'topic');
    if (ids.length === 0) return 0;
    return this.scheduler.cancel(topic, ids);
  }

  /** Produces a batch; resolves with where each record landed once all are acknowledged. */
  private async produce(kafkaTopic: string, messages: readonly Message[]): Promise<readonly Placement[]> {
    const producer = await this.connectProducer();
    return new Promise<readonly Placement[]>((resolve, reject) => {
      const pending: PendingBatch = {
        remaining: messages.length,
        placements: [],
        error: undefined,
        resolve: () => resolve(pending.placements),
        reject,
      };
      void this.produceAll(producer, kafkaTopic, messages, pending);
    });
  }

  private async produceAll(
    producer: ProducerClient,
    kafkaTopic: string,
    messages: readonly Message[],
    pending: PendingBatch,
  ): Promise<void> {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      for (;;) {
        try {
          producer.produce(
            kafkaTopic,
            null,
            bodyBuffer(m.body),
            m.key ?? null,
            Date.now(),
            { pending, index: i },
            encodeHeaders(m),
          );
          break;
        } catch (err) {
          if ((err as { code?: number }).code !== QUEUE_FULL || this.closing) {
            // The rest of the batch is not sent; wait for what was, then fail the whole call.
            pending.error ??= err;
            pending.remaining -= messages.length - i;
            if (pending.remaining === 0) pending.reject(pending.error);
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    }
  }

  private connectProducer(): Promise<ProducerClient> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= new Promise<ProducerClient>((resolve, reject) => {
      const o = this.options;
      const producer = new Producer({
        ...o.librdkafka,
        'bootstrap.servers': o.brokers,
        'client.id': o.clientId,
        'enable.idempotence': o.idempotent,
        acks: o.acks === 'all' ? -1 : o.acks,
        'linger.ms': o.lingerMs,
        'batch.num.messages': o.batchSize,
        'compression.codec': o.compression,
        'message.timeout.ms': o.publishTimeoutMs,
        dr_cb: true,
      });
      producer.on('delivery-report', (err, report) => {
        const { pending, index } = report.opaque as { pending: PendingBatch; index: number };
        if (err) pending.error ??= err;
        else pending.placements[index] = { partition: report.partition, offset: report.offset };
        if (--pending.remaining === 0) {
          if (pending.error) pending.reject(pending.error);
          else pending.resolve();
        }
      });
      producer.on('event.error', (err) => this.report(err, 'producer'));
      producer.setPollInterval(5);
      producer.connect({ timeout: o.connectTimeoutMs }, (err) => {
        if (err) {
          this.connecting = undefined;
          void disconnectQuietly(producer);
          reject(new KafkaConnectError(o.brokers, err));
          return;
        }
        this.producer = producer;
        resolve(producer);
      });
    });
    return this.connecting;
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    if (this.closing) throw new ClosedError('KafkaTransport');
    validateSubscribeOptions(topic, options);
    const kafkaTopic = kafkaName(this.options.namespace, topic, 'topic');
    // Every process that consumes also moves due scheduled messages, so they flow without a publisher.
    await this.scheduler.start().catch((err: unknown) => {
      throw new KafkaConnectError(this.options.brokers, err);
    });
    const consumer = new GroupConsumer(
      {
        options: this.options,
        report: (err, context) => this.report(err, context),
        retired: (c) => this.consumers.delete(c),
      },
      topic,
      kafkaTopic,
      kafkaName(this.options.namespace, options.group, 'group'),
      options,
      onDelivery,
    );
    try {
      await consumer.start();
    } catch (err) {
      await consumer.releaseAll().catch(() => undefined);
      throw new KafkaConnectError(this.options.brokers, err);
    }
    this.consumers.add(consumer);
    // Recorded for topology() in every process (ADR 0924); a failure costs only the listing.
    await this.topologyView
      .register(topic, options.group)
      .catch((err: unknown) => this.report(err, 'group registry'));
    return consumer;
  }

  /**
   * Every topic of the namespace (Herald's own schedule and registry topics left out) and the
   * groups that read it: the groups Herald subscribed (its group registry topic, any process)
   * and, where the brokers implement ListGroups, every group with committed offsets on it
   * (ADR 0924).
   */
  async topology(): Promise<readonly TopicTopology[]> {
    if (this.closing) throw new ClosedError('KafkaTransport');
    return this.topologyView.list();
  }

  /**
   * Lag per partition from the brokers (high watermark minus the group's committed offset), with
   * this process's own members' view where it has one: records fetched but not yet handed to a
   * handler count as lag, handed-out ones as in flight, nacked ones as delayed.
   */
  async stats(topic: string, group: string): Promise<GroupStats> {
    const perPartition = await this.partitionLag(topic, group);
    let lag = 0;
    for (const p of perPartition) lag += p.lag;
    let inFlight = 0;
    let delayed = 0;
    for (const c of this.consumers) {
      if (c.topic !== topic || c.group !== group) continue;
      const local = c.localStats();
      inFlight += local.inFlight;
      delayed += local.delayed;
    }
    return { lag, scheduled: await this.scheduler.count(topic), inFlight, delayed };
  }

  /** Lag of one group on each partition of a topic. */
  async partitionLag(
    topic: string,
    group: string,
  ): Promise<{ partition: number; lag: number; committed: number; high: number }[]> {
    if (this.closing) throw new ClosedError('KafkaTransport');
    const kafkaTopic = kafkaName(this.options.namespace, topic, 'topic');
    const groupId = kafkaName(this.options.namespace, group, 'group');
    const admin = await this.admin(groupId);
    const timeout = this.options.connectTimeoutMs;
    const metadata = await new Promise<{ topics: { name: string; partitions: { id: number }[] }[] }>(
      (resolve, reject) =>
        admin.getMetadata({ topic: kafkaTopic, timeout }, (err, data) =>
          err ? reject(toError(err)) : resolve(data),
        ),
    );
    const partitions = metadata.topics.find((t) => t.name === kafkaTopic)?.partitions.map((p) => p.id) ?? [];
    if (partitions.length === 0) return [];
    const committed = await new Promise<{ partition: number; offset: number }[]>((resolve, reject) =>
      admin.committed(
        partitions.map((partition) => ({ topic: kafkaTopic, partition })),
        timeout,
        (err, list) => (err ? reject(toError(err)) : resolve(list)),
      ),
    );
    const local = new Map<number, { fetched: number; waiting: number }>();
    for (const c of this.consumers) {
      if (c.topic !== topic || c.group !== group) continue;
      for (const [p, view] of c.localStats().partitions) local.set(p, view);
    }
    return Promise.all(
      partitions.map(async (partition) => {
        const { high, low } = await new Promise<{ high: number; low: number }>((resolve, reject) =>
          admin.queryWatermarkOffsets(kafkaTopic, partition, timeout, (err, o) =>
            err ? reject(toError(err)) : resolve({ high: o.highOffset, low: o.lowOffset }),
          ),
        );
        const offset = committed.find((c) => c.partition === partition)?.offset ?? -1;
        const start = offset >= 0 ? offset : low;
        const view = local.get(partition);
        const lag = view ? Math.max(0, high - (view.fetched + 1)) + view.waiting : Math.max(0, high - start);
        return { partition, lag, committed: offset, high };
      }),
    );
  }

  /** A consumer that never subscribes: it reads a group's committed offsets without joining it. */
  private admin(groupId: string): Promise<KafkaConsumerClient> {
    let admin = this.admins.get(groupId);
    if (!admin) {
      admin = new Promise<KafkaConsumerClient>((resolve, reject) => {
        const client = new KafkaConsumer({
          ...this.options.librdkafka,
          'bootstrap.servers': this.options.brokers,
          'client.id': `${this.options.clientId}-stats`,
          'group.id': groupId,
          'enable.auto.commit': false,
        });
        client.on('event.error', (err) => this.report(err, 'stats client'));
        client.connect({ timeout: this.options.connectTimeoutMs }, (err) => {
          if (err) {
            this.admins.delete(groupId);
            void disconnectQuietly(client);
            reject(new KafkaConnectError(this.options.brokers, err));
          } else resolve(client);
        });
      });
      this.admins.set(groupId, admin);
    }
    return admin;
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.scheduler.close().catch((err: unknown) => this.report(err, 'close scheduler'));
    await this.topologyView.close().catch((err: unknown) => this.report(err, 'close topology'));
    await Promise.all(
      [...this.consumers].map((c) => c.releaseAll().catch((err: unknown) => this.report(err, 'close'))),
    );
    const producer = this.producer ?? (await this.connecting?.catch(() => undefined));
    if (producer) {
      await new Promise<void>((resolve) => producer.flush(this.options.publishTimeoutMs, () => resolve()));
      await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
    }
    const admins = await Promise.all([...this.admins.values()].map((a) => a.catch(() => undefined)));
    await Promise.all(
      admins.map((a) => (a ? new Promise<void>((resolve) => a.disconnect(() => resolve())) : undefined)),
    );
  }

  /** Reports an error once per 10 s per context and message, so a down broker does not flood the log. */
  private report(error: unknown, context: string): void {
    const err = toError(error);
    const key = `${context}|${err.message}`;
    const now = Date.now();
    if (now - (this.lastReported.get(key) ?? 0) < 10_000) return;
    this.lastReported.set(key, now);
    if (this.lastReported.size > 1000) this.lastReported.clear();
    this.options.onError(err, context);
  }
}

/** Creates a Kafka transport. Options are validated here (ConfigError naming the field). */
export function kafka(options: KafkaTransportOptions): KafkaTransport {
  return new KafkaTransport(options);
}
