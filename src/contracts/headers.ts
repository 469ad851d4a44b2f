/** Header names Herald writes on messages, so brokers and tools can route and filter without decoding. */
export const Headers = {
  contentType: 'content-type',
  eventType: 'event-type',
  eventVersion: 'event-version',
  source: 'event-source',
  tenantId: 'tenant-id',
  correlationId: 'correlation-id',
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
