import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { BackendUnreachableError } from '../../backends/registry.js';
import { HealthChecker } from '../../health/checker.js';
import { redisHealthCheck } from './health.js';
import { redisSagaStore } from './stores/saga-store.js';
import { redisStores } from './stores/index.js';
import { redis } from './transport.js';

export const redisAdapter: BackendAdapter = {
  async open(parsed, options) {
    const url = parsed.params['redisUrl']!;
    const timeoutMs = options.connectTimeoutMs ?? 3000;
    // Check first with a connection that does not retry: ioredis would otherwise queue and retry forever.
    const report = await new HealthChecker([redisHealthCheck({ url, timeoutMs, cacheTtlMs: 0 })]).check();
    const result = report.checks[0]!;
    if (result.status === 'unhealthy') throw new BackendUnreachableError(parsed.url, new Error(result.error));
    const prefix = options.namespace ?? parsed.params['namespace'];
    const connection = { url, ...(prefix ? { prefix } : {}) };
    const transport = redis({ ...options.transportOptions, ...connection });
    if (options.transportOnly) return openedBackend(parsed, transport, {}, prefix);
    return openedBackend(parsed, transport, redisStores(connection), prefix ?? 'herald');
  },
  async openSagaStore(parsed, options) {
    const prefix = options.namespace ?? parsed.params['namespace'];
    return redisSagaStore({ url: parsed.params['redisUrl']!, ...(prefix ? { prefix } : {}) });
  },
  healthCheck: (parsed, options) =>
    redisHealthCheck({
      url: parsed.params['redisUrl']!,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    }),
};
