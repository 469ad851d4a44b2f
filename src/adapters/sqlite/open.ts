import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { BackendNotFoundError } from '../../backends/registry.js';
import { sqliteDriver } from './driver.js';
import { sqliteHealthCheck } from './health.js';
import { SqliteSagaStore } from './saga-store.js';
import { APPLICATION_ID } from './schema.js';
import { sqliteStores } from './stores.js';
import { sqlite } from './transport.js';

const SQLITE_HEADER = 'SQLite format 3\0';

export const sqliteAdapter: BackendAdapter = {
  async open(parsed, options) {
    const path = resolve(parsed.params['path']!);
    if (options.mustExist) assertHeraldDatabase(parsed.url, path);
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
    if (options.mustExist) assertHeraldDatabase(parsed.url, path);
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

/**
 * Refuses a path that is not an existing Herald database, so read-only tools never create, migrate
 * or overwrite a file: a missing path, a directory, an empty or non-SQLite file, or an SQLite
 * database of another application all fail with one line.
 */
function assertHeraldDatabase(url: string, path: string): void {
  const refuse = (detail: string): never => {
    throw new BackendNotFoundError(url, detail);
  };
  if (!existsSync(path)) refuse(`${path} does not exist`);
  if (!statSync(path).isFile()) refuse(`${path} is not a file`);
  const fd = openSync(path, 'r');
  let n: number;
  const header = Buffer.alloc(16);
  try {
    n = readSync(fd, header, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (n === 0) refuse(`${path} is empty`);
  if (header.toString('latin1', 0, n) !== SQLITE_HEADER) refuse(`${path} is not an SQLite database`);
  // Read through SQLite, not the file header: in WAL mode a fresh database's header may still be
  // in the write-ahead log.
  const Database = sqliteDriver();
  let applicationId: number;
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 1000 });
    try {
      applicationId = db.pragma('application_id', { simple: true }) as number;
    } finally {
      db.close();
    }
  } catch (err) {
    return refuse(`${path} cannot be read as an SQLite database (${(err as Error).message})`);
  }
  if (applicationId !== APPLICATION_ID) refuse(`${path} is an SQLite database that Herald did not create`);
}
