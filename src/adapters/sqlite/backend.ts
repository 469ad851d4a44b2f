import type { BackendDefinition } from '../../backends/backend.js';

/**
 * `sqlite://<path>` (relative), `sqlite:///abs/path` or `sqlite:<path>`: the embedded broker and
 * stores in one file.
 */
export const sqliteBackend: BackendDefinition = {
  name: 'sqlite',
  schemes: ['sqlite:'],
  example: 'sqlite://<path>',
  sharedServer: false,
  drivers: ['better-sqlite3'],
  parse(url) {
    const path = /^sqlite:(?:\/\/)?(.*)$/i.exec(url)?.[1] ?? '';
    if (path.trim().length === 0)
      return { error: 'sqlite:// needs a file path, e.g. sqlite://.herald/events.db' };
    return { backend: 'sqlite', url, params: { path } };
  },
  load: () => import('./open.js').then((m) => m.sqliteAdapter),
};
