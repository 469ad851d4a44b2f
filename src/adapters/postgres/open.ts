import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { postgresHealthCheck } from './health.js';
import { postgresStores } from './stores.js';
import { PostgresTransport } from './transport.js';

export const postgresAdapter: BackendAdapter = {
  async open(parsed, options) {
    const connectionString = parsed.params['connectionString']!;
    const schema = options.namespace ?? parsed.params['namespace'] ?? 'herald';
    const connection = {
      connectionString,
      schema,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.mustExist ? { mustExist: true } : {}),
    };
    const transport = await PostgresTransport.connect({ ...options.transportOptions, ...connection });
    if (options.transportOnly) return openedBackend(parsed, transport, {}, schema);
    try {
      return openedBackend(parsed, transport, await postgresStores(connection), schema);
    } catch (err) {
      await transport.close();
      throw err;
    }
  },
  healthCheck: (parsed, options) =>
    postgresHealthCheck({
      connectionString: parsed.params['connectionString']!,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    }),
};
