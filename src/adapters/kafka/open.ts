import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { BackendUnreachableError } from '../../backends/registry.js';
import { HealthChecker } from '../../health/checker.js';
import { MemoryDeadLetterStore, MemoryIdempotencyStore } from '../../store/memory/index.js';
import { mirrorDeadLetters } from './dead-letter-mirror.js';
import { kafkaHealthCheck } from './health.js';
import type { KafkaTransportOptions } from './options.js';
import { kafka } from './transport.js';

/** Printed when a Kafka backend is opened with its stores: Kafka itself keeps none. */
export const MEMORY_STORES_WARNING =
  'Kafka has no dead-letter or idempotency store: this process keeps them in memory and loses them on exit. ' +
  'Pair Kafka with another backend for the stores (config: stores: { url: "redis://..." } or a SQLite/PostgreSQL URL).';

export const kafkaAdapter: BackendAdapter = {
  async open(parsed, options) {
    const brokers = parsed.params['brokers']!;
    const timeoutMs = options.connectTimeoutMs ?? 3000;
    const report = await new HealthChecker([kafkaHealthCheck({ brokers, timeoutMs, cacheTtlMs: 0 })]).check();
    const result = report.checks[0]!;
    if (result.status === 'unhealthy') throw new BackendUnreachableError(parsed.url, new Error(result.error));
    const namespace = options.namespace ?? parsed.params['namespace'];
    const transport = kafka({
      ...(options.transportOptions as Partial<KafkaTransportOptions> | undefined),
      brokers,
      ...(namespace ? { namespace } : {}),
    });
    if (options.transportOnly) return openedBackend(parsed, transport, {}, namespace);
    process.emitWarning(MEMORY_STORES_WARNING, { code: 'HERALD_KAFKA_MEMORY_STORES' });
    const deadLetters = new MemoryDeadLetterStore();
    return openedBackend(
      parsed,
      transport,
      {
        deadLetters:
          parsed.params['mirrorDlq'] === 'true' ? mirrorDeadLetters(deadLetters, transport) : deadLetters,
        idempotency: new MemoryIdempotencyStore(),
      },
      namespace,
    );
  },
  healthCheck: (parsed, options) =>
    kafkaHealthCheck({
      brokers: parsed.params['brokers']!,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    }),
};
