import type { BackendDefinition } from '../../backends/backend.js';

/**
 * `postgres://user@host:port/database[?namespace=schema]` (also `postgresql://`): the PostgreSQL
 * transport and stores. `namespace` (or `schema`) names the schema holding Herald's tables
 * (default `herald`).
 */
export const postgresBackend: BackendDefinition = {
  name: 'postgres',
  schemes: ['postgres:', 'postgresql:'],
  example: 'postgres://user@host:5432/database',
  sharedServer: true,
  drivers: ['pg'],
  parse(url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { error: 'expected postgres://user@host:port/database, e.g. postgres://127.0.0.1:5432/test' };
    }
    if (parsed.hostname.length === 0)
      return { error: 'postgres:// needs a host, e.g. postgres://127.0.0.1:5432/test' };
    const known = ['namespace', 'schema', 'sslmode', 'application_name'];
    const unknown = [...parsed.searchParams.keys()].filter((k) => !known.includes(k));
    if (unknown.length > 0)
      return { error: `unknown URL parameter ${unknown.join(', ')}; known: ${known.join(', ')}` };
    const namespace = parsed.searchParams.get('namespace') ?? parsed.searchParams.get('schema');
    if (namespace !== null && !/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(namespace))
      return {
        error: `namespace must be a PostgreSQL schema name (letters, digits, _ and -), got "${namespace}"`,
      };
    parsed.searchParams.delete('namespace');
    parsed.searchParams.delete('schema');
    return {
      backend: 'postgres',
      url,
      params: { connectionString: parsed.toString(), ...(namespace ? { namespace } : {}) },
    };
  },
  load: () => import('./open.js').then((m) => m.postgresAdapter),
};
