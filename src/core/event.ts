import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ConfigError, SchemaValidationError } from './errors.js';

/**
 * The envelope every event travels in. Field names are the usual event-envelope ones (id, type, source, aggregate, tenant, correlation); the mapping to
 * CloudEvents 1.0 is in `cloudevents.ts`.
 */
export interface EventEnvelope<P = unknown> {
  /** UUIDv7, unique per event; consumers deduplicate on it. */
  readonly id: string;
  /** `<domain>.<entity>.<action>` (at least two dot-separated lowercase segments). */
  readonly type: string;
  /** Schema version of the payload, e.g. `v1`. */
  readonly version: string;
  /** Name of the publishing service. */
  readonly source: string;
  /** Id of the aggregate the event belongs to; also the ordering (partition) key. */
  readonly aggregateId?: string;
  readonly tenantId?: string;
  readonly userId?: string;
  /** RFC 3339 timestamp of when the event happened. */
  readonly time: string;
  readonly payload: P;
  /** Free-form string metadata carried end to end. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Id shared by every event of one business flow (often the originating request id). */
  readonly correlationId?: string;
  /** Id of the event (or command) that directly caused this one. */
  readonly causationId?: string;
}

/** Options a publisher sets per event; everything else is filled in by the bus. */
export interface EventOptions {
  id?: string;
  aggregateId?: string;
  tenantId?: string;
  userId?: string;
  time?: Date | string;
  metadata?: Record<string, string>;
  correlationId?: string;
  causationId?: string;
}

/** A typed event: its name, version and payload schema. Create with {@link defineEvent}. */
export interface EventDefinition<P = unknown> {
  readonly type: string;
  readonly version: string;
  readonly schema?: StandardSchemaV1<unknown, P>;
  /** Validates a payload, returning the (possibly transformed) value or throwing SchemaValidationError. */
  parse(payload: unknown): Promise<P>;
}

/** Extracts the payload type of an {@link EventDefinition}. */
export type PayloadOf<D> = D extends EventDefinition<infer P> ? P : never;

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
 * @example
 * const MessageSent = defineEvent('conversation.message.sent', {
 *   version: 'v1',
 *   schema: z.object({ conversationId: z.string(), text: z.string() }),
 * });
 */
export function defineEvent<P = unknown>(
  type: string,
  options: { version?: string; schema?: StandardSchemaV1<unknown, P> } = {},
): EventDefinition<P> {
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
