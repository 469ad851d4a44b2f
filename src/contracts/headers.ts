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
} as const;
