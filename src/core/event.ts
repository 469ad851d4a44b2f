import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ConfigError, SchemaValidationError } from '../contracts/errors.js';
import type { Codec } from './codec/codec.js';
import { checkUpcasters, type Upcaster } from './upcast.js';

import type { EventEnvelope } from '../contracts/envelope.js';

export type { EventEnvelope, EventOptions } from '../contracts/envelope.js';

/**
 * A typed event: its name, version and payload schema. Create with {@link defineEvent}. `P` is the
 * payload handlers receive (the schema's output), `T` the type as a literal, `I` what publishers
 * pass (the schema's input: a field with a default may be left out); `unknown` means "same as `P`".
 */
export interface EventDefinition<P = unknown, T extends string = string, I = unknown> {
  readonly type: T;
  /** The current version: the one published, and the one handlers receive. */
  readonly version: string;
  readonly schema?: StandardSchemaV1<I, P>;
  /**
   * The codec this event is published with (default: the Herald's codec). Consumers that subscribe
   * to the definition can read it.
   */
  readonly codec?: Codec;
  /** Steps that turn older versions into the current one, checked when the event is defined. */
  readonly upcasters?: readonly Upcaster[];
  /** Validates a payload, returning the (possibly transformed) value or throwing SchemaValidationError. */
  parse(payload: unknown): Promise<P>;
}

/** Extracts the payload type of an {@link EventDefinition}. */
export type PayloadOf<D> = D extends EventDefinition<infer P> ? P : never;

/** Any event definition, whatever its payload, type literal or input. */
export type AnyEventDefinition = EventDefinition<any, string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What `publish` takes for an {@link EventDefinition}: its schema's input type (defaults optional). */
export type InputOf<D> =
  D extends EventDefinition<infer P, string, infer I> ? (unknown extends I ? P : I) : never;

/**
 * The envelope a handler receives for an event reference: for a definition, its payload with `type`
 * as a literal; for a type string or pattern, an unchecked payload. Distributes over unions, so the
 * refs of a subscription give a union discriminated by `type`.
 */
export type EnvelopeOf<R> =
  R extends EventDefinition<infer P, infer T, any> // eslint-disable-line @typescript-eslint/no-explicit-any
    ? EventEnvelope<P, T>
    : EventEnvelope;

const TYPE_PATTERN = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;

/** Throws ConfigError unless `type` is `<domain>.<entity>[.<action>...]` in lowercase. */
export function assertEventType(type: string, field = 'type'): void {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new ConfigError(
      field,
      `event type must look like <domain>.<entity>.<action> (lowercase letters, digits, '_' or '-', dot-separated), got ${JSON.stringify(type)}`,
    );
  }
}

/** Where {@link defineEvent} keeps a parse that answers without a promise when the schema is synchronous. */
const SYNC_PARSE = Symbol('herald.parse');

/**
 * Declares an event type with its payload schema. Any Standard Schema validator works
 * (zod 4, valibot, arktype, ...); without a schema the payload is passed through unchecked.
 *
 * Older versions are declared by upcasters (`v1 → v2 → v3`); every older version must reach the
 * current one, or this throws ConfigError naming the missing link. See docs/events.md.
 *
 * @example
 * const MessageSent = defineEvent('conversation.message.sent', {
 *   version: 'v2',
 *   schema: z.object({ conversationId: z.string(), text: z.string(), lang: z.string() }),
 *   upcasters: [upcaster('v1', 'v2', (p: { conversationId: string; text: string }) => ({ ...p, lang: 'und' }))],
 * });
 */
export function defineEvent<P = unknown, T extends string = string, I = unknown>(
  type: T,
  options: {
    version?: string;
    schema?: StandardSchemaV1<I, P>;
    codec?: Codec;
    upcasters?: readonly Upcaster[];
  } = {},
): EventDefinition<P, T, I> {
  assertEventType(type);
  const version = options.version ?? 'v1';
  if (typeof version !== 'string' || version.length === 0) {
    throw new ConfigError('version', `must be a non-empty string, got ${JSON.stringify(version)}`);
  }
  const schema = options.schema;
  if (schema !== undefined && typeof schema?.['~standard']?.validate !== 'function') {
    throw new ConfigError(
      'schema',
      'must implement Standard Schema (an object with a `~standard.validate` function)',
    );
  }
  const codec = options.codec;
  if (codec !== undefined && (typeof codec?.encode !== 'function' || typeof codec.contentType !== 'string'))
    throw new ConfigError(
      'codec',
      'must be a Codec (contentType, encode, decode), e.g. protobuf(Type) from herald/codecs',
    );
  const upcasters = options.upcasters ?? [];
  checkUpcasters(type, version, upcasters);
  const check = (payload: unknown): P | Promise<P> => {
    if (!schema) return payload as P;
    const result = schema['~standard'].validate(payload);
    if (result instanceof Promise) return result.then((r) => checked(type, r));
    return checked(type, result);
  };
  return Object.freeze({
    type,
    version,
    schema,
    ...(codec ? { codec } : {}),
    ...(upcasters.length > 0 ? { upcasters: Object.freeze([...upcasters]) } : {}),
    [SYNC_PARSE]: check,
    async parse(payload: unknown): Promise<P> {
      return check(payload);
    },
  });
}

function checked<P>(type: string, result: StandardSchemaV1.Result<P>): P {
  if (result.issues) throw new SchemaValidationError(type, result.issues);
  return result.value;
}

/**
 * Validates like `definition.parse`, but returns the value itself when the schema answers
 * synchronously: publish and consume run this per event, and a promise per event is a measurable
 * share of their cost. Definitions not made by {@link defineEvent} fall back to their `parse`.
 */
export function parsePayload<P>(definition: EventDefinition<P>, payload: unknown): P | Promise<P> {
  const fast = (definition as { [SYNC_PARSE]?: (p: unknown) => P | Promise<P> })[SYNC_PARSE];
  return fast ? fast(payload) : definition.parse(payload);
}
