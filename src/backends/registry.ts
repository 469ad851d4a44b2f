import { ConfigError, HeraldError, toError } from '../core/errors.js';
import type { HealthCheck } from '../health/types.js';
import type { SagaStore } from '../saga/store.js';
import type {
  BackendAdapter,
  BackendDefinition,
  BackendOpenOptions,
  OpenedBackend,
  ParsedBackendUrl,
} from './backend.js';

/**
 * An optional package that a feature needs is not installed (a broker's driver, a compression
 * library). The message names the `npm install` command; library, CLI and config loader all
 * report a missing package with this one error.
 */
export class DriverMissingError extends HeraldError {
  /** What needs the package, e.g. `the redis backend` or `snappy compression`. */
  readonly feature: string;
  readonly driver: string;

  constructor(feature: string, driver: string, cause?: unknown) {
    super(
      'HERALD_DRIVER_MISSING',
      `${feature} needs the package ${driver}, which is not installed: npm install ${driver}`,
      { cause },
    );
    this.feature = feature;
    this.driver = driver;
  }
}

/** A broker did not answer when it was opened. The message names the URL (password masked). */
export class BackendUnreachableError extends HeraldError {
  readonly url: string;

  constructor(url: string, cause: unknown) {
    const display = maskUrl(url);
    super(
      'HERALD_TRANSPORT_UNREACHABLE',
      `the broker at ${display} is unreachable (${toError(cause).message}); check that it is running and the URL is right`,
      { cause },
    );
    this.url = display;
  }
}

/**
 * A read-only opening (`mustExist`) found no Herald data where the URL points: a missing file, a
 * file that is not a database, or a database Herald did not create. Nothing was created or changed.
 */
export class BackendNotFoundError extends HeraldError {
  readonly url: string;

  constructor(url: string, detail: string) {
    const display = maskUrl(url);
    super('HERALD_BACKEND_NOT_FOUND', `no Herald database at ${display}: ${detail}`);
    this.url = display;
  }
}

/** Masks the password of a URL so it can be printed and logged. */
export function maskUrl(url: string): string {
  return url.replace(/\/\/([^@/:]*):([^@/]*)@/, '//$1:***@').replace(/\/\/([^@/:]+)@/, '//$1@');
}

/** Default time a broker has to answer when it is opened. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;

/**
 * The backends Herald can open by URL. One registration per adapter; everything that turns a URL
 * into a transport (config, CLI, demo, console) goes through {@link BackendRegistry.open}.
 */
export class BackendRegistry {
  private readonly bySchema = new Map<string, BackendDefinition>();
  private readonly byName = new Map<string, BackendDefinition>();
  private readonly loaded = new Map<string, Promise<BackendAdapter>>();

  constructor(definitions: readonly BackendDefinition[] = []) {
    for (const d of definitions) this.register(d);
  }

  /** Adds a backend. A scheme or name that is already taken is an error, not an override. */
  register(definition: BackendDefinition): this {
    if (this.byName.has(definition.name))
      throw new ConfigError('backend', `a backend named ${definition.name} is already registered`);
    for (const scheme of definition.schemes) {
      const s = scheme.toLowerCase();
      if (!/^[a-z][a-z0-9+.-]*:$/.test(s))
        throw new ConfigError(
          'backend.schemes',
          `${JSON.stringify(scheme)} is not a URL scheme like "redis:"`,
        );
      const taken = this.bySchema.get(s);
      if (taken)
        throw new ConfigError('backend.schemes', `${s} is already served by the ${taken.name} backend`);
    }
    this.byName.set(definition.name, definition);
    for (const scheme of definition.schemes) this.bySchema.set(scheme.toLowerCase(), definition);
    return this;
  }

  /** Every registered backend, in registration order. */
  list(): readonly BackendDefinition[] {
    return [...this.byName.values()];
  }

  /** One line listing the accepted URL forms, for errors and help. */
  describe(): string {
    return this.list()
      .map((d) => d.example)
      .join(', ');
  }

  /** Parses a URL without loading any driver; returns what is wrong with it instead of throwing. */
  parse(url: string): ParsedBackendUrl | { readonly error: string } {
    const trimmed = url.trim();
    const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(trimmed)?.[1]?.toLowerCase();
    const definition = scheme ? this.bySchema.get(scheme) : undefined;
    if (!definition) {
      const what = scheme ? `the scheme ${scheme} is not one Herald knows` : 'not a URL';
      return { error: `${what}; expected one of ${this.describe()}` };
    }
    return definition.parse(trimmed);
  }

  /** Like {@link parse}, but throws a ConfigError naming `field`. */
  parseOrThrow(url: string, field = 'transport'): ParsedBackendUrl {
    const parsed = this.parse(url);
    if ('error' in parsed)
      throw new ConfigError(field, `${parsed.error}, got ${JSON.stringify(maskUrl(url))}`);
    return parsed;
  }

  /** The definition serving a parsed URL. */
  definition(name: string): BackendDefinition {
    const d = this.byName.get(name);
    if (!d)
      throw new ConfigError(
        'backend',
        `no backend named ${name}; known: ${[...this.byName.keys()].join(', ')}`,
      );
    return d;
  }

  /**
   * Opens the transport and stores named by `url`. Rejects with {@link DriverMissingError} when the
   * driver is not installed, {@link BackendUnreachableError} when the broker does not answer within
   * `connectTimeoutMs`, and ConfigError for a bad URL or options.
   */
  async open(url: string, options: BackendOpenOptions = {}): Promise<OpenedBackend> {
    const parsed = this.parseOrThrow(url);
    const adapter = await this.adapter(parsed.backend);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const opening = adapter.open(parsed, { ...options, connectTimeoutMs: timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // A margin over the adapter's own connect timeout: the adapter's error is the better one.
      timer = setTimeout(
        () => reject(new BackendUnreachableError(url, new Error(`no answer within ${timeoutMs} ms`))),
        timeoutMs + 1000,
      );
      timer.unref();
    });
    try {
      return await Promise.race([opening, deadline]);
    } catch (err) {
      // Whatever the adapter opens after giving up on it is closed, so nothing keeps the process alive.
      opening.then((o) => o.close()).catch(() => undefined);
      if (err instanceof HeraldError) throw err;
      throw new BackendUnreachableError(url, err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens the saga store of the backend behind `url`; a ConfigError when the backend has none. */
  async openSagaStore(url: string, options: BackendOpenOptions = {}): Promise<SagaStore> {
    const parsed = this.parseOrThrow(url);
    const adapter = await this.adapter(parsed.backend);
    if (!adapter.openSagaStore)
      throw new ConfigError(
        'transport',
        `the ${parsed.backend} backend has no saga store; keep sagas on another backend`,
      );
    return adapter.openSagaStore(parsed, options);
  }

  /** A health check of the broker behind `url`, or undefined when its adapter has none. */
  async healthCheck(
    url: string,
    options: { timeoutMs?: number; critical?: boolean } = {},
  ): Promise<HealthCheck | undefined> {
    const parsed = this.parseOrThrow(url);
    const adapter = await this.adapter(parsed.backend);
    return adapter.healthCheck?.(parsed, options);
  }

  /** Loads an adapter once, turning a missing driver into {@link DriverMissingError}. */
  adapter(name: string): Promise<BackendAdapter> {
    let loading = this.loaded.get(name);
    if (!loading) {
      const definition = this.definition(name);
      loading = definition.load().catch((err: unknown) => {
        this.loaded.delete(name);
        throw missingDriver(definition, err) ?? err;
      });
      this.loaded.set(name, loading);
    }
    return loading;
  }
}

/** The driver a failed import could not find, as a DriverMissingError; undefined for other failures. */
export function missingDriver(
  definition: Pick<BackendDefinition, 'name' | 'drivers'>,
  err: unknown,
): DriverMissingError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return undefined;
  const driver = definition.drivers.find(
    (d) => e.message?.includes(`'${d}'`) || e.message?.includes(`"${d}"`),
  );
  return driver ? new DriverMissingError(`the ${definition.name} backend`, driver, err) : undefined;
}
