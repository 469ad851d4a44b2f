import { ClosedError, HeraldError, toError } from '../../core/errors.js';
import type {
  DeliveryHandler,
  GroupStats,
  Message,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportCapabilities,
} from '../../transport/transport.js';
import { validateSubscribeOptions } from '../../transport/validate.js';
import { encodeFields } from './codec.js';
import { Connections, type RedisHealth, type RedisStatus } from './connection.js';
import { GroupConsumer } from './consumer.js';
import { TopicKeys } from './keys.js';
import {
  resolveTransportOptions,
  validateTopicName,
  type RedisTransportOptions,
  type ResolvedTransportOptions,
} from './options.js';
import { bindScripts, type Scripts } from './scripts.js';

/** A publish did not reach Redis (or not all of it). Nothing is half-written: the batch is a MULTI. */
export class RedisPublishError extends HeraldError {
  constructor(topic: string, cause: unknown) {
    super(
      'HERALD_REDIS_PUBLISH',
      `publishing to ${topic} failed: ${toError(cause).message}; the batch was not written, retry it`,
      {
        cause,
      },
    );
  }
}

/**
 * Transport on Redis Streams: one stream per topic, one Redis consumer group per Herald group,
 * XAUTOCLAIM for the leases of crashed consumers, a sorted set for delayed redelivery and a key
 * lock per group for per-key order. See docs/adapters/redis.md.
 */
export class RedisTransport implements Transport {
  readonly name = 'redis';
  readonly capabilities: TransportCapabilities = {
    persistent: true,
    distributed: true,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
  };

  private readonly options: ResolvedTransportOptions;
  private readonly connections: Connections;
  private readonly scripts: Scripts;
  private readonly consumers = new Set<GroupConsumer>();
  private readonly topicKeys = new Map<string, TopicKeys>();
  private readonly lastTrim = new Map<string, number>();
  private closing: Promise<void> | undefined;

  constructor(options: RedisTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    this.connections = new Connections(options, 'herald redis transport');
    this.scripts = bindScripts(this.connections.client);
  }

  /** Writes the batch atomically (MULTI/EXEC of XADDs); resolves once Redis has accepted all of it. */
  async publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.closing) throw new ClosedError('RedisTransport');
    const keys = this.keys(topic);
    if (messages.length === 0) return;
    const tx = this.connections.client.multi();
    for (const m of messages) tx.xadd(keys.stream, '*', ...encodeFields(m));
    let results: [Error | null, unknown][] | null;
    try {
      results = await tx.exec();
    } catch (err) {
      this.connections.report(err, `publish to ${topic}`);
      throw new RedisPublishError(topic, err);
    }
    const failed = results === null ? new Error('transaction aborted') : results.find(([err]) => err)?.[0];
    if (failed) {
      this.connections.report(failed, `publish to ${topic}`);
      throw new RedisPublishError(topic, failed);
    }
    if (this.options.trim) this.maybeTrim(topic, keys);
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    if (this.closing) throw new ClosedError('RedisTransport');
    validateSubscribeOptions(topic, options);
    const keys = this.keys(topic);
    const consumer = new GroupConsumer(
      {
        connections: this.connections,
        scripts: this.scripts,
        options: this.options,
        retired: (c) => this.consumers.delete(c),
      },
      topic,
      keys.group(options.group),
      options,
      onDelivery,
    );
    await consumer.start();
    this.consumers.add(consumer);
    return consumer;
  }

  async stats(topic: string, group: string): Promise<GroupStats> {
    const keys = this.keys(topic);
    const g = keys.group(group);
    const client = this.connections.client;
    const [groups, ready, held, delayed] = await Promise.all([
      client.xinfo('GROUPS', keys.stream).catch(() => [] as unknown[]),
      client.llen(g.ready),
      client.zcard(g.held),
      client.zcard(g.delayed),
    ]);
    const info = (groups as unknown[][]).map(pairs).find((x) => x.name === group);
    if (!info) return { lag: await client.xlen(keys.stream), inFlight: 0, delayed: 0 };
    const unread = typeof info.lag === 'number' ? info.lag : 0;
    return { lag: unread + ready + held, inFlight: Number(info.pending ?? 0), delayed };
  }

  /**
   * Trims one topic now as configured by `trim` (or by `limits`), never past what a group has not
   * settled. Returns the number of entries removed.
   */
  async trim(
    topic: string,
    limits: { maxLen?: number; minIdAgeMs?: number } | undefined = this.options.trim,
  ): Promise<number> {
    if (!limits || (limits.maxLen === undefined && limits.minIdAgeMs === undefined)) return 0;
    const keys = this.keys(topic);
    let removed = 0;
    // maxLen trims at most 10 000 entries per script call, so one call never blocks Redis for long.
    for (let i = 0; i < 100; i++) {
      const n = await this.scripts.trim(keys.stream, [
        keys.groupPrefix,
        limits.maxLen ?? '',
        limits.minIdAgeMs ?? '',
      ]);
      removed += n;
      if (n < 10_000) break;
    }
    return removed;
  }

  /** Connection state and the last error; cheap, for health checks and dashboards. */
  status(): RedisStatus {
    return this.connections.status();
  }

  /** Round-trips a PING. */
  health(timeoutMs?: number): Promise<RedisHealth> {
    return this.connections.health(timeoutMs);
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const consumers = [...this.consumers];
    await Promise.all(consumers.map((c) => c.close()));
    await Promise.all(
      consumers.map((c) => c.releaseAll().catch((err: unknown) => this.connections.report(err, 'close'))),
    );
    await this.connections.close();
  }

  private maybeTrim(topic: string, keys: TopicKeys): void {
    const now = Date.now();
    if (now - (this.lastTrim.get(topic) ?? 0) < this.options.trim!.intervalMs) return;
    this.lastTrim.set(topic, now);
    this.trim(topic).catch((err: unknown) => this.connections.report(err, `trim ${keys.stream}`));
  }

  private keys(topic: string): TopicKeys {
    let k = this.topicKeys.get(topic);
    if (!k) {
      if (typeof topic !== 'string' || topic.length === 0)
        validateSubscribeOptions(topic, { group: 'x', prefetch: 1 });
      validateTopicName(topic);
      k = new TopicKeys(this.options.prefix, topic);
      this.topicKeys.set(topic, k);
    }
    return k;
  }
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

/** Creates a Redis Streams transport. Options are validated here (ConfigError naming the field). */
export function redis(options: RedisTransportOptions = {}): RedisTransport {
  return new RedisTransport(options);
}
