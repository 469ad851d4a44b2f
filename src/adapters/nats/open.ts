import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { BackendUnreachableError } from '../../backends/registry.js';
import { natsHealthCheck } from './health.js';
import { Names } from './names.js';
import type { NatsTransportOptions } from './options.js';
import { natsStores } from './stores/index.js';
import { nats } from './transport.js';

export const natsAdapter: BackendAdapter = {
  async open(parsed, options) {
    const servers = parsed.params['servers']!.split(',');
    const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    const namespace = options.namespace ?? parsed.params['namespace'];
    const connection = { servers, connectTimeoutMs, ...(namespace ? { namespace } : {}) };
    const transport = nats({ ...(options.transportOptions as NatsTransportOptions), ...connection });
    try {
      await transport.start();
    } catch (err) {
      await transport.close().catch(() => undefined);
      throw new BackendUnreachableError(parsed.url, err);
    }
    if (options.transportOnly) return openedBackend(parsed, transport, {}, namespace);
    const stores = natsStores({ ...connection, ...(options.mustExist ? { mustExist: true } : {}) });
    return openedBackend(parsed, transport, stores, namespace ?? 'herald');
  },
  healthCheck: (parsed, options) => {
    const names = new Names(parsed.params['namespace'] ?? 'herald');
    return natsHealthCheck({
      servers: parsed.params['servers']!.split(','),
      streams: [names.topicsStream, names.eventsStream],
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    });
  },
};
