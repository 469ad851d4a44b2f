/**
 * Typed errors of the core. Every error has a stable `code` so callers can branch on it without
 * parsing messages, and a message that says what to do about it.
 */

/** Base class of every error Herald throws. */
export class HeraldError extends Error {
  /** Stable, machine-readable identifier, e.g. `HERALD_SCHEMA_INVALID`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem reported by a Standard Schema validator. */
export interface SchemaIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[];
}

/** A payload did not satisfy its event's schema. Nothing was published. */
export class SchemaValidationError extends HeraldError {
  readonly eventType: string;
  readonly issues: readonly SchemaIssue[];

  constructor(eventType: string, issues: readonly SchemaIssue[]) {
    const detail = issues
      .slice(0, 5)
      .map((i) => `${formatPath(i.path)}: ${i.message}`)
      .join('; ');
    super('HERALD_SCHEMA_INVALID', `payload of ${eventType} failed its schema: ${detail}`);
    this.eventType = eventType;
    this.issues = issues;
  }
}

function formatPath(path: SchemaIssue['path']): string {
  if (!path || path.length === 0) return '(root)';
  return path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
}

/** An argument or configuration value is wrong. The message names the field. */
export class ConfigError extends HeraldError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('HERALD_CONFIG_INVALID', `${field}: ${message}`);
    this.field = field;
  }
}

/** A message could not be turned back into an event envelope (corrupt body, unknown codec, ...). */
export class DecodeError extends HeraldError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HERALD_DECODE_FAILED', message, options);
  }
}

/** An operation was attempted on a transport, bus or store after `close()`. */
export class ClosedError extends HeraldError {
  constructor(what: string) {
    super('HERALD_CLOSED', `${what} is closed; create a new one or call this before close()`);
  }
}

/** A handler did not finish within its `timeoutMs`. */
export class HandlerTimeoutError extends HeraldError {
  constructor(handler: string, timeoutMs: number) {
    super('HERALD_HANDLER_TIMEOUT', `handler ${handler} did not finish within ${timeoutMs} ms`);
  }
}

/** Routing could not pick a topic (e.g. a subscription pattern that spans several topics). */
export class RoutingError extends HeraldError {
  constructor(message: string) {
    super('HERALD_ROUTING', message);
  }
}

/** Normalizes anything thrown into an Error, so stacks and messages can be recorded. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}

/** An event-store append lost an optimistic-concurrency race for its aggregate. */
export class ConcurrencyError extends HeraldError {
  readonly aggregateId: string;
  readonly expected: number;
  readonly actual: number;

  constructor(aggregateId: string, expected: number, actual: number) {
    super(
      'HERALD_CONCURRENCY',
      `aggregate ${aggregateId} is at sequence ${actual}, expected ${expected}; reload it and retry`,
    );
    this.aggregateId = aggregateId;
    this.expected = expected;
    this.actual = actual;
  }
}
