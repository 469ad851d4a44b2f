/**
 * HTTP handlers for the probes. They take the request/response shapes only, so this module needs
 * neither Express nor Fastify.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthProbes, ProbeResponse } from './probes.js';

export interface ProbePaths {
  readonly live?: string;
  readonly ready?: string;
  readonly health?: string;
}

const DEFAULT_PATHS = { live: '/live', ready: '/ready', health: '/health' } as const;

function resolvePaths(paths: ProbePaths = {}): Required<ProbePaths> {
  return { ...DEFAULT_PATHS, ...paths };
}

function route(
  probes: HealthProbes,
  paths: Required<ProbePaths>,
  pathname: string,
): (() => Promise<ProbeResponse>) | undefined {
  if (pathname === paths.live) return async () => probes.live();
  if (pathname === paths.ready) return () => probes.ready();
  if (pathname === paths.health) return () => probes.health();
  return undefined;
}

/**
 * A node:http request listener that is also an Express/Connect middleware: it answers the probe
 * paths and passes anything else to `next` (or answers 404 when there is no `next`).
 *
 * @example
 * http.createServer(probeHandler(probes)).listen(8080);
 * app.use(probeHandler(probes)); // Express
 */
export function probeHandler(
  probes: HealthProbes,
  paths?: ProbePaths,
): (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void {
  const resolved = resolvePaths(paths);
  return (req, res, next) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const handler =
      req.method === 'GET' || req.method === 'HEAD' ? route(probes, resolved, pathname) : undefined;
    if (!handler) {
      if (next) return next();
      res.statusCode = 404;
      res.end();
      return;
    }
    handler().then(
      ({ status, body }) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.setHeader('cache-control', 'no-store');
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
      },
      (err: unknown) => {
        if (next) return next(err);
        res.statusCode = 500;
        res.end();
      },
    );
  };
}

/** The part of a Fastify reply the probes use. */
export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(body: unknown): unknown;
}

/** The part of a Fastify instance the probes use. */
export interface FastifyLike {
  get(path: string, handler: (request: unknown, reply: FastifyReplyLike) => Promise<unknown>): unknown;
}

/**
 * Registers GET routes for the probes on a Fastify instance.
 *
 * @example
 * registerFastifyProbes(app, probes);
 */
export function registerFastifyProbes(app: FastifyLike, probes: HealthProbes, paths?: ProbePaths): void {
  const resolved = resolvePaths(paths);
  for (const path of [resolved.live, resolved.ready, resolved.health]) {
    const handler = route(probes, resolved, path)!;
    app.get(path, async (_request, reply) => {
      const { status, body } = await handler();
      return reply.code(status).header('cache-control', 'no-store').send(body);
    });
  }
}
