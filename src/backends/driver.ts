import { createRequire } from 'node:module';
import { DriverMissingError, missingDriver } from './registry.js';

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

/**
 * Loads any other optional peer (a codec's library, the OpenTelemetry SDK) synchronously when a
 * feature first needs it, turning a missing package into {@link DriverMissingError} naming the
 * feature and the `npm install` line.
 */
export function requireOptional<T>(pkg: string, feature: string): T {
  try {
    return requireFromHerald(pkg) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' && (err as Error).message.includes(`'${pkg}'`))
      throw new DriverMissingError(feature, pkg, err);
    throw err;
  }
}
