import { parseArgs } from 'node:util';
import { backends } from '../backends/index.js';

/** The default transport: the embedded SQLite broker, so `herald dlq list` sees what `herald demo` left. */
export const DEFAULT_TRANSPORT_URL = 'sqlite://.herald/events.db';

/** Exit codes a script can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Bad command line: the CLI prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  /** `showUsage: false` for refusals that are not about syntax (e.g. purge without --yes). */
  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}

/** One option of a command: its parseArgs type plus where else its value may come from. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Environment variable read when the flag is absent (flags win over env). */
  readonly env?: string;
  /** One line for --help. */
  readonly help: string;
  /** Placeholder shown in --help, e.g. `<url>`. */
  readonly arg?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  transport: {
    type: 'string',
    env: 'HERALD_TRANSPORT',
    arg: '<url>',
    help: `${backends.describe()} (default ${DEFAULT_TRANSPORT_URL}; or HERALD_DB=<path>)`,
  },
  config: {
    type: 'string',
    short: 'c',
    env: 'HERALD_CONFIG',
    arg: '<file>',
    help: 'herald.yaml: its transport.url is used when --transport is not given',
  },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies OptionSpecs;

export const JSON_OPTION = {
  json: { type: 'boolean', env: 'HERALD_JSON', help: 'machine-readable JSON output on stdout' },
} as const satisfies OptionSpecs;

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  readonly values: ParsedValues;
  readonly positionals: string[];
}

/**
 * Parses argv strictly (unknown flags are a UsageError), then fills absent options from their
 * environment variables.
 */
export function parseCommand(
  argv: readonly string[],
  specs: OptionSpecs,
  env: NodeJS.ProcessEnv,
  options: { positionals?: boolean } = {},
): Parsed {
  const parseOptions: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    parseOptions[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  let result: { values: ParsedValues; positionals: string[] };
  try {
    result = parseArgs({
      args: [...argv],
      options: parseOptions,
      strict: true,
      allowPositionals: options.positionals ?? false,
    }) as {
      values: ParsedValues;
      positionals: string[];
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values: ParsedValues = { ...result.values };
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined || !spec.env) continue;
    const fromEnv = env[spec.env];
    if (fromEnv === undefined || fromEnv === '') continue;
    if (spec.type === 'boolean') values[name] = !['0', 'false', 'no', 'off'].includes(fromEnv.toLowerCase());
    else values[name] = spec.multiple ? [fromEnv] : fromEnv;
  }
  return { values, positionals: result.positionals };
}

/**
 * The transport URL: `--transport`, else HERALD_TRANSPORT, else the config file's `transport.url`
 * (`--config` / HERALD_CONFIG), else HERALD_DB (a URL, or a path meaning `sqlite://<path>`), else
 * the default SQLite file.
 */
/** Where a command's backend is: its URL and, from a config file, the adapter options. */
export interface TransportChoice {
  readonly url: string;
  readonly transportOptions?: Readonly<Record<string, unknown>>;
}

/** --transport, else the config file's transport (URL and options), else HERALD_DB, else the default. */
export async function transportChoice(
  values: ParsedValues,
  env: NodeJS.ProcessEnv,
): Promise<TransportChoice> {
  const given = values['transport'];
  if (typeof given === 'string' && given.length > 0) return { url: given };
  const file = values['config'];
  if (typeof file === 'string' && file.length > 0) {
    const { loadConfig } = await import('../config/index.js');
    const { transport } = await loadConfig({ file, env });
    return { url: transport.url, ...(transport.options ? { transportOptions: transport.options } : {}) };
  }
  const db = env['HERALD_DB'];
  if (db) return { url: /^[a-z][a-z0-9+.-]*:/i.test(db) ? db : `sqlite://${db}` };
  return { url: DEFAULT_TRANSPORT_URL };
}

export function stringOption(values: ParsedValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(values: ParsedValues, name: string): boolean {
  return values[name] === true;
}

/** Reads a numeric option; a non-number or one below `min` is a UsageError naming the flag. */
export function numberOption(
  values: ParsedValues,
  name: string,
  fallback: number,
  { min = 0, integer = false }: { min?: number; integer?: boolean } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(n) ||
    n < min ||
    (integer && !Number.isInteger(n))
  ) {
    throw new UsageError(
      `--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** Renders the OPTIONS block of a command's help. */
export function describeOptions(specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const left = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.arg ? ` ${spec.arg}` : ''}`;
    const env = spec.env ? ` [env ${spec.env}]` : '';
    return [left, `${spec.help}${env}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`).join('\n');
}

/** Quotes a command-line argument for a POSIX shell when it needs it. */
export function shellArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The flags that name this command's backend, to repeat in a hint (`herald dlq list ...`) so the
 * hinted command reads the same place: the config file when one was used, else the URL.
 */
export async function backendFlags(values: ParsedValues, env: NodeJS.ProcessEnv): Promise<string> {
  const config = values['config'];
  if (typeof values['transport'] !== 'string' && typeof config === 'string' && config.length > 0)
    return ` --config ${shellArg(config)}`;
  const { url } = await transportChoice(values, env);
  return url === DEFAULT_TRANSPORT_URL ? '' : ` --transport ${shellArg(url)}`;
}
