import type * as Protobuf from 'protobufjs';
import type { Codec } from '../core/codec/codec.js';
import { assertEnvelopeShape } from '../core/codec/shape.js';
import { ConfigError, DecodeError, SchemaValidationError } from '../core/errors.js';
import type { EventEnvelope } from '../core/event.js';
import { requireOptional } from './optional.js';

/**
 * The envelope on the wire: the CloudEvents-like fields as plain fields, the payload as the bytes
 * of the event's own message type. Field numbers are a wire contract: never renumber.
 */
const ENVELOPE_PROTO = `
syntax = "proto3";
package herald;
message Envelope {
  string id = 1;
  string type = 2;
  string version = 3;
  string source = 4;
  string time = 5;
  optional string aggregate_id = 6;
  optional string tenant_id = 7;
  optional string user_id = 8;
  optional string correlation_id = 9;
  optional string causation_id = 10;
  map<string, string> metadata = 11;
  bytes payload = 12;
}`;

interface WireEnvelope {
  id: string;
  type: string;
  version: string;
  source: string;
  time: string;
  aggregateId?: string;
  tenantId?: string;
  userId?: string;
  correlationId?: string;
  causationId?: string;
  metadata: Record<string, string>;
  payload: Uint8Array;
}

let envelopeType: Protobuf.Type | undefined;

function loadEnvelope(): Protobuf.Type {
  if (!envelopeType) {
    const lib = requireOptional<typeof Protobuf>('protobufjs', 'the protobuf codec');
    envelopeType = lib.parse(ENVELOPE_PROTO, { keepCase: false }).root.lookupType('herald.Envelope');
  }
  return envelopeType;
}

/** How decoded payloads are turned into plain objects (protobufjs `IConversionOptions`). */
export interface ProtobufCodecOptions {
  /** 64-bit integers as `String` (default, lossless) or `Number`. */
  readonly longs?: typeof String | typeof Number;
  /** Enums as their names (`String`, default) or numbers (`Number`). */
  readonly enums?: typeof String | typeof Number;
  /** Fill absent fields with their defaults. Default true, so handlers see every field. */
  readonly defaults?: boolean;
}

/**
 * A Protobuf codec for events whose payload is the message type `type` (a protobufjs `Type`, from
 * a `.proto` file loaded with `protobuf.load` or from generated static code's reflection). Select
 * it per event: `defineEvent('shop.order.placed', { codec: protobuf(OrderPlaced) })`. The content
 * type names the message (`application/protobuf; proto=shop.OrderPlaced`), so a topic can mix
 * JSON and several Protobuf types, and a consumer without this type dead-letters such a message
 * with reason `decode` instead of misreading it. Needs the optional package `protobufjs`.
 */
export function protobuf(type: Protobuf.Type, options: ProtobufCodecOptions = {}): Codec {
  if (typeof type?.encode !== 'function' || typeof type.decode !== 'function' || !type.fullName)
    throw new ConfigError(
      'codec',
      'protobuf() needs a protobufjs Type, e.g. root.lookupType("shop.OrderPlaced")',
    );
  const Envelope = loadEnvelope();
  const name = type.fullName.replace(/^\./, '');
  const conversion: Protobuf.IConversionOptions = {
    longs: options.longs ?? String,
    enums: options.enums ?? String,
    defaults: options.defaults ?? true,
    arrays: true,
    objects: true,
  };
  return {
    contentType: `application/protobuf; proto=${name}`,
    encode(event: EventEnvelope): Uint8Array {
      const problem = mismatch(type, event.payload, '');
      if (problem)
        throw new SchemaValidationError(event.type, [
          { message: `does not fit Protobuf message ${name}: ${problem}` },
        ]);
      const payload = type.encode(type.fromObject(event.payload as Record<string, unknown>)).finish();
      const wire: WireEnvelope = {
        id: event.id,
        type: event.type,
        version: event.version,
        source: event.source,
        time: event.time,
        metadata: { ...event.metadata },
        payload,
      };
      if (event.aggregateId !== undefined) wire.aggregateId = event.aggregateId;
      if (event.tenantId !== undefined) wire.tenantId = event.tenantId;
      if (event.userId !== undefined) wire.userId = event.userId;
      if (event.correlationId !== undefined) wire.correlationId = event.correlationId;
      if (event.causationId !== undefined) wire.causationId = event.causationId;
      return Envelope.encode(Envelope.fromObject(wire)).finish();
    },
    decode(body: Uint8Array): EventEnvelope {
      let wire: WireEnvelope;
      let payload: unknown;
      try {
        wire = Envelope.toObject(Envelope.decode(body), { defaults: false }) as WireEnvelope;
        payload = type.toObject(type.decode(wire.payload ?? new Uint8Array(0)), conversion);
      } catch (err) {
        throw new DecodeError(`body is not a Protobuf envelope of ${name}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      const { payload: _bytes, metadata, ...fields } = wire;
      return assertEnvelopeShape({ ...fields, payload, metadata: metadata ?? {} });
    },
  };
}

const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/**
 * What in `value` does not fit `type`, or undefined. Stricter than protobufjs's `fromObject`
 * (which coerces `42` into `"42"` silently) and looser than its `verify` in one way: 64-bit
 * integers may be decimal strings, the lossless form this codec decodes them to.
 */
function mismatch(type: Protobuf.Type, value: unknown, path: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return `${path || '(root)'}: object expected`;
  const record = value as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const v = record[field.name];
    if (v === undefined || v === null) continue;
    const at = path ? `${path}.${field.name}` : field.name;
    if (field.map) {
      if (typeof v !== 'object' || Array.isArray(v)) return `${at}: object (map) expected`;
      for (const [k, item] of Object.entries(v)) {
        const problem = element(field, item, `${at}.${k}`);
        if (problem) return problem;
      }
    } else if (field.repeated) {
      if (!Array.isArray(v)) return `${at}: array expected`;
      for (const [i, item] of v.entries()) {
        const problem = element(field, item, `${at}[${i}]`);
        if (problem) return problem;
      }
    } else {
      const problem = element(field, v, at);
      if (problem) return problem;
    }
  }
  return undefined;
}

function element(field: Protobuf.Field, v: unknown, at: string): string | undefined {
  const resolved = field.resolve().resolvedType;
  if (resolved && 'fieldsArray' in resolved) return mismatch(resolved, v, at);
  if (resolved && 'values' in resolved)
    return (typeof v === 'string' && v in resolved.values) || Number.isInteger(v)
      ? undefined
      : `${at}: one of ${Object.keys(resolved.values).join(', ')} expected`;
  const t = field.type;
  if (t === 'string') return typeof v === 'string' ? undefined : `${at}: string expected`;
  if (t === 'bool') return typeof v === 'boolean' ? undefined : `${at}: boolean expected`;
  if (t === 'bytes')
    return v instanceof Uint8Array || typeof v === 'string' ? undefined : `${at}: bytes expected`;
  if (t === 'double' || t === 'float') return typeof v === 'number' ? undefined : `${at}: number expected`;
  if (INT32.has(t)) return Number.isInteger(v) ? undefined : `${at}: integer expected`;
  if (INT64.has(t))
    return Number.isInteger(v) || typeof v === 'bigint' || (typeof v === 'string' && /^-?\d+$/.test(v))
      ? undefined
      : `${at}: integer or decimal string expected`;
  return undefined;
}
