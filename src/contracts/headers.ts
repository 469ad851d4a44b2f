/** Header names Herald writes on messages, so brokers and tools can route and filter without decoding. */
export const Headers = {
  contentType: 'content-type',
  eventType: 'event-type',
  eventVersion: 'event-version',
  source: 'event-source',
  tenantId: 'tenant-id',
  correlationId: 'correlation-id',
  /**
   * Binary mode (ADR 0010): the envelope fields that are not already headers above travel as these,
   * and the body holds only the payload. A message with `event-id` is binary; one without carries the
   * whole envelope in its body (every Herald version before ADR 0010 wrote that).
   */
  eventId: 'event-id',
  time: 'event-time',
  aggregateId: 'aggregate-id',
  userId: 'user-id',
  causationId: 'causation-id',
  /** The envelope's metadata as one JSON object; absent when the metadata is empty. */
  metadata: 'event-metadata',
  /** W3C trace context, written only by the tracing middleware of `herald/observability`. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Set on messages replayed from the DLQ: only the named group processes them; other groups skip them. */
  replayGroup: 'herald-replay-group',
  /**
   * Set by a transport on a message it could not read (an entry or row Herald did not write, or
   * headers that are not JSON): the reason. The consumer dead-letters it with reason `decode`.
   */
  malformed: 'herald-malformed',
  /** The raw header text of a malformed message, kept as it was for the dead-letter record. */
  rawHeaders: 'herald-raw-headers',
} as const;
