import type { BackendDefinition } from '../../backends/backend.js';

/**
 * `nats://host:port[,host2:port][?namespace=n]`: the NATS JetStream transport and stores.
 * `namespace` prefixes every stream, subject and bucket (default `herald`).
 */
export const natsBackend: BackendDefinition = {
  name: 'nats',
  schemes: ['nats:'],
  example: 'nats://host:port[,host2:port]',
  sharedServer: true,
  drivers: ['@nats-io/jetstream', '@nats-io/transport-node', '@nats-io/kv'],
  parse(url) {
    const rest = url.slice('nats://'.length);
    const [hostPart = '', query = ''] = rest.split('?', 2);
    const hosts = hostPart
      .replace(/\/$/, '')
      .split(',')
      .filter((h) => h.length > 0);
    if (!url.toLowerCase().startsWith('nats://') || hosts.length === 0)
      return { error: 'expected nats://host:port[,host2:port], e.g. nats://127.0.0.1:4222' };
    for (const h of hosts) {
      let parsed: URL;
      try {
        parsed = new URL(`nats://${h}`);
      } catch {
        return { error: `not a host:port: ${JSON.stringify(h)}; expected nats://127.0.0.1:4222` };
      }
      if (parsed.hostname.length === 0 || parsed.pathname.length > 1)
        return { error: `not a host:port: ${JSON.stringify(h)}; expected nats://127.0.0.1:4222` };
    }
    const params = new URLSearchParams(query);
    const unknown = [...params.keys()].filter((k) => k !== 'namespace');
    if (unknown.length > 0) return { error: `unknown URL parameter ${unknown.join(', ')}; known: namespace` };
    const namespace = params.get('namespace');
    if (namespace !== null && !/^[A-Za-z0-9_-]+$/.test(namespace))
      return { error: `namespace must be letters, digits, "_" or "-", got ${JSON.stringify(namespace)}` };
    return {
      backend: 'nats',
      url,
      params: { servers: hosts.map((h) => `nats://${h}`).join(','), ...(namespace ? { namespace } : {}) },
    };
  },
  load: () => import('./open.js').then((m) => m.natsAdapter),
};
