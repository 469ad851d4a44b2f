import { backends, type OpenedBackend } from '../backends/index.js';
import { ConfigError } from '../core/errors.js';
import { createHerald, type Herald, type HeraldOptions, type HeraldPlugin } from '../core/herald.js';
import type { Logger } from '../core/logger.js';
import { ConfigValidationError } from './errors.js';
import { loadConfig, validateConfig } from './load.js';
import type { HeraldConfig } from './schema.js';

/** What a config file cannot hold: code and live objects. */
export interface CreateFromConfigExtras {
  /** Default: a pino logger at `config.logLevel`. */
  readonly logger?: Logger;
  readonly plugins?: readonly HeraldPlugin[];
  readonly routing?: HeraldOptions['routing'];
  /** How long to wait for the transport to answer at start. Default 3000 ms. */
  readonly connectTimeoutMs?: number;
}

/**
 * Creates a Herald from a configuration: a validated {@link HeraldConfig}, a plain object (validated
 * as is) or the path of a YAML/JSON file (loaded with HERALD_* environment overrides, see
 * {@link loadConfig}). The backend is opened through the backend registry, which loads its driver
 * on demand; the transport must be reachable or this rejects with `BackendUnreachableError` (there
 * is no silent fallback that would drop events).
 */
export async function createHeraldFromConfig(
  config: HeraldConfig | Record<string, unknown> | string,
  extras: CreateFromConfigExtras = {},
): Promise<Herald> {
  const resolved = typeof config === 'string' ? await loadConfig({ file: config }) : validateConfig(config);
  const connectTimeoutMs = extras.connectTimeoutMs ?? 3000;
  const logger = extras.logger ?? (await pinoLogger(resolved.logLevel));

  const transport = await open(resolved.transport.url, 'transport.url', {
    connectTimeoutMs,
    ...(resolved.transport.options ? { transportOptions: resolved.transport.options } : {}),
    transportOnly: resolved.stores !== undefined,
  });
  let stores: OpenedBackend = transport;
  if (resolved.stores) {
    try {
      stores = await open(resolved.stores.url, 'stores.url', { connectTimeoutMs });
    } catch (err) {
      await transport.close().catch(() => undefined);
      throw err;
    }
  }
  logger.info({ transport: transport.backend, stores: stores.backend }, 'herald configured');
  return createHerald({
    service: resolved.service,
    transport: transport.transport,
    stores: stores.stores,
    logger,
    drainTimeoutMs: resolved.drainTimeoutMs,
    ...(extras.plugins ? { plugins: extras.plugins } : {}),
    ...(extras.routing ? { routing: extras.routing } : {}),
  });
}

async function open(
  url: string,
  field: string,
  options: Parameters<typeof backends.open>[1],
): Promise<OpenedBackend> {
  try {
    return await backends.open(url, options);
  } catch (err) {
    // Config errors name the config path; broker and driver errors are clear as they are.
    if (err instanceof ConfigError && !(err instanceof ConfigValidationError))
      throw new ConfigValidationError([{ path: field, message: err.message.replace(/^[^:]*: /, '') }]);
    throw err;
  }
}

async function pinoLogger(level: string): Promise<Logger> {
  const { pino } = await import('pino');
  // ISO 8601 `time`, as docs/observability.md promises (pino's default is epoch milliseconds).
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime }) as unknown as Logger;
}
