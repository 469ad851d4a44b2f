import { createRequire } from 'node:module';
import { missingDriver } from './registry.js';

const requireFromHerald = createRequire(import.meta.url);

/**
 * Loads a driver package (an optional peer) when an adapter first needs it, not when its module is
 * imported, so a missing driver surfaces as {@link DriverMissingError} with the `npm install` line
 * wherever the adapter is used from: the library (`sqlite({ path })`), the config loader or the CLI.
 * Drivers are CommonJS packages, so this is synchronous and factories stay synchronous.
 */
export function loadDriver<T>(backend: string, driver: string): T {
  try {
    return requireFromHerald(driver) as T;
  } catch (err) {
    throw missingDriver({ name: backend, drivers: [driver] }, err) ?? err;
  }
}
