import { HeraldError, toError } from '../../core/errors.js';
import type { Message, TopicTopology } from '../../transport/transport.js';
import { decodeRecord } from './codec.js';
import { AdminClient, type AdminClientHandle, type KafkaConsumerClient, type KafkaRecord } from './driver.js';
import { kafkaName, type ResolvedKafkaOptions } from './options.js';
import { openReader } from './reader.js';
import { SCHEDULE_TOPIC, SCHEDULER_GROUP } from './scheduler.js';

/*
 * Which groups read which topics (ADR 0924). Two sources, merged:
 *
 *   registry   `<ns>.herald.groups`: every subscribe appends one record (topic, group). Read back
 *              from the beginning, it names every group Herald ever subscribed in the namespace,
 *              in any process, on any cluster, including the librdkafka mock (which has no
 *              ListGroups) and groups that never committed.
 *   brokers    ListGroups, then each group's committed offsets (OffsetFetch): groups of other
 *              tools, and Herald groups from before the registry. Skipped, and reported once,
 *              when the brokers do not implement ListGroups (the mock cluster).
 *
 * Herald's own topics (schedule, registry) and the scheduler group are left out: they are not
 * topics a user publishes to.
 */

/** The Herald name of the group registry topic (namespaced like any other). */
export const REGISTRY_TOPIC = 'herald.groups';

const INTERNAL_TOPICS = [SCHEDULE_TOPIC, REGISTRY_TOPIC];
const INTERNAL_GROUPS = [SCHEDULER_GROUP];
const TOPIC_HEADER = 'herald-topic';
const GROUP_HEADER = 'herald-group';
/** librdkafka: the broker does not implement the request (ListGroups on the mock cluster). */
const UNSUPPORTED_BY_BROKER = -165;

/** Reading the group registry back did not reach its end in time. */
export class KafkaTopologyError extends HeraldError {
  constructor(detail: string) {
    super('HERALD_KAFKA_TOPOLOGY', `listing Kafka topics and groups failed: ${detail}`);
  }
}

export interface TopologyContext {
  readonly options: ResolvedKafkaOptions;
  readonly report: (error: unknown, context: string) => void;
  readonly produce: (kafkaTopic: string, messages: readonly Message[]) => Promise<unknown>;
}

/** Writes the registry and answers `topology()` for one transport. */
export class Topology {
  private readonly registryTopic: string;
  private readonly registered = new Set<string>();
  private reader: Promise<KafkaConsumerClient> | undefined;
  private admin: AdminClientHandle | undefined;
  private listGroupsUnsupported = false;

  constructor(private readonly ctx: TopologyContext) {
    this.registryTopic = kafkaName(ctx.options.namespace, REGISTRY_TOPIC, 'topic');
  }

  /** Records that `group` reads `topic` (once per pair and transport). */
  async register(topic: string, group: string): Promise<void> {
    const key = `${topic}\n${group}`;
    if (this.registered.has(key)) return;
    await this.ctx.produce(this.registryTopic, [
      { id: key, key, headers: { [TOPIC_HEADER]: topic, [GROUP_HEADER]: group }, body: new Uint8Array(0) },
    ]);
    this.registered.add(key);
  }

  /** Every topic of the namespace and the groups that read it, sorted. */
  async list(): Promise<readonly TopicTopology[]> {
    const reader = await this.openReader();
    const timeout = this.ctx.options.connectTimeoutMs;
    const metadata = await new Promise<{ topics: { name: string; partitions: { id: number }[] }[] }>(
      (resolve, reject) =>
        reader.getMetadata({ allTopics: true, timeout } as never, (err, data) =>
          err ? reject(toError(err)) : resolve(data),
        ),
    );
    const prefix = this.ctx.options.namespace === undefined ? '' : `${this.ctx.options.namespace}.`;
    const topics = new Map<string, Set<string>>();
    for (const { name } of metadata.topics) {
      if (!name.startsWith(prefix) || name.startsWith('__')) continue;
      const topic = name.slice(prefix.length);
      if (topic.length > 0 && !INTERNAL_TOPICS.includes(topic)) topics.set(topic, new Set());
    }
    const add = (topic: string, group: string): void => {
      if (!INTERNAL_GROUPS.includes(group)) topics.get(topic)?.add(group);
    };
    const registry = metadata.topics.find((t) => t.name === this.registryTopic);
    if (registry) {
      for (const pair of await this.readRegistry(
        reader,
        registry.partitions.map((p) => p.id),
      ))
        add(pair.topic, pair.group);
    }
    for (const pair of await this.brokerGroups(prefix)) add(pair.topic, pair.group);
    return [...topics]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([topic, groups]) => ({ topic, groups: [...groups].sort() }));
  }

  async close(): Promise<void> {
    this.admin?.disconnect();
    this.admin = undefined;
    const reader = await this.reader?.catch(() => undefined);
    if (reader) await new Promise<void>((resolve) => reader.disconnect(() => resolve()));
  }

  /** Every (topic, group) record of the registry, read from the beginning to the current end. */
  private async readRegistry(
    reader: KafkaConsumerClient,
    partitions: readonly number[],
  ): Promise<{ topic: string; group: string }[]> {
    const timeout = this.ctx.options.connectTimeoutMs;
    const ends = new Map<number, number>();
    for (const partition of partitions) {
      const high = await new Promise<number>((resolve, reject) =>
        reader.queryWatermarkOffsets(this.registryTopic, partition, timeout, (err, o) =>
          err ? reject(toError(err)) : resolve(o.highOffset),
        ),
      );
      if (high > 0) ends.set(partition, high);
    }
    const pairs: { topic: string; group: string }[] = [];
    if (ends.size === 0) return pairs;
    reader.assign(
      [...ends.keys()].map((partition) => ({ topic: this.registryTopic, partition, offset: -2 })),
    );
    const deadline = Date.now() + timeout * 3;
    try {
      while (ends.size > 0) {
        const records = await new Promise<KafkaRecord[]>((resolve, reject) =>
          reader.consume(500, (err, list) => (err ? reject(toError(err)) : resolve(list))),
        );
        for (const record of records) {
          const end = ends.get(record.partition);
          if (end === undefined || record.offset >= end) continue;
          const { headers } = decodeRecord(this.registryTopic, record);
          const topic = headers[TOPIC_HEADER];
          const group = headers[GROUP_HEADER];
          if (topic !== undefined && group !== undefined) pairs.push({ topic, group });
          if (record.offset >= end - 1) ends.delete(record.partition);
        }
        if (ends.size > 0 && Date.now() > deadline)
          throw new KafkaTopologyError(
            `the group registry ${this.registryTopic} was not read to its end within ${timeout * 3} ms`,
          );
      }
    } finally {
      reader.unassign();
    }
    return pairs;
  }

  /**
   * Groups the brokers list (ListGroups) in the namespace, and the topics each has committed
   * offsets on. Never DescribeGroups: the librdkafka client crashes the process when the brokers
   * lack it (seen on the mock cluster).
   */
  private async brokerGroups(prefix: string): Promise<{ topic: string; group: string }[]> {
    if (this.listGroupsUnsupported) return [];
    const admin = this.openAdmin();
    const timeout = this.ctx.options.connectTimeoutMs;
    const listed = await new Promise<{
      groups: { groupId: string; protocolType: string }[];
      errors: { message: string; code: number }[];
    }>((resolve, reject) =>
      admin.listGroups({ timeout }, (err, result) => (err ? reject(toError(err)) : resolve(result))),
    );
    const errors = listed.errors ?? [];
    if (listed.groups.length === 0 && errors.length > 0) {
      if (errors.every((e) => e.code === UNSUPPORTED_BY_BROKER)) {
        this.listGroupsUnsupported = true;
        this.ctx.report(
          new KafkaTopologyError(
            'the brokers do not implement ListGroups (the librdkafka mock cluster does not); topology() lists the groups of the Herald group registry only',
          ),
          'topology',
        );
        return [];
      }
      throw new KafkaTopologyError(errors.map((e) => e.message).join('; '));
    }
    for (const e of errors) this.ctx.report(new Error(e.message), 'topology: ListGroups');
    const groups = listed.groups
      .filter((g) => (g.protocolType === 'consumer' || g.protocolType === '') && g.groupId.startsWith(prefix))
      .map((g) => g.groupId);
    const pairs: { topic: string; group: string }[] = [];
    for (const groupId of groups) {
      const results = await new Promise<{ partitions: { topic: string }[] }[]>((resolve, reject) =>
        admin.listConsumerGroupOffsets([{ groupId, partitions: null as never }], { timeout }, (err, r) =>
          err ? reject(toError(err)) : resolve(r),
        ),
      );
      const group = groupId.slice(prefix.length);
      for (const kafkaTopic of new Set(results.flatMap((r) => r.partitions.map((p) => p.topic))))
        if (kafkaTopic.startsWith(prefix)) pairs.push({ topic: kafkaTopic.slice(prefix.length), group });
    }
    return pairs;
  }

  private openReader(): Promise<KafkaConsumerClient> {
    this.reader ??= openReader(this.ctx.options, 'topology-reader', this.ctx.report).catch((err: unknown) => {
      this.reader = undefined;
      throw err;
    });
    return this.reader;
  }

  private openAdmin(): AdminClientHandle {
    const o = this.ctx.options;
    this.admin ??= AdminClient.create(
      { ...o.librdkafka, 'bootstrap.servers': o.brokers, 'client.id': `${o.clientId}-admin` },
      { 'event.error': (err: unknown) => this.ctx.report(err, 'topology admin') },
    );
    return this.admin;
  }
}
