import { DecodeError } from './errors.js';
import type { EventEnvelope } from './event.js';

/**
 * Lossless mapping between Herald envelopes and CloudEvents 1.0.
 *
 * | envelope       | CloudEvents attribute |
 * |----------------|-----------------------|
 * | id, type, source, time | same name      |
 * | payload        | data (JSON)           |
 * | aggregateId    | subject               |
 * | version        | `eventversion`        |
 * | tenantId, userId, correlationId, causationId | `tenantid`, `userid`, `correlationid`, `causationid` |
 * | metadata       | `metadata` (JSON string: extension values must be primitives) |
 */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time?: string;
  subject?: string;
  datacontenttype?: string;
  data?: unknown;
  [extension: string]: unknown;
}

const EXTENSIONS = {
  tenantId: 'tenantid',
  userId: 'userid',
  correlationId: 'correlationid',
  causationId: 'causationid',
} as const;

/** Structured mode: one JSON object holding attributes and data. */
export function toCloudEvent(event: EventEnvelope): CloudEvent {
  const ce: CloudEvent = {
    specversion: '1.0',
    id: event.id,
    source: event.source,
    type: event.type,
    time: event.time,
    datacontenttype: 'application/json',
    eventversion: event.version,
    data: event.payload,
  };
  if (event.aggregateId !== undefined) ce.subject = event.aggregateId;
  for (const [field, ext] of Object.entries(EXTENSIONS)) {
    const value = event[field as keyof typeof EXTENSIONS];
    if (value !== undefined) ce[ext] = value;
  }
  if (Object.keys(event.metadata).length > 0) ce.metadata = JSON.stringify(event.metadata);
  return ce;
}

/** Accepts a structured-mode CloudEvent (object or JSON text) from any producer. */
export function fromCloudEvent(input: CloudEvent | string): EventEnvelope {
  let ce: Record<string, unknown>;
  try {
    ce = typeof input === 'string' ? (JSON.parse(input) as Record<string, unknown>) : input;
  } catch (err) {
    throw new DecodeError(`CloudEvent is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (ce.specversion !== '1.0')
    throw new DecodeError(`unsupported CloudEvents specversion ${String(ce.specversion)}`);
  for (const required of ['id', 'source', 'type'] as const) {
    if (typeof ce[required] !== 'string')
      throw new DecodeError(`CloudEvent attribute "${required}" is missing`);
  }
  let metadata: Record<string, string> = {};
  if (typeof ce.metadata === 'string') {
    try {
      metadata = JSON.parse(ce.metadata) as Record<string, string>;
    } catch {
      throw new DecodeError('CloudEvent extension "metadata" is not a JSON object');
    }
  }
  let payload = ce.data;
  if (payload === undefined && typeof ce.data_base64 === 'string') {
    payload = JSON.parse(Buffer.from(ce.data_base64, 'base64').toString('utf8'));
  }
  const envelope: Record<string, unknown> = {
    id: ce.id,
    type: ce.type,
    version: typeof ce.eventversion === 'string' ? ce.eventversion : 'v1',
    source: ce.source,
    time: typeof ce.time === 'string' ? ce.time : new Date().toISOString(),
    payload,
    metadata,
  };
  if (typeof ce.subject === 'string') envelope.aggregateId = ce.subject;
  for (const [field, ext] of Object.entries(EXTENSIONS)) {
    if (typeof ce[ext] === 'string') envelope[field] = ce[ext];
  }
  return envelope as unknown as EventEnvelope;
}

/** Binary mode: attributes as `ce-*` headers (HTTP/Kafka bindings), data as the body. */
export function toBinaryCloudEvent(event: EventEnvelope): {
  headers: Record<string, string>;
  body: Uint8Array;
} {
  const { data, datacontenttype, ...attributes } = toCloudEvent(event);
  const headers: Record<string, string> = { 'content-type': datacontenttype ?? 'application/json' };
  for (const [name, value] of Object.entries(attributes))
    headers[`ce-${name}`] = percentEncode(String(value));
  return { headers, body: new TextEncoder().encode(JSON.stringify(data ?? null)) };
}

/** Reads a binary-mode CloudEvent; header names are matched case-insensitively. */
export function fromBinaryCloudEvent(
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
): EventEnvelope {
  const ce: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith('ce-')) ce[lower.slice(3)] = decodeURIComponent(value);
  }
  let data: unknown;
  try {
    data = body.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(body));
  } catch (err) {
    throw new DecodeError(`CloudEvent data is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return fromCloudEvent({ ...(ce as unknown as CloudEvent), data });
}

// The HTTP binding asks for percent-encoding of non-printable ASCII, space, '"' and '%'.
function percentEncode(value: string): string {
  return value.replace(/[^\x21\x23-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}
