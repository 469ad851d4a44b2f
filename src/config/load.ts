import { readFile } from 'node:fs/promises';
import { YAMLParseError, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigValidationError, type ConfigIssue } from './errors.js';
import { heraldConfigSchema, type HeraldConfig } from './schema.js';

/**
 * Environment variables and the config field each overrides. Numbers are parsed from their
 * decimal text; anything else is passed through so the schema reports it.
 */
export const ENV_MAPPING: Readonly<Record<string, readonly string[]>> = {
  HERALD_SERVICE: ['service'],
  HERALD_TRANSPORT: ['transport', 'url'],
  HERALD_DB: ['stores', 'url'],
  HERALD_LOG_LEVEL: ['logLevel'],
  HERALD_DRAIN_TIMEOUT_MS: ['drainTimeoutMs'],
  HERALD_READINESS_DELAY_MS: ['shutdown', 'readinessDelayMs'],
  HERALD_SHUTDOWN_TIMEOUT_MS: ['shutdown', 'timeoutMs'],
  HERALD_MAX_EVENT_LOOP_DELAY_MS: ['health', 'maxEventLoopDelayMs'],
};

const NUMERIC = new Set([
  'HERALD_DRAIN_TIMEOUT_MS',
  'HERALD_READINESS_DELAY_MS',
  'HERALD_SHUTDOWN_TIMEOUT_MS',
  'HERALD_MAX_EVENT_LOOP_DELAY_MS',
]);

export interface LoadConfigOptions {
  /** A YAML or JSON file (JSON is YAML). */
  readonly file?: string;
  /** Environment to read HERALD_* overrides from; default `process.env`. Pass `{}` to ignore it. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence: fields set in code. */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

type Plain = Record<string, unknown>;

/**
 * Loads and validates a configuration: file, then HERALD_* environment variables, then
 * `overrides` (each later source wins, field by field). Throws {@link ConfigValidationError}
 * naming the wrong field, what was expected and what was given (and the env variable it came from).
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<HeraldConfig> {
  const fromFile = options.file !== undefined ? await readConfigFile(options.file) : {};
  const { values: fromEnv, sources } = readEnv(options.env ?? process.env);
  const merged = merge(
    merge(normalize(fromFile), normalize(fromEnv)),
    normalize({ ...(options.overrides ?? {}) }),
  );
  return validateConfig(merged, sources, options.file);
}

/** Validates a configuration object as is (no file, no environment). */
export function validateConfig(
  input: unknown,
  sources: ReadonlyMap<string, string> = new Map(),
  file?: string,
): HeraldConfig {
  const normalized = isPlain(input) ? normalize(input) : input;
  const result = heraldConfigSchema.safeParse(normalized);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) => toIssues(issue, normalized, sources, file));
  throw new ConfigValidationError(issues);
}

async function readConfigFile(file: string): Promise<Plain> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigValidationError([
      {
        path: file,
        message: code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`,
      },
    ]);
  }
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
      const firstLine = err.message.split('\n')[0] ?? err.message;
      throw new ConfigValidationError([
        { path: where, message: `invalid YAML at line ${pos?.line ?? '?'}: ${firstLine}` },
      ]);
    }
    throw err;
  }
  if (data === null || data === undefined) return {};
  if (!isPlain(data))
    throw new ConfigValidationError([
      { path: `${file} (root)`, message: `expected a mapping of fields, got ${describe(data)}` },
    ]);
  return data;
}

function readEnv(env: Readonly<Record<string, string | undefined>>): {
  values: Plain;
  sources: Map<string, string>;
} {
  const values: Plain = {};
  const sources = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV_MAPPING)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = NUMERIC.has(name) && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    let target = values;
    for (const key of path.slice(0, -1)) target = (target[key] ??= {}) as Plain;
    target[path[path.length - 1]!] = value;
    sources.set(path.join('.'), name);
  }
  return { values, sources };
}

/** `transport: "redis://..."` is shorthand for `transport: { url: "redis://..." }`; same for stores. */
function normalize(config: Plain): Plain {
  const out = { ...config };
  for (const key of ['transport', 'stores']) if (typeof out[key] === 'string') out[key] = { url: out[key] };
  return out;
}

function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlain(current) && isPlain(value) ? merge(current, value) : value;
  }
  return out;
}

function toIssues(
  issue: z.core.$ZodIssue,
  input: unknown,
  sources: ReadonlyMap<string, string>,
  file?: string,
): ConfigIssue[] {
  const base = issue.path.map(String);
  const at = (segments: string[]): string => {
    const dotted = segments.length > 0 ? segments.join('.') : '(root)';
    const env = sources.get(dotted);
    return env ? `${dotted} (from ${env})` : file ? `${dotted} (in ${file})` : dotted;
  };
  if (issue.code === 'unrecognized_keys') {
    const known = Object.keys(knownFields(base));
    return issue.keys.map((key) => ({
      path: at([...base, key]),
      message: `unknown field${known.length ? `; known fields: ${known.join(', ')}` : ''}`,
    }));
  }
  const value = valueAt(input, base);
  let expected: string;
  switch (issue.code) {
    case 'invalid_type':
      expected = `expected ${issue.expected === 'int' ? 'an integer' : issue.expected}`;
      break;
    case 'invalid_value':
      expected = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'too_small':
      expected =
        issue.origin === 'string'
          ? 'expected a non-empty string'
          : `expected a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
      break;
    case 'too_big':
      expected = `expected at most ${String(issue.maximum)}`;
      break;
    default:
      expected = issue.message;
  }
  const message = value === undefined ? `is required (${expected})` : `${expected}, got ${describe(value)}`;
  return [{ path: at(base), message }];
}

function knownFields(path: string[]): Plain {
  let shape: unknown = heraldConfigSchema;
  for (const key of path) {
    const s = unwrap(shape) as { shape?: Record<string, unknown> } | undefined;
    shape = s?.shape?.[key];
  }
  return ((unwrap(shape) as { shape?: Plain } | undefined)?.shape ?? {}) as Plain;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { innerType?: unknown } } | undefined;
  while (s?.def?.innerType) s = s.def.innerType as typeof s;
  return s;
}

function valueAt(input: unknown, path: readonly string[]): unknown {
  let v = input;
  for (const key of path) v = isPlain(v) ? v[key] : undefined;
  return v;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
