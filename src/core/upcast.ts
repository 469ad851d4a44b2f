import { ConfigError, HeraldError } from './errors.js';
import type { EventDefinition, EventEnvelope } from './event.js';

/** One step of schema evolution: turns a payload of version `from` into version `to`. */
export interface Upcaster {
  readonly from: string;
  readonly to: string;
  /** Pure function of the old payload (and its envelope, for fields that moved into the payload). */
  up(payload: unknown, event: EventEnvelope): unknown;
}

/** Declares an {@link Upcaster}; typed on the old payload for convenience. */
export function upcaster<Old = unknown, New = unknown>(
  from: string,
  to: string,
  up: (payload: Old, event: EventEnvelope) => New,
): Upcaster {
  return { from, to, up: up as Upcaster['up'] };
}

/** An event arrived in a version its definition cannot turn into the current one. */
export class SchemaVersionError extends HeraldError {
  readonly eventType: string;
  readonly version: string;

  constructor(eventType: string, version: string, message: string, options?: { cause?: unknown }) {
    super('HERALD_SCHEMA_VERSION', `${eventType} version ${version}: ${message}`, options);
    this.eventType = eventType;
    this.version = version;
  }
}

/**
 * Checks that every version named by the upcasters reaches `current` by exactly one chain: one
 * upcaster per `from`, no step out of the current version, no cycle, no dead end. Throws
 * ConfigError naming the missing or conflicting link.
 */
export function checkUpcasters(type: string, current: string, upcasters: readonly Upcaster[]): void {
  const byFrom = new Map<string, Upcaster>();
  for (const [i, u] of upcasters.entries()) {
    const field = `upcasters[${i}]`;
    if (typeof u?.from !== 'string' || u.from.length === 0 || typeof u.to !== 'string' || u.to.length === 0)
      throw new ConfigError(field, 'needs non-empty from and to versions');
    if (typeof u.up !== 'function') throw new ConfigError(field, 'needs an up(payload) function');
    if (u.from === current)
      throw new ConfigError(field, `${type}: ${u.from} is the current version; nothing upcasts out of it`);
    if (byFrom.has(u.from))
      throw new ConfigError(
        field,
        `${type}: two upcasters start at ${u.from}; a version has exactly one next step`,
      );
    byFrom.set(u.from, u);
  }
  for (const start of byFrom.keys()) {
    const seen = new Set<string>();
    let at = start;
    while (at !== current) {
      if (seen.has(at))
        throw new ConfigError('upcasters', `${type}: the upcasters from ${start} loop back to ${at}`);
      seen.add(at);
      const step = byFrom.get(at);
      if (!step)
        throw new ConfigError(
          'upcasters',
          `${type}: ${start} reaches ${at}, which has no upcaster to ${current}: add upcaster('${at}', ..., ...)`,
        );
      at = step.to;
    }
  }
}

/** Every version a definition accepts: the current one first, then those its upcasters start from. */
export function knownVersions(definition: EventDefinition): string[] {
  return [definition.version, ...(definition.upcasters ?? []).map((u) => u.from)];
}

/**
 * Brings an envelope to its definition's current version by running the upcaster chain; the
 * envelope itself is returned when it is current. Throws {@link SchemaVersionError} when its
 * version is unknown. The result is not yet validated against the schema.
 */
export function upcast(definition: EventDefinition, event: EventEnvelope): EventEnvelope {
  if (event.version === definition.version) return event;
  const upcasters = definition.upcasters ?? [];
  let payload = event.payload;
  let version = event.version;
  // checkUpcasters proved every known start reaches the current version without a loop.
  for (let steps = 0; version !== definition.version; steps++) {
    const step = steps <= upcasters.length ? upcasters.find((u) => u.from === version) : undefined;
    if (!step)
      throw new SchemaVersionError(
        event.type,
        event.version,
        `no upcaster path to ${definition.version}; known versions: ${knownVersions(definition).join(', ')}`,
      );
    try {
      payload = step.up(payload, event);
    } catch (err) {
      throw new SchemaVersionError(
        event.type,
        event.version,
        `upcaster ${step.from} → ${step.to} threw: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    version = step.to;
  }
  return { ...event, version, payload };
}
