import { ConfigError } from '../contracts/errors.js';

/** Validation helpers: bad configuration fails at construction with the option named. */

export function int(owner: string, field: string, value: number, min: number, max = Infinity): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new ConfigError(`${owner}.${field}`, `must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

export function num(owner: string, field: string, value: number, min: number, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new ConfigError(`${owner}.${field}`, `must be a number ${range}, got ${String(value)}`);
  }
  return value;
}

/** Like {@link num} but excludes the lower bound. */
export function positive(owner: string, field: string, value: number, max = Infinity): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0 || value > max) {
    const range = max === Infinity ? '> 0' : `in (0, ${max}]`;
    throw new ConfigError(`${owner}.${field}`, `must be a number ${range}, got ${String(value)}`);
  }
  return value;
}

export function oneOf<T extends string>(owner: string, field: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) {
    throw new ConfigError(
      `${owner}.${field}`,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`,
    );
  }
  return value;
}
