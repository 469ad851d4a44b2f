import { ConfigError } from './errors.js';

/**
 * The option names an entry point accepts, written as `{ name: true, ... }` typed
 * `KnownKeys<Options>`: the compiler then insists every field of the interface is listed, so the
 * runtime check can never fall behind the type.
 */
export type KnownKeys<T> = { readonly [K in keyof Required<T>]: true };

/**
 * Throws ConfigError naming the first field of `value` that is not in `known`, the known fields,
 * and the nearest one when it looks like a typo (`retry.maxAtempts`: did you mean maxAttempts?).
 * TypeScript catches these at compile time; this catches JavaScript callers, `as any` and options
 * built at run time, which would otherwise fall back to defaults without a word.
 */
export function rejectUnknownOptions(
  value: unknown,
  known: KnownKeys<object>,
  field: string,
  options: { typosOnly?: boolean } = {},
): void {
  if (value === null || typeof value !== 'object') return;
  for (const key in value) {
    if (Object.prototype.hasOwnProperty.call(known, key)) continue;
    const names = Object.keys(known);
    const near = nearest(key, names);
    // A bundle such as `sqliteStores(...)` carries `close`, `status` or its connection beside the
    // stores: only a near miss of a known name is a mistake there.
    if (options.typosOnly && near === undefined) continue;
    throw new ConfigError(
      field ? `${field}.${key}` : key,
      `unknown option${near ? ` (did you mean ${near}?)` : ''}; known: ${names.join(', ')}`,
    );
  }
}

/** The known name within edit distance 2 (or equal ignoring case), if there is one. */
function nearest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = name.toLowerCase() === key.toLowerCase() ? 0 : distance(key, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}
