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
  TransportStores,
} from '../../transport/transport.js';
import { BackendUnreachableError } from '../../backends/registry.js';
import { redisStores } from './stores/index.js';
import { scheduledTime, validateCancelIds, validateSubscribeOptions } from '../../transport/validate.js';
import { encodeFields, packFields, publishArgs } from './codec.js';
import { Connections, type RedisHealth, type RedisStatus } from './connection.js';
import { GroupConsumer } from './consumer.js';
import { TopicKeys } from './keys.js';
import {
  resolveTransportOptions,
  validateTopicName,
  type RedisConnectionOptions,
  type RedisTransportOptions,
  type ResolvedTransportOptions,
} from './options.js';
import { bindScripts, type Scripts } from './scripts.js';

/** A publish did not reach Redis (or not all of it). Nothing is half-written: the batch is one script call (ADR 0311). */
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

/** How long close() waits for Redis to take the releases and QUIT before dropping the sockets. */
const SHUTDOWN_WAIT_MS = 1000;

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
    scheduledPublish: true,
  };

  private readonly options: ResolvedTransportOptions;
  private readonly connections: Connections;
  private readonly scripts: Scripts;
  private readonly consumers = new Set<GroupConsumer>();
  private readonly topicKeys = new Map<string, TopicKeys>();
  private readonly lastTrim = new Map<string, number>();
  private closing: Promise<void> | undefined;

  private readonly connectionOptions: RedisConnectionOptions;

  constructor(options: RedisTransportOptions = {}) {
    this.options = resolveTransportOptions(options);
    const { url, redis: node, cluster, client, prefix, onError } = options;
    this.connectionOptions = { url, redis: node, cluster, client, prefix, onError };
    this.connections = new Connections(options, 'herald redis transport');
    this.scripts = bindScripts(this.connections.client);
  }

  /**
   * Writes the batch atomically (one XADD, or one script call of XADDs); resolves once Redis has
   * accepted all of it.
   * With a future `deliverAt` the batch goes to the topic's scheduled set instead, in one script,
   * and the fetch script adds it to the stream when due (ADR 0041).
   */
  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    if (this.closing) throw new ClosedError('RedisTransport');
    const keys = this.keys(topic);
    const now = Date.now();
    const deliverAt = scheduledTime(options, now);
    if (messages.length === 0) return;
    if (deliverAt !== undefined) return this.schedule(topic, keys, messages, deliverAt - now);
    if (messages.length === 1) {
      // One XADD is atomic on its own, and cheaper for Redis than a script call.
      try {
        await this.connections.client.xadd(keys.stream, '*', ...encodeFields(messages[0]!));
      } catch (err) {
        this.connections.report(err, `publish to ${topic}`);
        throw new RedisPublishError(topic, err);
      }
    } else {
      // One script call rather than MULTI/EXEC: as atomic (see PUBLISH), and one command for ioredis
      // to build and one reply to decode instead of a QUEUED reply per message (ADR 0311).
      try {
        await this.scripts.publish(keys.stream, publishArgs(messages));
      } catch (err) {
        this.connections.report(err, `publish to ${topic}`);
        throw new RedisPublishError(topic, err);
      }
    }
    if (this.options.trim) this.maybeTrim(topic, keys);
  }

  /** Removes scheduled messages not yet in the stream; see {@link Transport.cancelScheduled}. */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    if (this.closing) throw new ClosedError('RedisTransport');
    validateCancelIds(topic, ids);
    const keys = this.keys(topic);
    if (ids.length === 0) return 0;
    return this.scripts.cancelScheduled([keys.scheduled, keys.scheduledBodies], ids);
  }

  private async schedule(
    topic: string,
    keys: TopicKeys,
    messages: readonly Message[],
    delayMs: number,
  ): Promise<void> {
    const args: (string | number | Buffer)[] = [delayMs];
    for (const m of messages) args.push(m.id, packFields(m));
    try {
      await this.scripts.schedule(keys.scheduleKeys(), args);
    } catch (err) {
      this.connections.report(err, `schedule on ${topic}`);
      throw new RedisPublishError(topic, err);
    }
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
    // Scheduled messages are scored on the Redis clock.
    const [seconds, micros] = (await client.time()) as [string | number, string | number];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const [groups, ready, held, followers, delayed, scheduled, due] = await Promise.all([
      client.xinfo('GROUPS', keys.stream).catch(() => [] as unknown[]),
      client.llen(g.ready),
      client.zcard(g.held),
      client.zcard(g.followers),
      client.zcard(g.delayed),
      client.zcount(keys.scheduled, `(${now}`, '+inf'),
      client.zcount(keys.scheduled, '-inf', now),
    ]);
    // Due but not yet in the stream (no member has fetched since): counted as lag.
    const info = (groups as unknown[][]).map(pairs).find((x) => x.name === group);
    if (!info) return { lag: (await client.xlen(keys.stream)) + due, scheduled, inFlight: 0, delayed: 0 };
    const unread = typeof info.lag === 'number' ? info.lag : 0;
    // Followers are leased (in the PEL) but wait for their key like held messages: counted as lag.
    const inFlight = Math.max(0, Number(info.pending ?? 0) - followers);
    return { lag: unread + ready + held + followers + due, scheduled, inFlight, delayed };
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

  /**
   * Pings Redis within `timeoutMs`; rejects with BackendUnreachableError naming the URL. ioredis
   * itself would queue commands and reconnect forever, so without this an unreachable server
   * would hang `herald.start()`.
   */
  async connect({ timeoutMs }: { readonly timeoutMs: number }): Promise<void> {
    const health = await this.connections.health(timeoutMs);
    if (!health.ok)
      throw new BackendUnreachableError(
        this.connections.describe(),
        new Error(this.status().lastError?.message ?? health.error ?? 'no answer'),
      );
  }

  /**
   * The Redis dead-letter and idempotency stores on the same server and prefix, which Herald uses
   * unless it is given others. Their connection opens only when a store is first used.
   */
  defaultStores(): TransportStores {
    return redisStores(this.connectionOptions);
  }

  /** Every topic stream under this transport's prefix and its consumer groups (SCAN + XINFO). */
  async topology(): Promise<readonly TopicTopology[]> {
    const client = this.connections.client;
    const scan = (cursor: string, pattern: string) =>
      (
        client as unknown as {
          scan(c: string, m: 'MATCH', p: string, n: 'COUNT', c2: number): Promise<[string, string[]]>;
        }
      ).scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    const prefix = `${this.options.prefix}:{`;
    const streams = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await scan(cursor, `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*}:s`);
      cursor = next;
      for (const k of keys) streams.add(k);
    } while (cursor !== '0');
    const out: TopicTopology[] = [];
    for (const stream of [...streams].sort()) {
      const topic = stream.slice(prefix.length, -3);
      if (topic.length === 0) continue;
      const groups = ((await client.xinfo('GROUPS', stream).catch(() => [])) as unknown[][])
        .map((g) => String(pairs(g).name))
        .sort();
      out.push({ topic, groups });
    }
    return out;
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Returns unsettled deliveries to their groups and says goodbye to Redis; bounded, because a
   * stalled server answers nothing: after SHUTDOWN_WAIT_MS the sockets are dropped and whatever
   * was not settled comes back to the group when its lease expires.
   */
  private async shutdown(): Promise<void> {
    const consumers = [...this.consumers];
    const graceful = (async () => {
      await Promise.all(consumers.map((c) => c.close()));
      await Promise.all(
        consumers.map((c) => c.releaseAll().catch((err: unknown) => this.connections.report(err, 'close'))),
      );
      await this.connections.close();
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), SHUTDOWN_WAIT_MS);
      timer.unref();
    });
    const outcome = await Promise.race([graceful.then(() => 'done' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.connections.report(
        new Error(
          `Redis did not answer within ${SHUTDOWN_WAIT_MS} ms; connections dropped, leases left to expire`,
        ),
        'close',
      );
      this.connections.disconnectAll();
      await graceful.catch(() => undefined);
    }
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
