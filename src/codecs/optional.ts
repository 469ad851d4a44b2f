import { createRequire } from 'node:module';
import { DriverMissingError } from '../backends/registry.js';

const require = createRequire(import.meta.url);

/**
 * Loads an optional peer package synchronously (codecs encode synchronously, per event), turning a
 * missing package into {@link DriverMissingError} with the `npm install` line.
 */
export function requireOptional<T>(pkg: string, feature: string): T {
  try {
    return require(pkg) as T;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' && (err as Error).message.includes(`'${pkg}'`))
      throw new DriverMissingError(feature, pkg, err);
    throw err;
  }
}
