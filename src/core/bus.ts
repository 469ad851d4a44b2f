import { ClosedError, ConfigError, toError } from '../contracts/errors.js';
import type { Middleware } from '../contracts/middleware.js';
import type { Codec } from './codec/codec.js';
import { jsonCodec } from './codec/json.js';
import { encodeMessage, type WireMode } from './codec/wire.js';
import { compose } from './compose.js';
import {
  assertEventType,
  parsePayload,
  type AnyEventDefinition,
  type EnvelopeOf,
  type EventDefinition,
  type InputOf,
  type EventEnvelope,
  type EventOptions,
} from './event.js';
import type { Observers } from './observer.js';
import { isoNow, uuidv7 } from './ids.js';
import { rejectUnknownOptions, type KnownKeys } from './options.js';
import { Router, type RoutingRules } from './routing.js';
import { deliveryTime, ScheduledPublishUnsupportedError, type ScheduleOptions } from './schedule.js';
import type { EventStore } from '../store/event-store.js';
import type { Message, Transport } from '../transport/transport.js';

/** What publish middleware sees: one transport call's worth of events, all for one topic. */
export interface PublishContext {
  readonly topic: string;
  readonly events: readonly EventEnvelope[];
  /** Outgoing messages, parallel to `events`; middleware may add headers (e.g. trace context). */
  readonly messages: readonly {
    readonly id: string;
    readonly key?: string;
    headers: Record<string, string>;
    body: Uint8Array;
  }[];
  /** Set for a scheduled publish: when the transport delivers these messages (epoch ms). */
  readonly deliverAt?: number;
}

/** The options of one published event: its envelope fields and, optionally, when to deliver it. */
export interface PublishEventOptions extends EventOptions, ScheduleOptions {}

export type PublishMiddleware = Middleware<PublishContext>;

/** An event to publish: a definition (validated) or a bare type string (unchecked). */
export type EventRef<P = unknown> = EventDefinition<P> | string;

/** One entry of {@link EventBus.publishBatch}. */
export interface BatchItem<P = unknown> {
  readonly event: EventRef<P>;
  readonly payload: P;
  readonly options?: PublishEventOptions;
}

export interface EventBusOptions {
  readonly transport: Transport;
  /** Name of this service; becomes every envelope's `source`. */
  readonly source: string;
  readonly routing?: RoutingRules;
  /** Default JSON. */
  readonly codec?: Codec;
  /**
   * Codecs by topic (e.g. compression for a high-volume topic). An event definition's own codec
   * wins over its topic's; both win over `codec`.
   */
  readonly topicCodecs?: Readonly<Record<string, Codec>>;
  /** When set, events are appended here before they are published (the store is the source of truth). */
  readonly eventStore?: EventStore;
  readonly middleware?: readonly PublishMiddleware[];
  /** Told of each transport call's outcome (`onPublished`, `onPublishFailed`), timed around the middleware. */
  readonly observers?: Observers;
  /**
   * Message layout (ADR 0010): `binary` (default) puts the envelope's fields in headers and only the
   * payload in the body; `structured` writes the whole envelope as the body, which consumers on
   * Herald versions before ADR 0010 need during a rolling upgrade.
   */
  readonly wire?: WireMode;
}

const EVENT_OPTIONS: KnownKeys<PublishEventOptions> = {
  id: true,
  aggregateId: true,
  tenantId: true,
  userId: true,
  time: true,
  metadata: true,
  correlationId: true,
  causationId: true,
  delayMs: true,
  deliverAt: true,
};

/**
 * Publishes typed events: builds envelopes, validates payloads, routes types to topics, encodes, and
 * hands each topic's messages to the transport in one call.
 */
export class EventBus {
  readonly router: Router;
  private readonly transport: Transport;
  private readonly source: string;
  private readonly codec: Codec;
  private readonly topicCodecs: Map<string, Codec> | undefined;
  /** Codecs of the event definitions published so far that have their own. */
  private readonly typeCodecs = new Map<string, Codec>();
  private readonly eventStore: EventStore | undefined;
  private readonly middleware: PublishMiddleware[];
  private readonly observers: Observers | undefined;
  private readonly wire: WireMode;
  private send: (ctx: PublishContext) => Promise<void>;
  private closed = false;

  constructor(options: EventBusOptions) {
    if (!options.transport) throw new ConfigError('transport', 'is required');
    if (typeof options.source !== 'string' || options.source.length === 0) {
      throw new ConfigError('service', 'must be a non-empty string naming this service');
    }
    this.transport = options.transport;
    this.source = options.source;
    this.router = new Router(options.routing);
    this.codec = options.codec ?? jsonCodec;
    const topicCodecs = Object.entries(options.topicCodecs ?? {});
    this.topicCodecs = topicCodecs.length > 0 ? new Map(topicCodecs) : undefined;
    this.eventStore = options.eventStore;
    this.middleware = [...(options.middleware ?? [])];
    this.observers = options.observers;
    if (options.wire !== undefined && options.wire !== 'binary' && options.wire !== 'structured')
      throw new ConfigError('wire', `must be "binary" or "structured", got ${JSON.stringify(options.wire)}`);
    this.wire = options.wire ?? 'binary';
    this.send = this.buildChain();
  }

  /** Adds publish middleware (outermost first). */
  use(middleware: PublishMiddleware): this {
    this.middleware.push(middleware);
    this.send = this.buildChain();
    return this;
  }

  /**
   * Publishes one event and resolves with its envelope once the transport has it durably.
   * A payload that fails its schema throws SchemaValidationError and nothing is sent.
   * With `delayMs` or `deliverAt` the transport holds the event until then (ScheduledPublishUnsupportedError
   * on a transport that cannot); keep the envelope's `id` to {@link cancelScheduled} it.
   */
  publish<D extends AnyEventDefinition>(
    event: D,
    payload: InputOf<D>,
    options?: PublishEventOptions,
  ): Promise<EnvelopeOf<D>>;
  publish<P>(event: EventRef<P>, payload: P, options?: PublishEventOptions): Promise<EventEnvelope<P>>;
  publish<P>(event: EventRef<P>, payload: P, options?: PublishEventOptions): Promise<EventEnvelope<P>> {
    // The one-event path skips the batch bookkeeping: it is the common call and runs per event.
    try {
      if (this.closed) throw new ClosedError('EventBus');
      // The clock is read only for a schedule; the envelope's id and time read it once more.
      const at =
        options === undefined || (options.delayMs === undefined && options.deliverAt === undefined)
          ? undefined
          : this.deliveryTime(options, Date.now());
      const envelope = this.envelope(event, payload, options);
      const sent =
        envelope instanceof Promise ? envelope.then((e) => this.sendOne(e, at)) : this.sendOne(envelope, at);
      return sent as Promise<EventEnvelope<P>>;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Publishes many events with one transport call per topic (and per delivery time, for items
   * with `delayMs`/`deliverAt`, all measured from this call). Every payload and option is
   * validated first: if any fails, nothing is sent. Events for the same topic and time keep their
   * relative order.
   */
  async publishBatch(items: readonly BatchItem[]): Promise<EventEnvelope[]> {
    if (this.closed) throw new ClosedError('EventBus');
    const now = Date.now();
    const times = items.map((item) =>
      item.options === undefined ? undefined : this.deliveryTime(item.options, now),
    );
    const envelopes = await this.envelopes(items);
    if (this.eventStore) await this.eventStore.append(envelopes);
    const calls = new Map<string, { topic: string; at: number | undefined; events: EventEnvelope[] }>();
    envelopes.forEach((e, i) => {
      const topic = this.router.topicFor(e.type);
      const at = times[i];
      const id = at === undefined ? topic : `${topic}\u0000${at}`;
      let call = calls.get(id);
      if (!call) calls.set(id, (call = { topic, at, events: [] }));
      call.events.push(e);
    });
    const sends: Promise<void>[] = [];
    for (const { topic, at, events } of calls.values()) sends.push(this.sendTopic(topic, events, at));
    await (sends.length === 1 ? sends[0] : Promise.all(sends));
    return envelopes;
  }

  /**
   * Cancels a scheduled publish that has not come due. `event` is the definition or type that was
   * published (it gives the topic), `id` the id of the envelope `publish` resolved with. Resolves
   * true when the event was removed and will never be delivered; false when it is unknown, already
   * delivered (or entering its topic right now) or already cancelled.
   */
  async cancelScheduled(event: EventRef, id: string): Promise<boolean> {
    if (this.closed) throw new ClosedError('EventBus');
    const type = typeof event === 'string' ? event : event?.type;
    assertEventType(type, 'event');
    if (typeof id !== 'string' || id.length === 0)
      throw new ConfigError('id', 'must be the non-empty id of the published event');
    if (!this.transport.capabilities.scheduledPublish || !this.transport.cancelScheduled)
      throw new ScheduledPublishUnsupportedError(this.transport.name);
    return (await this.transport.cancelScheduled(this.router.topicFor(type), [id])) > 0;
  }

  /** Stops accepting publishes. The transport is closed by its owner, not here. */
  close(): void {
    this.closed = true;
  }

  /** The delivery time the options ask for, refused up front on a transport that cannot schedule. */
  private deliveryTime(options: ScheduleOptions, now: number): number | undefined {
    const at = deliveryTime(options, now);
    if (at !== undefined && !this.transport.capabilities.scheduledPublish)
      throw new ScheduledPublishUnsupportedError(this.transport.name);
    return at;
  }

  /** Not async, and no await: each promise is paid per event (see `Consumer.run`). May throw synchronously. */
  private sendOne(envelope: EventEnvelope, at: number | undefined): Promise<EventEnvelope> {
    const topic = this.router.topicFor(envelope.type);
    const events = [envelope];
    if (this.eventStore)
      return this.eventStore
        .append(events)
        .then(() => this.sendTopic(topic, events, at))
        .then(() => envelope);
    const ctx = this.context(topic, events, at);
    const observers = this.observed();
    if (observers === undefined) return this.send(ctx).then(() => envelope);
    // The observers are told from the one reaction this publish needs anyway (resolving with the
    // envelope), not from a `then` of their own: a promise and a reaction less per publish (ADR 0409).
    const started = this.started(observers);
    return this.send(ctx).then(
      () => {
        this.published(observers, ctx, started);
        return envelope;
      },
      (err: unknown) => this.publishFailed(observers, ctx, err),
    );
  }

  private sendTopic(topic: string, events: EventEnvelope[], at?: number): Promise<void> {
    const ctx = this.context(topic, events, at);
    const observers = this.observed();
    if (observers === undefined) return this.send(ctx);
    const started = this.started(observers);
    return this.send(ctx).then(
      () => this.published(observers, ctx, started),
      (err: unknown) => this.publishFailed(observers, ctx, err),
    );
  }

  /** The transport call's context, its messages encoded; may throw (an encoding failure). */
  private context(topic: string, events: EventEnvelope[], at: number | undefined): PublishContext {
    const codec = this.topicCodecs?.get(topic) ?? this.codec;
    // A loop rather than events.map: no closure per publish.
    const messages: PublishContext['messages'][number][] = new Array(events.length);
    for (let i = 0; i < events.length; i++) messages[i] = this.toMessage(events[i]!, codec);
    return at === undefined ? { topic, events, messages } : { topic, events, messages, deliverAt: at };
  }

  /** The observers, when one listens for the outcome of a transport call (`onPublished`, `onPublishFailed`). */
  private observed(): Observers | undefined {
    const observers = this.observers;
    return observers === undefined ||
      (observers.listeners.onPublished === undefined && observers.listeners.onPublishFailed === undefined)
      ? undefined
      : observers;
  }

  /**
   * When the transport call starts, for `onPublished`'s duration; the clock (≈ 490 instructions a
   * read, ADR 0408) is read only when an observer takes durations, -1 otherwise.
   */
  private started(observers: Observers): number {
    return observers.listeners.onPublished !== undefined ? performance.now() : -1;
  }

  /** One added while the call was in flight (`started` is -1) is told a duration of 0. */
  private published(observers: Observers, ctx: PublishContext, started: number): void {
    if (observers.listeners.onPublished === undefined) return;
    observers.emit('onPublished', {
      topic: ctx.topic,
      events: ctx.events,
      durationMs: started < 0 ? 0 : performance.now() - started,
    });
  }

  private publishFailed(observers: Observers, ctx: PublishContext, err: unknown): never {
    observers.emit('onPublishFailed', { topic: ctx.topic, events: ctx.events, error: toError(err) });
    throw err;
  }

  /** Builds every envelope; waits only when some schema validates asynchronously. */
  private envelopes(items: readonly BatchItem[]): EventEnvelope[] | Promise<EventEnvelope[]> {
    const envelopes: EventEnvelope[] = new Array<EventEnvelope>(items.length);
    let pending: Promise<void>[] | undefined;
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        const e = this.envelope(item.event, item.payload, item.options);
        if (e instanceof Promise) (pending ??= []).push(e.then((v) => void (envelopes[i] = v)));
        else envelopes[i] = e;
      }
    } catch (err) {
      // Keep the already started validations from surfacing as unhandled rejections.
      if (pending) void Promise.allSettled(pending);
      throw err;
    }
    return pending ? Promise.all(pending).then(() => envelopes) : envelopes;
  }

  private buildChain(): (ctx: PublishContext) => Promise<void> {
    return compose(this.middleware, (ctx) =>
      ctx.deliverAt === undefined
        ? this.transport.publish(ctx.topic, ctx.messages as Message[])
        : this.transport.publish(ctx.topic, ctx.messages as Message[], { deliverAt: ctx.deliverAt }),
    );
  }

  /** Throws at once for a malformed type; returns a promise only when the schema is asynchronous. */
  private envelope(
    event: EventRef,
    given: unknown,
    options: PublishEventOptions | undefined,
  ): EventEnvelope | Promise<EventEnvelope> {
    if (typeof event === 'string') {
      assertEventType(event);
      return this.build(event, 'v1', given, options);
    }
    if (event.codec !== undefined && this.typeCodecs.get(event.type) !== event.codec)
      this.typeCodecs.set(event.type, event.codec);
    const payload = parsePayload(event, given);
    return payload instanceof Promise
      ? payload.then((p) => this.build(event.type, event.version, p, options))
      : this.build(event.type, event.version, payload, options);
  }

  /** `options` may carry the schedule fields too: they are checked here and read by the caller. */
  private build(
    type: string,
    version: string,
    payload: unknown,
    options: PublishEventOptions = {},
  ): EventEnvelope {
    rejectUnknownOptions(options, EVENT_OPTIONS, 'publish options');
    // One clock read for the id and the time when both are minted here.
    const now = options.id === undefined || options.time === undefined ? Date.now() : 0;
    // Built by appending only the fields that are set (not by deleting undefined ones), so every
    // envelope keeps a fast object shape for the codec and the handlers.
    const e: { -readonly [K in keyof EventEnvelope]?: EventEnvelope[K] } = {
      id: options.id ?? uuidv7(now),
      type,
      version,
      source: this.source,
    };
    if (options.aggregateId !== undefined) e.aggregateId = options.aggregateId;
    if (options.tenantId !== undefined) e.tenantId = options.tenantId;
    if (options.userId !== undefined) e.userId = options.userId;
    e.time = options.time instanceof Date ? options.time.toISOString() : (options.time ?? isoNow(now));
    e.payload = payload;
    e.metadata = options.metadata === undefined ? {} : { ...options.metadata };
    if (options.correlationId !== undefined) e.correlationId = options.correlationId;
    if (options.causationId !== undefined) e.causationId = options.causationId;
    return e as EventEnvelope;
  }

  private toMessage(e: EventEnvelope, topicCodec: Codec): PublishContext['messages'][number] {
    const codec = (this.typeCodecs.size > 0 && this.typeCodecs.get(e.type)) || topicCodec;
    return encodeMessage(e, codec, this.wire);
  }
}
