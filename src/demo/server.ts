import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** Answers one path; may be async. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface DemoServer {
  /** `http://127.0.0.1:<port>` (the real port when 0 was asked for). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The demo's one HTTP port. Routes are exact paths (`/status`, `/metrics`, `/live`, ...); `/`
 * lists them. Anything else is a 404 with a hint, never a crash.
 */
export async function startDemoServer(
  routes: Readonly<Record<string, RouteHandler>>,
  options: {
    port: number;
    host?: string;
    /** Wraps the request listener, e.g. with HTTP metrics middleware. */
    wrap?: (listener: RequestListener) => RequestListener;
  },
): Promise<DemoServer> {
  const listener: RequestListener = (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = routes[path];
    if (path === '/' && !route) {
      sendJson(res, 200, { endpoints: Object.keys(routes) });
      return;
    }
    if (!route || req.method !== 'GET') {
      sendJson(res, 404, {
        error: `no such endpoint: ${req.method} ${path}`,
        endpoints: Object.keys(routes),
      });
      return;
    }
    Promise.resolve()
      .then(() => route(req, res))
      .catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: (err as Error).message });
        else res.end();
      });
  };
  const server: Server = createServer(options.wrap ? options.wrap(listener) : listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`${text}\n`);
}
