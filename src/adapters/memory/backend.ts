import type { BackendDefinition } from '../../backends/backend.js';

/**
 * `memory://`: everything in this process. Useful for tests and trials; nothing survives the
 * process and no other process can join its groups.
 */
export const memoryBackend: BackendDefinition = {
  name: 'memory',
  schemes: ['memory:'],
  example: 'memory://',
  sharedServer: false,
  drivers: [],
  parse(url) {
    if (!/^memory:(\/\/)?$/i.test(url))
      return { error: 'a memory URL takes nothing after the scheme: memory://' };
    return { backend: 'memory', url, params: {} };
  },
  load: () => import('./open.js').then((m) => m.memoryAdapter),
};
