/**
 * The envelope every event travels in. Field names follow the seeds' `BaseEvent`; the mapping to
 * CloudEvents 1.0 is in `src/core/cloudevents.ts`.
 */
/**
 * One event as published and delivered. `T` narrows `type` to a literal for envelopes of a known
 * definition, so a union of them is discriminated by `type`.
 */
export interface EventEnvelope<P = unknown, T extends string = string> {
  /** UUIDv7, unique per event; consumers deduplicate on it. */
  readonly id: string;
  /** `<domain>.<entity>.<action>` (at least two dot-separated lowercase segments). */
  readonly type: T;
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
