import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { ConfigError } from '../../core/errors.js';
import { sqliteHealthCheck } from './health.js';
import { SqliteSagaStore } from './saga-store.js';
import { sqliteStores } from './stores.js';
import { sqlite } from './transport.js';

const SQLITE_HEADER = 'SQLite format 3\0';

export const sqliteAdapter: BackendAdapter = {
  async open(parsed, options) {
    const path = resolve(parsed.params['path']!);
    if (options.mustExist) assertExistingDatabase(path);
    else mkdirSync(dirname(path), { recursive: true });
    const transport = sqlite({ ...options.transportOptions, path });
    if (options.transportOnly) return openedBackend(parsed, transport, {});
    try {
      return openedBackend(parsed, transport, sqliteStores({ path }));
    } catch (err) {
      await transport.close();
      throw err;
    }
  },
  async openSagaStore(parsed, options) {
    const path = resolve(parsed.params['path']!);
    if (options.mustExist) assertExistingDatabase(path);
    else mkdirSync(dirname(path), { recursive: true });
    return new SqliteSagaStore({ path });
  },
  healthCheck: (parsed, options) =>
    sqliteHealthCheck({
      path: resolve(parsed.params['path']!),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.critical !== undefined ? { critical: options.critical } : {}),
    }),
};

/** Refuses a path that is not an existing SQLite file, so read-only tools never create or overwrite one. */
function assertExistingDatabase(path: string): void {
  if (!existsSync(path))
    throw new ConfigError('transport', `no Herald database at ${path} (the file does not exist)`);
  if (!statSync(path).isFile()) throw new ConfigError('transport', `${path} is not a file`);
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(16);
    const n = readSync(fd, header, 0, 16, 0);
    // An empty file is what SQLite leaves before its first write; anything else must carry the header.
    if (n > 0 && header.toString('latin1', 0, n) !== SQLITE_HEADER.slice(0, n))
      throw new ConfigError('transport', `${path} is not a SQLite database, so not a Herald database`);
  } finally {
    closeSync(fd);
  }
}
