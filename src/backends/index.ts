/**
 * The backend registry: every broker Herald can open by URL. Adding a broker is one folder under
 * `src/adapters/<driver>/` (with a `backend.ts` descriptor that does not load the driver) plus one
 * line below. See docs/adapters/writing-an-adapter.md.
 */
import { kafkaBackend } from '../adapters/kafka/backend.js';
import { memoryBackend } from '../adapters/memory/backend.js';
import { postgresBackend } from '../adapters/postgres/backend.js';
import { natsBackend } from '../adapters/nats/backend.js';
import { redisBackend } from '../adapters/redis/backend.js';
import { sqliteBackend } from '../adapters/sqlite/backend.js';
import { BackendRegistry } from './registry.js';

export const backends = new BackendRegistry();
backends.register(memoryBackend);
backends.register(sqliteBackend);
backends.register(redisBackend);
backends.register(postgresBackend);
backends.register(natsBackend);
backends.register(kafkaBackend);

export type * from './backend.js';
export {
  BackendRegistry,
  BackendUnreachableError,
  DriverMissingError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  maskUrl,
  missingDriver,
} from './registry.js';
export { openedBackend } from './opened.js';
