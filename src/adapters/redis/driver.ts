import type * as IORedis from 'ioredis';
import { loadDriver } from '../../backends/driver.js';

/** The ioredis module, loaded on first use (DriverMissingError when not installed). */
export function redisDriver(): typeof IORedis {
  return loadDriver<typeof IORedis>('redis', 'ioredis');
}
