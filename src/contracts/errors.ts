/**
 * The one error root of Herald. Every error Herald throws extends {@link HeraldError} and carries a
 * stable `HERALD_*` code, so callers branch on the code instead of parsing messages, and the code
 * survives serialisation (a class identity does not).
 */

/**
 * Registered globally (`Symbol.for`), so an error made by one loaded copy of Herald is recognised by
 * another (two versions in one dependency tree, or a test double next to the real package).
 */
const BRAND: unique symbol = Symbol.for('herald.error') as never;

/** Base class of every error Herald throws. */
export class HeraldError extends Error {
  /** Stable, machine-readable identifier, e.g. `HERALD_SCHEMA_INVALID`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /**
   * `err instanceof HeraldError` holds for errors of any loaded copy of Herald (brand check);
   * subclasses keep the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === HeraldError) return isHeraldError(value);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}
Object.defineProperty(HeraldError.prototype, BRAND, { value: true });

/**
 * True when `err` is a Herald error (from any loaded copy of the package), and when `code` is given,
 * one with that code.
 *
 * @example
 * if (isHeraldError(err, 'HERALD_BROKEN_CIRCUIT')) retryLater(err.retryAfterMs);
 */
export function isHeraldError(err: unknown, code?: string): err is HeraldError {
  if (typeof err !== 'object' || err === null || (err as { [BRAND]?: unknown })[BRAND] !== true) {
    return false;
  }
  return code === undefined || (err as HeraldError).code === code;
}

/** Normalizes anything thrown into an Error, so stacks and messages can be recorded. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}

/** An argument or configuration value is wrong. The message names the field. */
export class ConfigError extends HeraldError {
  /** The option at fault, e.g. `retry.maxAttempts` or `CircuitBreaker.threshold`. */
  readonly field: string;

  constructor(field: string, message: string) {
    super('HERALD_CONFIG_INVALID', `${field}: ${message}`);
    this.field = field;
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

/** Routing could not pick a topic (e.g. a subscription pattern that spans several topics). */
export class RoutingError extends HeraldError {
  constructor(message: string) {
    super('HERALD_ROUTING', message);
  }
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
