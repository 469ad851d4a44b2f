/** Header names Herald writes on every message, so brokers and tools can route and filter without decoding. */
export const Headers = {
  contentType: 'content-type',
  eventType: 'event-type',
  eventVersion: 'event-version',
  source: 'event-source',
  tenantId: 'tenant-id',
  correlationId: 'correlation-id',
  /** W3C trace context, written by the tracing middleware or any globally registered propagator. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;
