import { jsonCodec } from '../core/codec/json.js';
import { encodeMessage } from '../core/codec/wire.js';
import { ConfigError } from '../core/errors.js';
import { assertEventType, type EventEnvelope } from '../core/event.js';
import { uuidv7 } from '../core/ids.js';
import type { Message } from '../transport/transport.js';

/** An event to put in the outbox: what `herald.publish` takes, plus its topic. */
export interface OutboxEvent {
  /** Topic the relay publishes to (with routing rules this is what `router.topicFor(type)` gives). */
  readonly topic: string;
  readonly type: string;
  readonly payload: unknown;
  /** Ordering key: the relay keeps the order of one aggregate's events. */
  readonly aggregateId?: string;
  /** Default: a new UUIDv7. Consumers deduplicate redeliveries by it. */
  readonly id?: string;
  /** Default `v1`. */
  readonly version?: string;
  readonly tenantId?: string;
  readonly userId?: string;
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Default: now. */
  readonly time?: Date | string;
}

/** A row to write: the topic and the message exactly as the relay will publish it. */
export interface OutboxRecord {
  readonly topic: string;
  readonly message: Message;
}

/**
 * Builds the envelope and message of an outbox event as `herald.publish` does with
 * `wire: 'structured'` (JSON codec, the same headers): consumers handle it like a direct event.
 */
export function outboxRecord(source: string, event: OutboxEvent): OutboxRecord {
  if (typeof event !== 'object' || event === null) throw new ConfigError('event', 'must be an object');
  if (typeof event.topic !== 'string' || event.topic.length === 0)
    throw new ConfigError('event.topic', 'must be a non-empty string');
  assertEventType(event.type, 'event.type');
  const e: { -readonly [K in keyof EventEnvelope]?: EventEnvelope[K] } = {
    id: event.id ?? uuidv7(),
    type: event.type,
    version: event.version ?? 'v1',
    source,
  };
  if (event.aggregateId !== undefined) e.aggregateId = event.aggregateId;
  if (event.tenantId !== undefined) e.tenantId = event.tenantId;
  if (event.userId !== undefined) e.userId = event.userId;
  e.time = event.time instanceof Date ? event.time.toISOString() : (event.time ?? new Date().toISOString());
  e.payload = event.payload;
  e.metadata = { ...event.metadata };
  if (event.correlationId !== undefined) e.correlationId = event.correlationId;
  if (event.causationId !== undefined) e.causationId = event.causationId;
  // Structured layout (ADR 0010): every consumer version reads it, so rows written before an
  // upgrade of the consumers stay readable whatever the relay's version.
  const message: Message = encodeMessage(e as EventEnvelope, jsonCodec, 'structured');
  return { topic: event.topic, message };
}
