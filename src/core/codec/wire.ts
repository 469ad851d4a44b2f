import { Headers } from '../../contracts/headers.js';
import type { Message } from '../../contracts/message.js';
import { DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';
import type { Codec } from './codec.js';
import { jsonCodec } from './json.js';

/*
 * The wire layout of an event (ADR 0010). Binary mode, what Herald publishes with a codec that
 * has `encodePayload` (JSON and its compressed variants): the envelope's fields are headers and
 * the body is the payload alone, so publishing is one encode of the payload and consuming one
 * decode. Structured mode, what every Herald version before wrote (and what codecs without
 * `encodePayload`, such as Protobuf, still write): the whole envelope is the body. A message is
 * binary exactly when it has the `event-id` header; both are read, whatever the consumer's version
 * of the producer.
 */

/** Which layout a publisher writes: `binary` (default) or `structured` (the layout before ADR 0010). */
export type WireMode = 'binary' | 'structured';

/** The message of an envelope, as the bus hands it to the transport. */
export function encodeMessage(
  e: EventEnvelope,
  codec: Codec,
  mode: WireMode = 'binary',
): { id: string; key?: string; headers: Record<string, string>; body: Uint8Array } {
  let headers: Record<string, string>;
  let body: Uint8Array;
  if (mode === 'binary' && codec.encodePayload !== undefined) {
    if (e.tenantId === undefined && e.correlationId === undefined) {
      // The usual event, as one literal with constant keys (the names of `Headers`), in the order
      // the general path below writes them: V8 makes it from a template, and with the aggregate id
      // inside it every field is in the object itself. Built header by header, the object needed
      // a second, out-of-object property array, and so did the copy a transport keeps of it.
      headers =
        e.aggregateId === undefined
          ? {
              'content-type': codec.contentType,
              'event-type': e.type,
              'event-version': e.version,
              'event-source': e.source,
              'event-id': e.id,
              'event-time': e.time,
            }
          : {
              'content-type': codec.contentType,
              'event-type': e.type,
              'event-version': e.version,
              'event-source': e.source,
              'event-id': e.id,
              'event-time': e.time,
              'aggregate-id': e.aggregateId,
            };
    } else {
      headers = commonHeaders(e, codec);
      headers[Headers.eventId] = e.id;
      headers[Headers.time] = e.time;
      if (e.aggregateId !== undefined) headers[Headers.aggregateId] = e.aggregateId;
    }
    if (e.userId !== undefined) headers[Headers.userId] = e.userId;
    if (e.causationId !== undefined) headers[Headers.causationId] = e.causationId;
    // for-in rather than Object.keys: no array for the usual empty metadata.
    for (const _ in e.metadata) {
      headers[Headers.metadata] = JSON.stringify(e.metadata);
      break;
    }
    body = codec.encodePayload(e.payload);
  } else {
    headers = commonHeaders(e, codec);
    body = codec.encode(e);
  }
  return e.aggregateId === undefined
    ? { id: e.id, headers, body }
    : { id: e.id, key: e.aggregateId, headers, body };
}

/** The headers of both layouts. Trace context is written by the tracing middleware of herald/observability, and only there. */
function commonHeaders(e: EventEnvelope, codec: Codec): Record<string, string> {
  const headers: Record<string, string> = {
    [Headers.contentType]: codec.contentType,
    [Headers.eventType]: e.type,
    [Headers.eventVersion]: e.version,
    [Headers.source]: e.source,
  };
  if (e.tenantId !== undefined) headers[Headers.tenantId] = e.tenantId;
  if (e.correlationId !== undefined) headers[Headers.correlationId] = e.correlationId;
  return headers;
}

/** True when the message is in binary mode: envelope fields in headers, the payload as the body. */
export function isBinaryMessage(headers: Readonly<Record<string, string>>): boolean {
  return headers[Headers.eventId] !== undefined;
}

/**
 * The envelope of a message in either layout. `codec` is the one its `content-type` names. Throws
 * DecodeError when the headers or the body are not a valid event.
 */
export function decodeMessage(codec: Codec, message: Pick<Message, 'headers' | 'body'>): EventEnvelope {
  const { headers } = message;
  // A binary message read by a codec without payload decoding falls back to the body alone.
  if (headers[Headers.eventId] === undefined || codec.decodePayload === undefined)
    return codec.decode(message.body);
  return envelopeFromHeaders(headers, codec.decodePayload(message.body));
}

/** Builds the envelope of a binary-mode message from its headers and decoded payload. */
export function envelopeFromHeaders(
  headers: Readonly<Record<string, string>>,
  payload: unknown,
): EventEnvelope {
  // Each header is read at a site of its own: one loop over the names made the read megamorphic
  // (a keyed load that sees five names), a stub-cache probe per field per message.
  const id = required(headers[Headers.eventId], 'id', Headers.eventId);
  const type = required(headers[Headers.eventType], 'type', Headers.eventType);
  const version = required(headers[Headers.eventVersion], 'version', Headers.eventVersion);
  const source = required(headers[Headers.source], 'source', Headers.source);
  const time = required(headers[Headers.time], 'time', Headers.time);
  // Fields are added in the order the bus builds envelopes, so both have one object shape.
  const e: { -readonly [K in keyof EventEnvelope]?: EventEnvelope[K] } = { id, type, version, source };
  const aggregateId = headers[Headers.aggregateId];
  if (aggregateId !== undefined) e.aggregateId = aggregateId;
  const tenantId = headers[Headers.tenantId];
  if (tenantId !== undefined) e.tenantId = tenantId;
  const userId = headers[Headers.userId];
  if (userId !== undefined) e.userId = userId;
  e.time = time;
  e.payload = payload;
  const metadata = headers[Headers.metadata];
  e.metadata = metadata === undefined ? {} : parseMetadata(metadata);
  const correlationId = headers[Headers.correlationId];
  if (correlationId !== undefined) e.correlationId = correlationId;
  const causationId = headers[Headers.causationId];
  if (causationId !== undefined) e.causationId = causationId;
  return e as EventEnvelope;
}

/** A required envelope field's header: a non-empty string, or DecodeError. */
function required(value: unknown, field: string, header: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new DecodeError(`envelope field "${field}" (header "${header}") must be a non-empty string`);
  return value;
}

function parseMetadata(text: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`header "${Headers.metadata}" is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new DecodeError(`header "${Headers.metadata}" must be a JSON object of strings`);
  for (const v of Object.values(value))
    if (typeof v !== 'string')
      throw new DecodeError(`header "${Headers.metadata}" must be a JSON object of strings`);
  return value as Record<string, string>;
}

/**
 * The envelope of a JSON-coded message in either layout, for tools that show or edit stored
 * messages (the console, `herald dlq show`); undefined when the message is not JSON (another
 * codec, compressed, not UTF-8 JSON, or not an envelope).
 */
export function jsonEnvelopeOf(message: Pick<Message, 'headers' | 'body'>): EventEnvelope | undefined {
  const type = message.headers[Headers.contentType];
  if (type !== undefined && type !== jsonCodec.contentType) return undefined;
  try {
    return decodeMessage(jsonCodec, message);
  } catch {
    return undefined;
  }
}

/**
 * The message again with another payload, in the layout it had: for edit-and-replay of a
 * JSON-coded message (see {@link jsonEnvelopeOf}). Headers are kept as they were; `extraHeaders`
 * are added.
 */
export function withJsonPayload<M extends Pick<Message, 'headers' | 'body'>>(
  message: M,
  payload: unknown,
  extraHeaders: Readonly<Record<string, string>> = {},
): M {
  const headers = { ...message.headers, ...extraHeaders };
  if (isBinaryMessage(message.headers))
    return { ...message, headers, body: jsonCodec.encodePayload!(payload) };
  // Structured: the body's own fields are kept as they are, whatever else they hold.
  const envelope = jsonCodec.decodePayload!(message.body);
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope))
    throw new DecodeError('the message body is not a JSON envelope');
  return { ...message, headers, body: jsonCodec.encodePayload!({ ...envelope, payload }) };
}
