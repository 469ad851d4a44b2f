import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError, HeraldError, toError } from '../core/errors.js';
import { parseFilter, parseLimit, parseSelection, readJson } from './request.js';
import { parseSagaFilter, type SagaConsole } from './sagas.js';
import { ConsoleService, HttpProblem, type ConsoleOptions, type Who } from './service.js';

export interface ConsoleHandlerOptions extends ConsoleOptions {
  /**
   * The path the console is mounted under when the server does not strip it (node:http, Fastify),
   * e.g. `/console`. Express's `app.use('/console', handler)` strips it itself: leave this unset.
   */
  readonly basePath?: string;
}

/**
 * A request listener serving the console page and its admin API. Use it as a node:http listener,
 * as Express middleware (`next` is called for paths it does not serve) or from a Fastify route.
 */
export interface ConsoleHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The bearer token mutations need (the configured one, or the one generated at start). */
  readonly token: string;
  readonly service: ConsoleService;
  /** Ends live streams and detaches from Herald. */
  close(): void;
}

const STATIC: Readonly<Record<string, string>> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/assets/app.js': 'app.js',
  '/assets/app.css': 'app.css',
};
const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

const staticDir = new URL('./static/', import.meta.url);
const assets = new Map<string, Promise<Buffer>>();

function asset(name: string): Promise<Buffer> {
  let p = assets.get(name);
  if (!p) {
    p = readFile(new URL(name, staticDir));
    p.catch(() => assets.delete(name));
    assets.set(name, p);
  }
  return p;
}

/** Creates the console: `http.createServer(consoleHandler({ herald }))`. */
export function consoleHandler(options: ConsoleHandlerOptions): ConsoleHandler {
  const service = new ConsoleService(options);
  const token = options.token ?? randomBytes(18).toString('base64url');
  const tokenDigest = createHash('sha256').update(token).digest();
  const base = (options.basePath ?? '').replace(/\/+$/, '');
  const streams = new Set<ServerResponse>();
  let ticker: NodeJS.Timeout | undefined;

  const tick = (): void => {
    service
      .overview()
      .then((o) => {
        const frame = `event: overview\ndata: ${JSON.stringify(o)}\n\n`;
        for (const s of streams) s.write(frame);
      })
      .catch(() => undefined);
  };

  const authorised = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return false;
    return timingSafeEqual(createHash('sha256').update(m[1]!).digest(), tokenDigest);
  };

  /** Mutations: refused in read-only mode, without the token, or from another origin. */
  const guard = (req: IncomingMessage): Who => {
    if (options.readOnly) throw new HttpProblem(403, 'the console is read-only');
    if (!authorised(req))
      throw new HttpProblem(401, 'this action needs the console token (Authorization: Bearer <token>)');
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') throw new HttpProblem(415, 'send mutations as application/json');
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new HttpProblem(403, 'cross-site request refused');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (host !== req.headers.host) throw new HttpProblem(403, 'cross-origin request refused');
    } else if (origin === 'null') throw new HttpProblem(403, 'cross-origin request refused');
    const actorHeader = req.headers['x-herald-actor'];
    const actor =
      typeof actorHeader === 'string' && actorHeader.trim() ? actorHeader.trim().slice(0, 100) : 'token';
    return { actor, ...(req.socket.remoteAddress ? { address: req.socket.remoteAddress } : {}) };
  };

  const route = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    url: URL,
  ): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    const file = STATIC[path];
    if (file !== undefined && get) {
      let content: Buffer;
      try {
        content = await asset(file);
      } catch {
        throw new HttpProblem(503, `console asset ${file} is missing: run \`npm run build\``);
      }
      res.writeHead(200, {
        'content-type': TYPES[file.split('.').pop()!]!,
        'cache-control': file === 'index.html' ? 'no-store' : 'no-cache',
        ...SECURITY_HEADERS,
      });
      res.end(method === 'HEAD' ? undefined : content);
      return true;
    }
    if (!path.startsWith('/api/')) return false;
    const q = url.searchParams;
    const noQuery = (): void => {
      if ([...q.keys()].length > 0) throw new HttpProblem(400, `${path} takes no query parameters`);
    };
    const dl = /^\/api\/dead-letters\/([^/]+)(\/replay-edited)?$/.exec(path);
    if (path === '/api/sagas' || path === '/api/saga-types' || path.startsWith('/api/sagas/'))
      return sagaRoute(req, res, path, q);
    if (get) {
      switch (path) {
        case '/api/session':
          noQuery();
          return send(res, 200, {
            title: options.title ?? 'Herald',
            readOnly: options.readOnly === true,
            masking: service.masker.enabled,
            traceUrl: options.traceUrl ?? null,
            authorised: authorised(req),
            sagas: service.sagas !== undefined,
          });
        case '/api/overview':
          noQuery();
          return send(res, 200, await service.overview());
        case '/api/stream':
          noQuery();
          res.writeHead(200, {
            'content-type': 'text/event-stream',
            'cache-control': 'no-store',
            connection: 'keep-alive',
            ...SECURITY_HEADERS,
          });
          res.write('retry: 2000\n\n');
          streams.add(res);
          res.on('close', () => {
            streams.delete(res);
            if (streams.size === 0 && ticker) {
              clearInterval(ticker);
              ticker = undefined;
            }
          });
          ticker ??= setInterval(tick, 1000);
          tick();
          return true;
        case '/api/dead-letters': {
          const page = await service.list(parseFilter(q, ['limit', 'cursor', 'order']), {
            limit: parseLimit(q.get('limit')),
            ...(q.get('cursor') ? { cursor: q.get('cursor')! } : {}),
            newestFirst: orderParam(q.get('order')),
          });
          return send(res, 200, page);
        }
        case '/api/dead-letters/groups':
          return send(res, 200, { groups: await service.groups(parseFilter(q)) });
        case '/api/dead-letters/export': {
          const filter = parseFilter(q);
          res.writeHead(200, {
            'content-type': 'application/x-ndjson',
            'content-disposition': 'attachment; filename="dead-letters.ndjson"',
            'cache-control': 'no-store',
            ...SECURITY_HEADERS,
          });
          for await (const line of service.export(filter)) if (!res.write(line)) await drained(res);
          res.end();
          return true;
        }
        case '/api/audit':
          return send(res, 200, { records: service.audit.list(parseLimit(q.get('limit') ?? '200')) });
      }
      if (dl && !dl[2]) {
        noQuery();
        return send(res, 200, await service.entry(decode(dl[1]!)));
      }
      throw new HttpProblem(404, `no such endpoint: ${method} ${path}`);
    }
    if (method !== 'POST')
      throw new HttpProblem(405, `${method} is not supported here; the API uses GET and POST`);
    noQuery();
    switch (path) {
      case '/api/session':
        // Lets the page check a token before using it.
        if (!authorised(req)) throw new HttpProblem(401, 'wrong token');
        return send(res, 200, { authorised: true, readOnly: options.readOnly === true });
      case '/api/dead-letters/dry-run':
        return send(res, 200, await service.dryRun(parseSelection(await readJson(req))));
      case '/api/dead-letters/replay': {
        const who = guard(req);
        return send(res, 200, await service.replay(parseSelection(await readJson(req)), who));
      }
      case '/api/dead-letters/purge': {
        const who = guard(req);
        const body = await readJson(req);
        const expect = (body as { expect?: unknown } | null)?.expect;
        if (!Number.isInteger(expect))
          throw new HttpProblem(400, '`expect` (the count from the dry run) is required to purge');
        const { expect: _, ...rest } = body as Record<string, unknown>;
        return send(res, 200, await service.purge(parseSelection(rest), expect as number, who));
      }
    }
    if (dl && dl[2]) {
      const who = guard(req);
      const body = await readJson(req);
      if (body === null || typeof body !== 'object' || !('payload' in body))
        throw new HttpProblem(400, 'body must be {"payload": <the new payload>}');
      return send(
        res,
        200,
        await service.replayEdited(decode(dl[1]!), (body as { payload: unknown }).payload, who),
      );
    }
    throw new HttpProblem(404, `no such endpoint: ${method} ${path}`);
  };

  const sagaRoute = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    q: URLSearchParams,
  ): Promise<true> => {
    const sagas: SagaConsole | undefined = service.sagas;
    if (!sagas) throw new HttpProblem(404, 'this console has no saga store (pass `sagas` to consoleHandler)');
    const method = req.method ?? 'GET';
    const one = /^\/api\/sagas\/([^/]+)(?:\/(retry|abort))?$/.exec(path);
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/api/sagas') {
        const known = ['type', 'status', 'limit', 'cursor'];
        const unknown = [...q.keys()].find((k) => !known.includes(k));
        if (unknown !== undefined)
          throw new HttpProblem(
            400,
            `unknown parameter ${JSON.stringify(unknown)}; known: ${known.join(', ')}`,
          );
        const cursor = q.get('cursor');
        return send(
          res,
          200,
          await sagas.list(parseSagaFilter(q.get('type'), q.get('status')), {
            limit: parseLimit(q.get('limit')),
            ...(cursor ? { cursor } : {}),
          }),
        );
      }
      if ([...q.keys()].length > 0) throw new HttpProblem(400, `${path} takes no query parameters`);
      if (path === '/api/saga-types') return send(res, 200, await sagas.summary());
      if (one && !one[2]) return send(res, 200, await sagas.detail(decode(one[1]!)));
      throw new HttpProblem(404, `no such endpoint: ${method} ${path}`);
    }
    if (method !== 'POST')
      throw new HttpProblem(405, `${method} is not supported here; the API uses GET and POST`);
    if ([...q.keys()].length > 0) throw new HttpProblem(400, `${path} takes no query parameters`);
    if (!one?.[2]) throw new HttpProblem(404, `no such endpoint: ${method} ${path}`);
    const who = guard(req);
    const body = await readJson(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new HttpProblem(400, 'body must be a JSON object');
    const { reason, ...rest } = body as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined)
      throw new HttpProblem(
        400,
        `unknown field ${JSON.stringify(extra)}; known: ${one[2] === 'abort' ? 'reason' : 'none'}`,
      );
    if (reason !== undefined && (one[2] !== 'abort' || typeof reason !== 'string' || reason.length > 500))
      throw new HttpProblem(400, '`reason` is a string of at most 500 characters, for abort only');
    const id = decode(one[1]!);
    return send(
      res,
      200,
      one[2] === 'retry'
        ? await sagas.retry(id, who)
        : await sagas.abort(id, reason as string | undefined, who),
    );
  };

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      send(res, 400, { error: 'malformed URL' });
      return;
    }
    let path = url.pathname;
    if (base) {
      if (path === base) {
        res.writeHead(308, { location: `${base}/${url.search}` });
        res.end();
        return;
      }
      if (!path.startsWith(`${base}/`)) {
        if (next) next();
        else send(res, 404, { error: `no such endpoint: ${path}` });
        return;
      }
      path = path.slice(base.length);
    }
    if (path === '') path = '/';
    route(req, res, path, url)
      .then((served) => {
        if (served) return;
        if (next) next();
        else send(res, 404, { error: `no such endpoint: ${req.method} ${path}` });
      })
      .catch((err: unknown) => {
        const e = toError(err);
        const status = err instanceof HttpProblem ? err.status : err instanceof ConfigError ? 400 : 500;
        if (res.headersSent) {
          res.end();
          return;
        }
        send(res, status, {
          error: e.message,
          ...(err instanceof HttpProblem && err.details !== undefined ? { details: err.details } : {}),
          ...(err instanceof HeraldError ? { code: err.code } : {}),
        });
      });
  }) as ConsoleHandler;
  Object.defineProperties(handler, {
    token: { value: token },
    service: { value: service },
    close: {
      value: () => {
        if (ticker) clearInterval(ticker);
        ticker = undefined;
        for (const s of streams) s.end();
        streams.clear();
        service.close();
      },
    },
  });
  return handler;
}

function send(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...SECURITY_HEADERS,
  });
  res.end(JSON.stringify(body));
  return true;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpProblem(400, 'malformed entry id in the path');
  }
}

function orderParam(raw: string | null): boolean {
  if (raw === null || raw === '' || raw === 'oldest') return false;
  if (raw === 'newest') return true;
  throw new HttpProblem(400, 'order must be oldest or newest');
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    res.once('drain', resolve);
    res.once('close', resolve);
  });
}
