import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Counter, Histogram, type Registry } from 'prom-client';
import { ConfigError } from '../core/errors.js';
import { BoundedLabel } from './labels.js';

/** Seed buckets for HTTP request durations, in seconds (1 ms .. 10 s). */
export const HTTP_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `path` value for requests no route matched: raw URLs would make the label unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export interface HttpMetricsOptions {
  readonly registry: Registry;
  /** Value of the `service` label. */
  readonly serviceName: string;
  /** Distinct route templates before new ones fold into `other`; default 200. */
  readonly labelCap?: number;
  /** Prepended to the metric names (`myapp_` gives `myapp_http_requests_total`); default none. */
  readonly prefix?: string;
}

/** Structural subset of an Express request/response, so this module needs no Express import. */
interface ExpressLikeRequest extends IncomingMessage {
  baseUrl?: string;
  route?: { path?: unknown };
}

/** Structural subset of a Fastify instance. */
interface FastifyLike {
  addHook(
    name: 'onResponse',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<void>,
  ): unknown;
}
interface FastifyRequestLike {
  method: string;
  routeOptions?: { url?: string };
}
interface FastifyReplyLike {
  statusCode: number;
  elapsedTime: number;
}

/**
 * `http_requests_total{service,method,path,status}` and `http_request_duration_seconds{service,method,path}`
 * labelled with the route template (`/users/:id`), never the raw URL.
 */
export class HttpMetrics {
  readonly requests: Counter<string>;
  readonly duration: Histogram<string>;
  private readonly service: string;
  private readonly paths: BoundedLabel;

  constructor(options: HttpMetricsOptions) {
    const registers = [options.registry];
    this.service = options.serviceName;
    this.paths = new BoundedLabel(options.labelCap ?? 200);
    const prefix = options.prefix ?? '';
    // An app that already counts its HTTP requests under the same name and type keeps its metric
    // and Herald records into it; only a metric of another type under the name is an error.
    this.requests =
      existing(options.registry, `${prefix}http_requests_total`, Counter) ??
      new Counter({
        name: `${prefix}http_requests_total`,
        help: 'HTTP requests served',
        labelNames: ['service', 'method', 'path', 'status'],
        registers,
      });
    this.duration =
      existing(options.registry, `${prefix}http_request_duration_seconds`, Histogram) ??
      new Histogram({
        name: `${prefix}http_request_duration_seconds`,
        help: 'HTTP request duration',
        labelNames: ['service', 'method', 'path'],
        buckets: HTTP_DURATION_BUCKETS,
        registers,
      });
  }

  /** Records one finished request. */
  record(method: string, path: string | undefined, status: number, seconds: number): void {
    const m = METHODS.has(method.toUpperCase()) ? method.toUpperCase() : 'OTHER';
    const p = path === undefined ? UNMATCHED_ROUTE : this.paths.fold(path);
    this.requests.inc({ service: this.service, method: m, path: p, status: String(status) });
    this.duration.observe({ service: this.service, method: m, path: p }, seconds);
  }

  /**
   * Wraps a plain node:http listener. Give the route templates it serves (`/users/:id`), or a
   * function naming the route; anything else is counted as {@link UNMATCHED_ROUTE}.
   */
  nodeHandler(
    handler: RequestListener,
    routes: readonly string[] | ((req: IncomingMessage) => string | undefined) = [],
  ): RequestListener {
    const match = typeof routes === 'function' ? routes : templateMatcher(routes);
    return (req, res) => {
      const started = process.hrtime.bigint();
      res.once('finish', () =>
        this.record(req.method ?? 'GET', match(req), res.statusCode, elapsed(started)),
      );
      handler(req, res);
    };
  }

  /** Express middleware: install before the routes (`app.use(obs.http.express())`). */
  express(): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
    return (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const r = req as ExpressLikeRequest;
        const path = typeof r.route?.path === 'string' ? `${r.baseUrl ?? ''}${r.route.path}` : undefined;
        this.record(req.method ?? 'GET', path, res.statusCode, elapsed(started));
      });
      next();
    };
  }

  /** Adds an onResponse hook to a Fastify instance (the root one, so every route is measured). */
  fastify(app: FastifyLike): void {
    app.addHook('onResponse', async (request, reply) => {
      this.record(request.method, request.routeOptions?.url, reply.statusCode, reply.elapsedTime / 1000);
    });
  }
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Matches `/users/:id/orders/*`-style templates against the request path (query string ignored). */
function templateMatcher(templates: readonly string[]): (req: IncomingMessage) => string | undefined {
  const compiled = templates.map((t) => ({
    template: t,
    regex: new RegExp(
      `^${t
        .split('/')
        .map((s) =>
          s.startsWith(':') ? '[^/]+' : s === '*' ? '.*' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/')}/?$`,
    ),
  }));
  return (req) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    return compiled.find((c) => c.regex.test(path))?.template;
  };
}

/** The metric registered under `name` when it is of `type`; undefined when there is none. */
function existing<M>(
  registry: Registry,
  name: string,
  type: abstract new (...args: never[]) => M,
): M | undefined {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  if (metric instanceof type) return metric;
  throw new ConfigError(
    'metrics.prefix',
    `the registry already has a metric ${name} of another type; set metrics.prefix to keep Herald's apart`,
  );
}
