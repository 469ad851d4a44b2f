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
import { encodeHeaders, msgId } from './codec.js';
import { Connection, type NatsStatus } from './connection.js';
import { GroupConsumer } from './consumer.js';
import { Names, namesInDescription, token, untoken } from './names.js';
import {
  resolveTransportOptions,
  type NatsTransportOptions,
  type ResolvedTransportOptions,
} from './options.js';
import { Scheduler } from './scheduler.js';
import { Broker, isNotFound } from './state.js';

/**
 * A publish was not acknowledged by JetStream (or not all of it). Messages of the batch that were
 * acknowledged are stored; publishing the whole batch again is safe, the duplicate window drops
 * the ones already stored (message id = event id).
 */
export class NatsPublishError extends HeraldError {
  constructor(topic: string, cause: unknown) {
    super(
      'HERALD_NATS_PUBLISH',
      `publishing to ${topic} failed: ${toError(cause).message}; publish the batch again (duplicates are dropped by id)`,
      { cause },
    );
  }
}

/**
 * Transport on NATS JetStream: one stream per namespace (`<ns>-topics`), a subject per topic and
 * key, a durable pull consumer per group with explicit ack, `nak(delay)` for the retry queue and
 * `working()` for the leases. See docs/adapters/nats.md.
 */
export class NatsTransport implements Transport {
  readonly name = 'nats';
  readonly capabilities: TransportCapabilities = {
    persistent: true,
    distributed: true,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
    scheduledPublish: true,
  };

  readonly options: ResolvedTransportOptions;
  readonly names: Names;
  private readonly connection: Connection;
  private readonly broker: Broker;
  private readonly consumers = new Set<GroupConsumer>();
  private readonly scheduler: Scheduler;
  private closing: Promise<void> | undefined;

  constructor(options: NatsTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    this.names = new Names(this.options.namespace);
    this.connection = new Connection(options, 'herald nats transport');
    this.broker = new Broker(this.connection, this.names, this.options.stream);
    this.scheduler = new Scheduler({
      broker: this.broker,
      connection: this.connection,
      options: this.options,
    });
  }

  /** Connects and creates the stream and buckets; fails within the connect timeout. Optional: every call does it. */
  async start(): Promise<void> {
    await this.broker.handles();
  }

  /**
   * Resolves once JetStream acknowledged every message of the batch (stored per the stream's
   * settings). With a future `deliverAt` they go to the scheduled stream instead (ADR 0904).
   */
  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    if (this.closing) throw new ClosedError('NatsTransport');
    checkTopic(topic);
    const deliverAt = scheduledTime(options, Date.now());
    if (messages.length === 0) return;
    const { js } = await this.broker.handles();
    try {
      if (deliverAt !== undefined && deliverAt > Date.now()) {
        await this.scheduler.publish(topic, messages, deliverAt);
        return;
      }
      await Promise.all(
        messages.map((m) =>
          js.publish(this.names.messageSubject(topic, m.key), m.body, {
            headers: encodeHeaders(m),
            msgID: msgId(topic, m),
          }),
        ),
      );
    } catch (err) {
      this.connection.report(err, `publish to ${topic}`);
      throw new NatsPublishError(topic, err);
    }
  }

  /**
   * Removes scheduled messages that were not moved to their topic yet. The count is exact: a
   * cancel and the move at the due time race by compare-and-set on the message's subject.
   */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    if (this.closing) throw new ClosedError('NatsTransport');
    checkTopic(topic);
    if (ids.length === 0) return 0;
    return this.scheduler.cancel(topic, ids);
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    if (this.closing) throw new ClosedError('NatsTransport');
    validateSubscribeOptions(topic, options);
    // Every process that consumes also moves due scheduled messages, so they flow without a publisher.
    await this.scheduler.start();
    const consumer = new GroupConsumer(
      {
        broker: this.broker,
        connection: this.connection,
        options: this.options,
        retired: (c) => this.consumers.delete(c),
      },
      topic,
      options,
      onDelivery,
    );
    await consumer.start();
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Lag is the consumer's pending count; delayed are the messages whose retry is not due yet (from
   * the retries bucket); in flight is the rest of the server's unacknowledged count.
   */
  async stats(topic: string, group: string): Promise<GroupStats> {
    checkTopic(topic);
    const { jsm, retries } = await this.broker.handles();
    const stream = this.names.topicsStream;
    const info = await jsm.consumers.info(stream, this.names.consumer(topic, group)).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!info) {
      const s = await jsm.streams.info(stream, { subjects_filter: `${this.names.topicSubject(topic)}.>` });
      const lag = Object.values(s.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      return { lag, scheduled: await this.scheduler.count(topic), inFlight: 0, delayed: 0 };
    }
    let delayed = 0;
    const now = Date.now();
    const keys = await retries.keys(`${token(group)}.${token(topic)}.>`);
    const pending: Promise<void>[] = [];
    for await (const k of keys) {
      pending.push(
        retries.get(k).then((e) => {
          if (!e || e.operation !== 'PUT' || e.length === 0) return;
          const r = JSON.parse(e.string()) as { due?: number };
          if (r.due !== undefined && r.due > now) delayed++;
        }),
      );
    }
    await Promise.all(pending);
    delayed = Math.min(delayed, info.num_ack_pending);
    const scheduled = await this.scheduler.count(topic);
    return { lag: info.num_pending, scheduled, inFlight: info.num_ack_pending - delayed, delayed };
  }

  /**
   * Every topic of the namespace and the groups that read it: the durable consumers Herald made
   * on the topics stream (named `<group>_<topic>`, filter `<ns>.topics.<topic>.>`) and the topics
   * with messages in the topics or scheduled stream (listings of their subjects: one per key, one
   * per scheduled id). Other consumers (other tools', ephemeral and ordered ones) are left out;
   * Herald's scheduler reads the scheduled stream. A name shortened to a hash is read from its
   * consumer's description; a topic with such a name and no consumer that knows it is left out, as
   * `stats()` could not be asked about it (ADR 0905).
   */
  async topology(): Promise<readonly TopicTopology[]> {
    if (this.closing) throw new ClosedError('NatsTransport');
    const { jsm } = await this.broker.handles();
    const stream = this.names.topicsStream;
    const topicNames = new Map<string, string>(); // topic token -> topic name
    const groups = new Map<string, Set<string>>(); // topic token -> group names
    const groupsOf = (t: string): Set<string> => {
      let set = groups.get(t);
      if (!set) groups.set(t, (set = new Set()));
      return set;
    };
    for await (const c of jsm.consumers.list(stream)) {
      const { durable_name: durable, filter_subject: filter, description } = c.config;
      if (durable !== c.name || filter === undefined) continue;
      const tokens = this.names.groupConsumerTokens(c.name, filter);
      if (!tokens) continue;
      const described = namesInDescription(description);
      // The description counts only where it names this very consumer (not copied or edited).
      const full =
        described && token(described.group) === tokens.group && token(described.topic) === tokens.topic
          ? described
          : undefined;
      const topic = full?.topic ?? untoken(tokens.topic);
      const group = full?.group ?? untoken(tokens.group);
      if (topic === undefined || group === undefined) continue;
      topicNames.set(tokens.topic, topic);
      groupsOf(tokens.topic).add(group);
    }
    const subjects = async (name: string, filter: string): Promise<string[]> => {
      const info = await jsm.streams.info(name, { subjects_filter: filter }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined; // nothing was ever scheduled in this namespace
        throw err;
      });
      return Object.keys(info?.state.subjects ?? {});
    };
    for (const subject of [
      ...(await subjects(stream, this.names.topicsSubjects)),
      // Scheduled and not yet due: listed like the other transports list a topic once scheduled on.
      ...(await subjects(this.names.scheduledStream, this.names.scheduledSubjects)),
    ]) {
      const t = this.names.topicTokenOf(subject);
      if (t === undefined || topicNames.has(t)) continue;
      const topic = untoken(t);
      if (topic !== undefined) topicNames.set(t, topic);
    }
    return [...topicNames]
      .map(([t, topic]) => ({ topic, groups: [...(groups.get(t) ?? [])].sort() }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  /** Connection state and the last error; cheap, for health checks and dashboards. */
  status(): NatsStatus {
    return this.connection.status();
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.scheduler.close().catch((err: unknown) => this.connection.report(err, 'close scheduler'));
    const consumers = [...this.consumers];
    // Bounded: a broker that does not answer leaves the unsettled messages to their leases.
    const released = Promise.all(
      consumers.map((c) => c.releaseAll().catch((err: unknown) => this.connection.report(err, 'close'))),
    );
    await Promise.race([released, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.connection.close();
  }
}

function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0)
    validateSubscribeOptions(topic, { group: 'x', prefetch: 1 });
}

/** Creates a NATS JetStream transport. Options are validated here (ConfigError naming the field). */
export function nats(options: NatsTransportOptions = {}): NatsTransport {
  return new NatsTransport(options);
}
