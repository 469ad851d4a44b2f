import { HeraldError, toError } from '../core/errors.js';
import {
  createHerald,
  type Herald,
  type HeraldOptions,
  type HeraldPlugin,
  type HeraldStores,
} from '../core/herald.js';
import type { Logger } from '../core/logger.js';
import { MemoryIdempotencyStore } from '../store/memory/idempotency-store.js';
import { MemoryTransport } from '../transport/memory.js';
import type { Transport } from '../transport/transport.js';
import { ConfigValidationError } from './errors.js';
import { loadConfig, validateConfig } from './load.js';
import type { HeraldConfig } from './schema.js';
import { parseBackendUrl, type ParsedUrl } from './transport-url.js';

/** A required component (the event transport) cannot be reached: Herald refuses to start without it. */
export class TransportUnreachableError extends HeraldError {
  constructor(url: string, cause: unknown) {
    super(
      'HERALD_TRANSPORT_UNREACHABLE',
      `the event transport ${redact(url)} is unreachable (${toError(cause).message}); refusing to start without it`,
      { cause },
    );
  }
}

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
 * {@link loadConfig}). Drivers are loaded on demand from `herald/<driver>`; the transport must be
 * reachable or this rejects (there is no silent fallback that would drop events).
 */
export async function createHeraldFromConfig(
  config: HeraldConfig | Record<string, unknown> | string,
  extras: CreateFromConfigExtras = {},
): Promise<Herald> {
  const resolved = typeof config === 'string' ? await loadConfig({ file: config }) : validateConfig(config);
  const transportUrl = parse(resolved.transport.url, 'transport.url');
  const storesUrl = resolved.stores ? parse(resolved.stores.url, 'stores.url') : transportUrl;
  const logger = extras.logger ?? (await pinoLogger(resolved.logLevel));
  const timeoutMs = extras.connectTimeoutMs ?? 3000;

  const transport = await buildTransport(
    transportUrl,
    resolved.transport.url,
    resolved.transport.options ?? {},
    timeoutMs,
  );
  let stores: HeraldStores;
  try {
    stores = await buildStores(storesUrl, resolved.stores?.url ?? resolved.transport.url, timeoutMs);
  } catch (err) {
    await transport.close().catch(() => undefined);
    throw err;
  }
  logger.info({ transport: transport.name, stores: storesUrl.kind }, 'herald configured');
  return createHerald({
    service: resolved.service,
    transport,
    stores,
    logger,
    drainTimeoutMs: resolved.drainTimeoutMs,
    ...(extras.plugins ? { plugins: extras.plugins } : {}),
    ...(extras.routing ? { routing: extras.routing } : {}),
  });
}

function parse(url: string, field: string): ParsedUrl {
  const parsed = parseBackendUrl(url);
  if ('error' in parsed)
    throw new ConfigValidationError([
      { path: field, message: `${parsed.error}, got ${JSON.stringify(url)}` },
    ]);
  return parsed;
}

async function buildTransport(
  parsed: ParsedUrl,
  url: string,
  options: Record<string, unknown>,
  timeoutMs: number,
): Promise<Transport> {
  switch (parsed.kind) {
    case 'memory':
      return new MemoryTransport();
    case 'sqlite': {
      const mod = await adapter('sqlite', 'better-sqlite3', () => import('../adapters/sqlite/index.js'));
      // Opening the file is the reachability check: a bad path or a foreign file throws here.
      return wrapStart(url, () => mod.sqlite({ ...options, path: parsed.path }));
    }
    case 'redis': {
      await assertRedisReachable(url, timeoutMs);
      const mod = await adapter('redis', 'ioredis', () => import('../adapters/redis/index.js'));
      return wrapStart(url, () => mod.redis({ ...options, url }));
    }
  }
}

async function buildStores(parsed: ParsedUrl, url: string, timeoutMs: number): Promise<HeraldStores> {
  switch (parsed.kind) {
    case 'memory':
      // The DLQ defaults to memory inside Herald; idempotency needs a store to be usable at all.
      return { idempotency: new MemoryIdempotencyStore() };
    case 'sqlite': {
      const mod = await adapter('sqlite', 'better-sqlite3', () => import('../adapters/sqlite/index.js'));
      return wrapStart(url, () => mod.sqliteStores({ path: parsed.path }));
    }
    case 'redis': {
      await assertRedisReachable(url, timeoutMs);
      const mod = await adapter('redis', 'ioredis', () => import('../adapters/redis/index.js'));
      return wrapStart(url, () => mod.redisStores({ url }));
    }
  }
}

async function assertRedisReachable(url: string, timeoutMs: number): Promise<void> {
  const { redisHealthCheck } = await adapter('redis', 'ioredis', () => import('../adapters/redis/health.js'));
  const { HealthChecker } = await import('../health/checker.js');
  const report = await new HealthChecker([redisHealthCheck({ url, timeoutMs, cacheTtlMs: 0 })]).check();
  const result = report.checks[0]!;
  if (result.status === 'unhealthy') throw new TransportUnreachableError(url, new Error(result.error));
}

function wrapStart<T>(url: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    if (err instanceof HeraldError && err.code === 'HERALD_CONFIG_INVALID') throw err;
    throw new TransportUnreachableError(url, err);
  }
}

/** Imports an adapter module, turning a missing optional peer dependency into an actionable error. */
async function adapter<T>(name: string, peer: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`'${peer}'`)) {
      throw new ConfigValidationError([
        {
          path: 'transport.url',
          message: `the ${name} backend needs the optional peer dependency ${peer}: npm install ${peer}`,
        },
      ]);
    }
    throw err;
  }
}

async function pinoLogger(level: string): Promise<Logger> {
  const { pino } = await import('pino');
  return pino({ level }) as unknown as Logger;
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
