import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { trace, type Tracer } from '@opentelemetry/api';
import { pino, type Logger as PinoLogger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError } from '../core/errors.js';
import type { Herald, HeraldPlugin } from '../core/herald.js';
import type { EventStore } from '../store/event-store.js';
import { CacheMetrics, DbMetrics } from './helpers.js';
import { HttpMetrics } from './http.js';
import { EventLogging, createLogger, type LoggingOptions } from './logging.js';
import { EventMetrics } from './metrics.js';
import { GrpcMetrics } from './rpc.js';
import { fuseConsume, fusePublish } from './hooks.js';
import { EventTracing, runInContext, type TracingOptions } from './tracing.js';

export interface MetricsOptions {
  /** Registry to register on; default a new one (never prom-client's global registry unless you pass it). */
  readonly registry?: Registry;
  /** Also collect prom-client's process/Node.js metrics (minus the `nodejs_active_*_total` gauges promtool rejects); default false. */
  readonly defaultMetrics?: boolean;
  /** Distinct values per label before new ones fold into `other`; default 200. */
  readonly labelCap?: number;
  /** How long transport stats / DLQ counts are cached between scrapes; default 1000 ms. */
  readonly statsCacheMs?: number;
  /** Prefix of the HTTP metric names (`myapp_` gives `myapp_http_requests_total`); default none. */
  readonly prefix?: string;
}

export interface ObservabilityOptions {
  readonly serviceName: string;
  /** `false` turns metrics off; default on. */
  readonly metrics?: boolean | MetricsOptions;
  /** `false` (default) turns tracing off. */
  readonly tracing?: boolean | Omit<TracingOptions, 'serviceName'>;
  /** `false` turns lifecycle logging off (the logger is then silent); default on. */
  readonly logging?: boolean | LoggingOptions;
}

type ExpressMiddleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** Everything {@link createObservability} wires up. */
export interface Observability {
  /** Pass to `createHerald({ plugins: [obs.plugin] })` (then call `obs.watch(herald)` for queue gauges), or use `obs.instrument(herald)`. */
  readonly plugin: HeraldPlugin;
  readonly registry: Registry;
  /** node:http handler serving the registry in Prometheus text format. */
  readonly metricsHandler: RequestListener;
  /** pino logger (silent when logging is off); lines carry trace_id/span_id. */
  readonly logger: PinoLogger;
  /** OpenTelemetry tracer (a no-op one when tracing is off). */
  readonly tracer: Tracer;
  readonly metrics: EventMetrics | undefined;
  readonly tracing: EventTracing | undefined;
  /** HTTP server metrics; pass-through when metrics are off. */
  readonly http: {
    node(
      handler: RequestListener,
      routes?: readonly string[] | ((req: IncomingMessage) => string | undefined),
    ): RequestListener;
    express(): ExpressMiddleware;
    fastify(app: Parameters<HttpMetrics['fastify']>[0]): void;
  };
  /** gRPC metrics for the interceptors in `herald/grpc` (`src/adapters/grpc/metrics.ts`); undefined when metrics are off. */
  readonly grpc: GrpcMetrics | undefined;
  readonly cache: CacheMetrics | undefined;
  readonly db: DbMetrics | undefined;
  /** Adds the plugin to a Herald and watches its queues. */
  instrument(herald: Herald): Herald;
  /** Reads queue gauges from this Herald and names `messaging.system` after its transport. */
  watch(herald: Herald): void;
  /** Wraps an event store so appends are counted, timed and traced; pass the result as `stores.events`. */
  eventStore<S extends EventStore>(store: S): S;
  /** Ends pending spans and flushes the exporter (bounded); also run by `herald.stop()` through the plugin. */
  shutdown(): Promise<void>;
}

/** Wires metrics, tracing and logging for one service; every part can be switched off and then costs nothing. */
export function createObservability(options: ObservabilityOptions): Observability {
  if (!options || typeof options.serviceName !== 'string' || options.serviceName.length === 0) {
    throw new ConfigError('serviceName', 'must be a non-empty string naming this service');
  }
  const { serviceName } = options;
  const metricsOpts =
    options.metrics === false
      ? undefined
      : options.metrics === true || options.metrics === undefined
        ? {}
        : options.metrics;
  const tracingOpts =
    options.tracing === undefined || options.tracing === false
      ? undefined
      : options.tracing === true
        ? {}
        : options.tracing;
  const loggingOpts =
    options.logging === false
      ? undefined
      : options.logging === true || options.logging === undefined
        ? {}
        : options.logging;

  const registry = metricsOpts?.registry ?? new Registry();
  let metrics: EventMetrics | undefined;
  let httpMetrics: HttpMetrics | undefined;
  let grpc: GrpcMetrics | undefined;
  let cache: CacheMetrics | undefined;
  let db: DbMetrics | undefined;
  if (metricsOpts) {
    const cap = metricsOpts.labelCap;
    metrics = new EventMetrics({
      registry,
      ...(cap === undefined ? {} : { labelCap: cap }),
      ...(metricsOpts.statsCacheMs === undefined ? {} : { statsCacheMs: metricsOpts.statsCacheMs }),
    });
    // Registered when the HTTP middleware is first mounted, not before: an app that serves its
    // own HTTP metrics and never mounts Herald's gets none of Herald's.
    const prefix = metricsOpts.prefix;
    httpMetrics = lazyHttpMetrics(
      () =>
        new HttpMetrics({
          registry,
          serviceName,
          ...(cap === undefined ? {} : { labelCap: cap }),
          ...(prefix === undefined ? {} : { prefix }),
        }),
    );
    grpc = new GrpcMetrics({ registry, serviceName, ...(cap === undefined ? {} : { labelCap: cap }) });
    cache = new CacheMetrics(registry);
    db = new DbMetrics(registry, serviceName);
    if (metricsOpts.defaultMetrics) {
      collectDefaultMetrics({ register: registry });
      // Gauges named *_total break the Prometheus naming rules (promtool rejects them).
      for (const name of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ])
        registry.removeSingleMetric(name);
    }
  }
  const tracing = tracingOpts ? new EventTracing({ serviceName, ...tracingOpts }) : undefined;
  const logger = loggingOpts ? createLogger(serviceName, loggingOpts) : pino({ enabled: false });
  const logging = loggingOpts ? new EventLogging(logger, loggingOpts, tracing) : undefined;

  // Order matters: tracing outermost so logs and metrics run inside the span; tracing's observer
  // last because it ends the failed spans the logging observer reads ids from.
  const publish = fusePublish(present([tracing?.publishHooks(), logging?.publishHooks()]), runInContext);
  const consume = fuseConsume(present([tracing?.consumeHooks(), logging?.consumeHooks()]), runInContext);
  // Core's observer fan-out calls them in this order, each isolated from the others' failures.
  const observer = present([metrics?.observer(), logging?.observer(), tracing?.observer()]);
  const shutdown = async (): Promise<void> => {
    await tracing?.shutdown();
    logging?.close();
    logger.flush?.();
  };
  const plugin: HeraldPlugin = {
    name: 'observability',
    ...(publish ? { publish } : {}),
    ...(consume ? { consume } : {}),
    ...(observer.length > 0 ? { observer } : {}),
    stop: shutdown,
  };

  const watch = (herald: Herald): void => {
    metrics?.watch(herald);
    if (tracing) tracing.messagingSystem = herald.transport.name;
  };

  return {
    plugin,
    registry,
    metricsHandler: (_req, res) => {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: unknown) =>
          res
            .writeHead(500, { 'content-type': 'text/plain' })
            .end(`metrics collection failed: ${String(err)}`),
      );
    },
    logger,
    tracer: tracing?.tracer ?? trace.getTracer('herald'),
    metrics,
    tracing,
    http: {
      node: (handler, routes) => (httpMetrics ? httpMetrics.nodeHandler(handler, routes) : handler),
      express: () => (httpMetrics ? httpMetrics.express() : (_req, _res, next) => next()),
      fastify: (app) => httpMetrics?.fastify(app),
    },
    grpc,
    cache,
    db,
    instrument(herald) {
      herald.use(plugin);
      watch(herald);
      return herald;
    },
    watch,
    eventStore(store) {
      let s = store;
      if (metrics) s = metrics.instrumentEventStore(s);
      if (tracing) s = tracing.instrumentEventStore(s);
      return s;
    },
    shutdown,
  };
}

function present<T>(list: readonly (T | undefined)[]): T[] {
  return list.filter((x): x is T => x !== undefined);
}
/** An HttpMetrics that registers its metrics on first use. */
function lazyHttpMetrics(make: () => HttpMetrics): HttpMetrics {
  let made: HttpMetrics | undefined;
  return new Proxy({} as HttpMetrics, {
    get: (_, prop) => {
      made ??= make();
      const value = (made as unknown as Record<string | symbol, unknown>)[prop];
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(made) : value;
    },
  });
}
