import type { BackendAdapter, BackendOpenOptions, ParsedBackendUrl } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { postgresHealthCheck } from './health.js';
import { PostgresSagaStore } from './saga-store.js';
import type { PostgresConnectionOptions } from './options.js';
import { postgresStores } from './stores.js';
import { PostgresTransport } from './transport.js';

/** The connection options a URL and the open options name. */
function connectionOf(
  parsed: ParsedBackendUrl,
  options: BackendOpenOptions,
): PostgresConnectionOptions & { schema: string } {
  return {
    connectionString: parsed.params['connectionString']!,
    schema: options.namespace ?? parsed.params['namespace'] ?? 'herald',
    ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    ...(options.mustExist ? { mustExist: true } : {}),
  };
}

export const postgresAdapter: BackendAdapter = {
  async open(parsed, options) {
    const connection = connectionOf(parsed, options);
    const schema = connection.schema;
    const transport = await PostgresTransport.connect({ ...options.transportOptions, ...connection });
    if (options.transportOnly) return openedBackend(parsed, transport, {}, schema);
    try {
      return openedBackend(parsed, transport, await postgresStores(connection), schema);
    } catch (err) {
      await transport.close();
      throw err;
    }
  },
  openSagaStore: (parsed, options) => PostgresSagaStore.connect(connectionOf(parsed, options)),
  healthCheck: (parsed, options) =>
    postgresHealthCheck({
      connectionString: parsed.params['connectionString']!,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    }),
};
