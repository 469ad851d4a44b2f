import { context, propagation } from '@opentelemetry/api';
import type { Codec } from './codec/codec.js';
import { jsonCodec } from './codec/json.js';
import { ClosedError, ConfigError } from './errors.js';
import { assertEventType, type EventDefinition, type EventEnvelope, type EventOptions } from './event.js';
import { Headers } from './headers.js';
import { uuidv7 } from './ids.js';
import { compose, type Middleware } from './middleware.js';
import { Router, type RoutingRules } from './routing.js';
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
}

export type PublishMiddleware = Middleware<PublishContext>;

/** An event to publish: a definition (validated) or a bare type string (unchecked). */
export type EventRef<P = unknown> = EventDefinition<P> | string;

/** One entry of {@link EventBus.publishBatch}. */
export interface BatchItem<P = unknown> {
  readonly event: EventRef<P>;
  readonly payload: P;
  readonly options?: EventOptions;
}

export interface EventBusOptions {
  readonly transport: Transport;
  /** Name of this service; becomes every envelope's `source`. */
  readonly source: string;
  readonly routing?: RoutingRules;
  /** Default JSON. */
  readonly codec?: Codec;
  /** When set, events are appended here before they are published (the store is the source of truth). */
  readonly eventStore?: EventStore;
  readonly middleware?: readonly PublishMiddleware[];
}

/**
 * Publishes typed events: builds envelopes, validates payloads, routes types to topics, encodes, and
 * hands each topic's messages to the transport in one call.
 */
export class EventBus {
  readonly router: Router;
  private readonly transport: Transport;
  private readonly source: string;
  private readonly codec: Codec;
  private readonly eventStore: EventStore | undefined;
  private readonly middleware: PublishMiddleware[];
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
    this.eventStore = options.eventStore;
    this.middleware = [...(options.middleware ?? [])];
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
   */
  async publish<P>(event: EventRef<P>, payload: P, options?: EventOptions): Promise<EventEnvelope<P>> {
    const [envelope] = await this.publishBatch([{ event, payload, options }]);
    return envelope as EventEnvelope<P>;
  }

  /**
   * Publishes many events with one transport call per topic. Every payload is validated first: if
   * any fails, nothing is sent. Events for the same topic keep their relative order.
   */
  async publishBatch(items: readonly BatchItem[]): Promise<EventEnvelope[]> {
    if (this.closed) throw new ClosedError('EventBus');
    const envelopes = await Promise.all(items.map((item) => this.envelope(item)));
    const byTopic = new Map<string, EventEnvelope[]>();
    for (const e of envelopes) {
      const topic = this.router.topicFor(e.type);
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(e);
    }
    if (this.eventStore) await this.eventStore.append(envelopes);
    await Promise.all(
      [...byTopic].map(([topic, events]) =>
        this.send({ topic, events, messages: events.map((e) => this.toMessage(e)) }),
      ),
    );
    return envelopes;
  }

  /** Stops accepting publishes. The transport is closed by its owner, not here. */
  close(): void {
    this.closed = true;
  }

  private buildChain(): (ctx: PublishContext) => Promise<void> {
    return compose(this.middleware, (ctx) => this.transport.publish(ctx.topic, ctx.messages as Message[]));
  }

  private async envelope(item: BatchItem): Promise<EventEnvelope> {
    const { event, options = {} } = item;
    let type: string;
    let version: string;
    let payload: unknown;
    if (typeof event === 'string') {
      assertEventType(event);
      type = event;
      version = 'v1';
      payload = item.payload;
    } else {
      type = event.type;
      version = event.version;
      payload = await event.parse(item.payload);
    }
    const time =
      options.time instanceof Date ? options.time.toISOString() : (options.time ?? new Date().toISOString());
    return stripUndefined({
      id: options.id ?? uuidv7(),
      type,
      version,
      source: this.source,
      aggregateId: options.aggregateId,
      tenantId: options.tenantId,
      userId: options.userId,
      time,
      payload,
      metadata: { ...options.metadata },
      correlationId: options.correlationId,
      causationId: options.causationId,
    });
  }

  private toMessage(e: EventEnvelope): PublishContext['messages'][number] {
    const headers: Record<string, string> = {
      [Headers.contentType]: this.codec.contentType,
      [Headers.eventType]: e.type,
      [Headers.eventVersion]: e.version,
      [Headers.source]: e.source,
    };
    if (e.tenantId !== undefined) headers[Headers.tenantId] = e.tenantId;
    if (e.correlationId !== undefined) headers[Headers.correlationId] = e.correlationId;
    // A no-op unless an OpenTelemetry propagator is registered; the tracing middleware adds the span's own context.
    propagation.inject(context.active(), headers);
    const message = { id: e.id, headers, body: this.codec.encode(e) };
    return e.aggregateId === undefined ? message : { ...message, key: e.aggregateId };
  }
}

function stripUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
