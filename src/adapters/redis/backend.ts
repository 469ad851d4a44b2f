import type { BackendDefinition } from '../../backends/backend.js';

/**
 * `redis://host:port[/db][?prefix=p]` (also `rediss://`): Redis Streams and the Redis stores.
 * `prefix` (or `namespace`, the name every shared-server backend accepts) is the key prefix
 * (default `herald`).
 */
export const redisBackend: BackendDefinition = {
  name: 'redis',
  schemes: ['redis:', 'rediss:'],
  example: 'redis://host:port[/db]',
  sharedServer: true,
  drivers: ['ioredis'],
  parse(url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { error: 'expected redis://host:port[/db], e.g. redis://127.0.0.1:6379/0' };
    }
    if (parsed.hostname.length === 0)
      return { error: 'redis:// needs a host, e.g. redis://127.0.0.1:6379/0' };
    if (parsed.pathname.length > 1 && !/^\/\d+$/.test(parsed.pathname))
      return { error: `the redis database must be a number, e.g. redis://${parsed.host}/0` };
    const unknown = [...parsed.searchParams.keys()].filter((k) => k !== 'prefix' && k !== 'namespace');
    if (unknown.length > 0)
      return { error: `unknown URL parameter ${unknown.join(', ')}; known: prefix (or namespace)` };
    const prefix = parsed.searchParams.get('prefix') ?? parsed.searchParams.get('namespace');
    parsed.search = '';
    return {
      backend: 'redis',
      url,
      params: { redisUrl: parsed.toString(), ...(prefix ? { namespace: prefix } : {}) },
    };
  },
  load: () => import('./open.js').then((m) => m.redisAdapter),
};
