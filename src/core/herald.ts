import {
  EventBus,
  type BatchItem,
  type EventRef,
  type PublishEventOptions,
  type PublishMiddleware,
} from './bus.js';
import type { Codec } from './codec/codec.js';
import { batchSubscription, type BatchSubscribeSpec } from './batch.js';
import { consumeEvents, type ConsumeSpec } from './consume.js';
import { CodecRegistry } from './codec/registry.js';
import type { WireMode } from './codec/wire.js';
import type { ConsumerMiddleware } from './consumer/context.js';
import { Consumer, type SubscribeSpec, type TypedSubscribeSpec } from './consumer/consumer.js';
import { DeadLetterAdmin } from './dead-letters.js';
import { ConfigError, HeraldError } from './errors.js';
import type { AnyEventDefinition, EnvelopeOf, EventEnvelope, InputOf } from './event.js';
import { silentLogger, type Logger } from './logger.js';
import { Observers, type Observer } from './observer.js';
import { rejectUnknownOptions, type KnownKeys } from './options.js';
import type { RetryOptions } from './consumer/retry-policy.js';
import type { IdempotencyOptions } from './middleware/idempotency.js';
import type { RoutingRules } from './routing.js';
import type { DeadLetterStore } from '../store/dead-letter-store.js';
import type { EventStore } from '../store/event-store.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import { MemoryDeadLetterStore } from '../store/memory/dead-letter-store.js';
import type { Transport, TransportStores } from '../transport/transport.js';
import { bounded } from './bounded.js';

/**
 * A named bundle of Herald's one extension model (ADR 0007): publish middleware, consume
 * middleware and observers, plus work to do at shutdown. Not a mechanism of its own: `use(plugin)`
 * is `bus.use(publish)`, a consume middleware, and `observe(observer)` for each observer.
 */
export interface HeraldPlugin {
  readonly name: string;
  readonly publish?: PublishMiddleware;
  readonly consume?: ConsumerMiddleware;
  /** One observer, or several called in order (each isolated from the others' failures). */
  readonly observer?: Observer | readonly Observer[];
  /** Called by `herald.stop()` after consumers drained (e.g. flush spans). */
  stop?(): Promise<void>;
}

export interface HeraldStores {
  /**
   * Where failed messages go. Default: the transport's own durable store (`sqlite()`: the same
   * file; `redis()`: the same server), else in memory (lost on exit, and Herald warns).
   */
  readonly deadLetters?: DeadLetterStore;
  /** Default: the transport's own durable store, as for `deadLetters`; else none. */
  readonly idempotency?: IdempotencyStore;
  /** When set, every published event is appended here first. */
  readonly events?: EventStore;
}

export interface HeraldOptions {
  /** This service's name; the `source` of every event it publishes. */
  readonly service: string;
  readonly transport: Transport;
  /** Event-type patterns → topics; unmatched types go to `<domain>.events`. */
  readonly routing?: RoutingRules;
  /** Codec for publishing (default JSON); consumers read any registered codec. */
  readonly codec?: Codec;
  /** Extra codecs consumers can read (event definitions' and topic codecs are added on their own). */
  readonly codecs?: readonly Codec[];
  /** Codecs by topic for publishing, e.g. `{ 'analytics.events': compressed(jsonCodec, zstd()) }`. */
  readonly topicCodecs?: Readonly<Record<string, Codec>>;
  /**
   * Message layout for publishing (ADR 0010): `binary` (default), envelope fields in headers and the
   * payload alone as the body; `structured`, the whole envelope as the body, for consumers still on
   * a Herald version before ADR 0010 during a rolling upgrade. Consumers read both.
   */
  readonly wire?: WireMode;
  readonly stores?: HeraldStores;
  /** A pino logger or anything with the same methods; default silent. */
  readonly logger?: Logger;
  readonly plugins?: readonly HeraldPlugin[];
  /**
   * How long `stop()` waits for running handlers; default 30 s. `stop()` returns within this plus
   * a few seconds whatever the broker does: what cannot be settled is abandoned to its lease.
   */
  readonly drainTimeoutMs?: number;
  /** How long `start()` waits for the broker to answer before failing; default 3000 ms. */
  readonly connectTimeoutMs?: number;
  /** Close the transport and stores on `stop()`; default true. Set false when they are shared. */
  readonly closeResources?: boolean;
}

const HERALD_OPTIONS: KnownKeys<HeraldOptions> = {
  service: true,
  transport: true,
  routing: true,
  codec: true,
  codecs: true,
  topicCodecs: true,
  wire: true,
  stores: true,
  logger: true,
  plugins: true,
  drainTimeoutMs: true,
  connectTimeoutMs: true,
  closeResources: true,
};

/** What `stop()` allows each step after draining (flushing plugins, closing the transport, stores). */
const STOP_STEP_MS = 1000;
const STORES: KnownKeys<HeraldStores> = { deadLetters: true, idempotency: true, events: true };
const SUBSCRIBE_SPEC: KnownKeys<SubscribeSpec> = {
  group: true,
  events: true,
  handler: true,
  handlers: true,
  name: true,
  topics: true,
  concurrency: true,
  ordering: true,
  retry: true,
  idempotency: true,
  timeoutMs: true,
  middleware: true,
  startFrom: true,
  policy: true,
  classify: true,
};
const RETRY_OPTIONS: KnownKeys<RetryOptions> = {
  maxAttempts: true,
  initialDelayMs: true,
  multiplier: true,
  maxDelayMs: true,
  jitter: true,
};
const IDEMPOTENCY: KnownKeys<IdempotencyOptions> = { ttlMs: true, leaseMs: true };

/**
 * A service's connection to the event system: publish, subscribe, the DLQ, and an orderly
 * start/stop. Create with {@link createHerald}.
 */
export class Herald {
  readonly service: string;
  readonly transport: Transport;
  readonly bus: EventBus;
  /** Operator API over the dead-letter store: list, count, replay, purge. */
  readonly deadLetters: DeadLetterAdmin;
  readonly eventStore: EventStore | undefined;
  readonly idempotency: IdempotencyStore | undefined;
  readonly logger: Logger;
  private readonly observers = new Observers();
  private readonly consumerMiddleware: ConsumerMiddleware[] = [];
  private readonly codecs: CodecRegistry;
  private readonly consumerList: Consumer[] = [];
  private readonly plugins: HeraldPlugin[] = [];
  private readonly drainTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly closeResources: boolean;
  /** Stores Herald took from the transport: its own to close, whatever `closeResources` says. */
  private readonly ownStores: TransportStores | undefined;
  private state: 'created' | 'started' | 'stopping' | 'stopped' = 'created';

  constructor(options: HeraldOptions) {
    if (!options || typeof options !== 'object')
      throw new ConfigError('options', 'createHerald needs an options object');
    rejectUnknownOptions(options, HERALD_OPTIONS, '');
    rejectUnknownOptions(options.stores, STORES, 'stores', { typosOnly: true });
    if (typeof options.service !== 'string' || options.service.length === 0) {
      throw new ConfigError('service', 'must be a non-empty string naming this service');
    }
    if (!options.transport || typeof options.transport.publish !== 'function') {
      throw new ConfigError(
        'transport',
        'is required: e.g. new MemoryTransport(), sqlite({ path }) or redis({ url })',
      );
    }
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    if (!Number.isFinite(this.drainTimeoutMs) || this.drainTimeoutMs < 0) {
      throw new ConfigError('drainTimeoutMs', `must be a number >= 0, got ${String(options.drainTimeoutMs)}`);
    }
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    if (!Number.isFinite(this.connectTimeoutMs) || this.connectTimeoutMs <= 0) {
      throw new ConfigError(
        'connectTimeoutMs',
        `must be a number > 0, got ${String(options.connectTimeoutMs)}`,
      );
    }
    this.service = options.service;
    this.closeResources = options.closeResources ?? true;
    this.transport = options.transport;
    this.logger = (options.logger ?? silentLogger).child({ service: this.service });
    this.codecs = new CodecRegistry([
      ...(options.codec ? [options.codec] : []),
      ...(options.codecs ?? []),
      ...Object.values(options.topicCodecs ?? {}),
    ]);
    const given = options.stores ?? {};
    this.ownStores = given.deadLetters && given.idempotency ? undefined : options.transport.defaultStores?.();
    this.eventStore = given.events;
    this.idempotency = given.idempotency ?? this.ownStores?.idempotency;
    const deadLetters = given.deadLetters ?? this.ownStores?.deadLetters;
    if (!deadLetters && options.transport.capabilities.persistent) {
      this.logger.warn(
        { transport: options.transport.name },
        'dead letters are kept in memory and lost on exit although the transport is durable: pass stores.deadLetters',
      );
    }
    this.bus = new EventBus({
      transport: this.transport,
      source: this.service,
      routing: options.routing,
      codec: options.codec,
      ...(options.topicCodecs ? { topicCodecs: options.topicCodecs } : {}),
      ...(options.wire !== undefined ? { wire: options.wire } : {}),
      eventStore: this.eventStore,
      observers: this.observers,
    });
    this.deadLetters = new DeadLetterAdmin(
      deadLetters ?? new MemoryDeadLetterStore(),
      this.transport,
      this.observers,
    );
    for (const plugin of options.plugins ?? []) this.use(plugin);
  }

  /** Adds a plugin. Consumer middleware applies to subscriptions started afterwards. */
  use(plugin: HeraldPlugin): this {
    this.plugins.push(plugin);
    if (plugin.publish) this.bus.use(plugin.publish);
    if (plugin.consume) this.consumerMiddleware.push(plugin.consume);
    const observers = plugin.observer;
    if (Array.isArray(observers)) for (const o of observers as readonly Observer[]) this.observers.add(o);
    else if (observers) this.observers.add(observers as Observer);
    return this;
  }

  /** Registers lifecycle hooks; returns a function that removes them. */
  observe(observer: Observer): () => void {
    return this.observers.add(observer);
  }

  /**
   * See {@link EventBus.publish}. With a definition the payload is its schema's input type (a field
   * with a default may be left out) and the envelope carries the parsed payload. `{ delayMs }` or
   * `{ deliverAt }` schedules the event.
   *
   * @example
   * const reminder = await herald.publish(CartReminder, { cartId }, { delayMs: 3_600_000 });
   * // ... the customer checked out within the hour:
   * await herald.cancelScheduled(CartReminder, reminder.id);
   */
  publish<D extends AnyEventDefinition>(
    event: D,
    payload: InputOf<D>,
    options?: PublishEventOptions,
  ): Promise<EnvelopeOf<D>>;
  publish<P>(event: EventRef<P>, payload: P, options?: PublishEventOptions): Promise<EventEnvelope<P>>;
  publish<P>(event: EventRef<P>, payload: P, options?: PublishEventOptions): Promise<EventEnvelope<P>> {
    return this.bus.publish(event, payload, options);
  }

  /** See {@link EventBus.publishBatch}. */
  publishBatch(items: readonly BatchItem[]): Promise<EventEnvelope[]> {
    return this.bus.publishBatch(items);
  }

  /** See {@link EventBus.cancelScheduled}. */
  cancelScheduled(event: EventRef, id: string): Promise<boolean> {
    return this.bus.cancelScheduled(event, id);
  }

  /**
   * Adds a consumer. Options are checked now (a bad option throws ConfigError naming it); it starts
   * receiving on `start()`, or at once if Herald is already started.
   */
  subscribe<P>(spec: BatchSubscribeSpec<P>): Consumer;
  subscribe<const E extends readonly (AnyEventDefinition | string)[]>(spec: TypedSubscribeSpec<E>): Consumer;
  subscribe<P>(spec: SubscribeSpec<P>): Consumer;
  subscribe<P>(given: SubscribeSpec<P> | BatchSubscribeSpec<P>): Consumer {
    const spec =
      'batch' in given && given.batch !== undefined ? batchSubscription(given) : (given as SubscribeSpec<P>);
    if (this.state === 'stopping' || this.state === 'stopped')
      throw new ConfigError('subscribe', 'Herald is stopped');
    if (!('batch' in given && given.batch !== undefined))
      rejectUnknownOptions(given, SUBSCRIBE_SPEC, 'subscribe');
    if (spec.retry) rejectUnknownOptions(spec.retry, RETRY_OPTIONS, 'retry');
    if (typeof spec.idempotency === 'object')
      rejectUnknownOptions(spec.idempotency, IDEMPOTENCY, 'idempotency');
    // A subscription can read every codec its event definitions publish with.
    for (const e of spec.events ?? []) if (typeof e !== 'string' && e.codec) this.codecs.add(e.codec);
    const consumer = new Consumer(spec as SubscribeSpec, {
      transport: this.transport,
      router: this.bus.router,
      codecs: this.codecs,
      deadLetterStore: this.deadLetters.store,
      idempotency: this.idempotency,
      observers: this.observers,
      logger: this.logger,
      middleware: this.consumerMiddleware,
    });
    this.consumerList.push(consumer);
    if (this.state === 'started')
      void consumer.start().catch((err: unknown) => this.logger.error({ err }, 'consumer failed to start'));
    return consumer;
  }

  /**
   * Reads a subscription with `for await`: each event is acknowledged when the loop asks for the
   * next, and leaving the loop releases what was not acknowledged. For scripts and tools; services
   * use {@link subscribe}. The subscription starts with the first iteration.
   *
   * @example
   * for await (const event of herald.consume({ group: 'backfill', events: [OrderPlaced] })) {
   *   await index(event.payload);
   *   if (done()) break;
   * }
   */
  consume<P>(spec: ConsumeSpec<P>): AsyncIterableIterator<EventEnvelope<P>> {
    return consumeEvents(spec, async (full) => {
      const consumer = this.subscribe(full);
      await consumer.start();
      return consumer;
    });
  }

  /**
   * Checks the broker answers (within `connectTimeoutMs`), then starts every consumer. An
   * unreachable broker rejects with an error naming it; Herald is then stopped (nothing left
   * running or connected), so create a new instance to try again.
   */
  async start(): Promise<void> {
    if (this.state !== 'created') return;
    this.state = 'started';
    const timeoutMs = this.connectTimeoutMs;
    try {
      if (this.transport.connect) await this.transport.connect({ timeoutMs });
      await bounded(
        Promise.all(this.consumerList.map((c) => c.start())),
        timeoutMs,
        () =>
          new HeraldError(
            'HERALD_START_TIMEOUT',
            `the ${this.transport.name} transport did not let the consumers subscribe within ${timeoutMs} ms (connectTimeoutMs)`,
          ),
      );
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Orderly shutdown: consumers stop fetching and drain (up to `drainTimeoutMs`), publishing stops,
   * plugins flush, then the transport and stores close. Unfinished messages are redelivered later.
   * Bounded whatever the broker does (stalled or gone): each step after the drain gets a few
   * seconds, and what it cannot settle is left to its lease, which brings the message back.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const step = <T>(what: string, work: Promise<T>, ms = STOP_STEP_MS): Promise<T | undefined> =>
      bounded(
        work,
        ms,
        () => new HeraldError('HERALD_STOP_TIMEOUT', `${what} did not finish within ${ms} ms`),
      ).catch((err: unknown) => {
        this.logger.warn({ err }, `stop: ${what} abandoned`);
        return undefined;
      });
    await step(
      'draining the consumers',
      Promise.all(this.consumerList.map((c) => c.stop(this.drainTimeoutMs))),
      this.drainTimeoutMs + STOP_STEP_MS,
    );
    this.bus.close();
    for (const plugin of this.plugins)
      await step(`plugin ${plugin.name}`, plugin.stop?.() ?? Promise.resolve());
    if (this.closeResources) {
      await step('closing the transport', this.transport.close());
      const stores = [this.deadLetters.store, this.idempotency, this.eventStore];
      await step('closing the stores', Promise.all([...new Set(stores)].map((s) => s?.close?.())));
    }
    if (this.ownStores) await step("closing the transport's stores", this.ownStores.close());
    this.state = 'stopped';
  }

  /** The consumers created by subscribe(), in order. */
  get consumers(): readonly Consumer[] {
    return this.consumerList;
  }

  /** @deprecated Use {@link consumers}: these are consumers, not transport subscriptions. */
  get subscriptions(): readonly Consumer[] {
    return this.consumerList;
  }
}

/** Creates a {@link Herald} from options; see {@link HeraldOptions}. */
export async function createHerald(options: HeraldOptions): Promise<Herald> {
  return new Herald(options);
}
