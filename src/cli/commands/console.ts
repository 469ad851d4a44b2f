import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { consoleHandler } from '../../console/index.js';
import {
  COMMON_OPTIONS,
  EXIT,
  flag,
  numberOption,
  parseCommand,
  stringOption,
  transportChoice,
  type OptionSpecs,
} from '../args.js';
import { withHerald, type Command } from '../command.js';
import { backends } from '../../backends/index.js';
import { ConfigError } from '../../contracts/errors.js';
import type { SagaStore } from '../../saga/store.js';

const options = {
  port: {
    type: 'string',
    short: 'p',
    env: 'HERALD_PORT',
    arg: '<port>',
    help: 'HTTP port (default 7080; 0 = any free port)',
  },
  host: {
    type: 'string',
    env: 'HERALD_CONSOLE_HOST',
    arg: '<host>',
    help: 'address to listen on (default 127.0.0.1; 0.0.0.0 in a container)',
  },
  'read-only': { type: 'boolean', help: 'refuse every replay and purge' },
  token: {
    type: 'string',
    env: 'HERALD_CONSOLE_TOKEN',
    arg: '<token>',
    help: 'bearer token for replays and purges (default: generated and printed once)',
  },
  mask: {
    type: 'string',
    arg: '<fields>',
    help: 'comma-separated payload fields to mask, e.g. email,customer.phone',
  },
  'trace-url': {
    type: 'string',
    arg: '<url>',
    help: 'trace UI link with {traceId}, e.g. http://localhost:16686/trace/{traceId}',
  },
  'audit-file': { type: 'string', arg: '<file>', help: 'also append the audit log to this JSON-lines file' },
} as const satisfies OptionSpecs;

export const consoleCommand: Command = {
  name: 'console',
  summary: 'Serve the web console (overview, dead letters, replay, audit) for a transport.',
  usage: [
    'herald console [--transport <url>] [--port <port>] [--read-only] [--token <token>] [--mask <fields>]',
  ],
  options,
  details: [
    'Open the printed URL; it carries the token in its #fragment, which the browser never sends.',
    'Reads need no token; replays and purges do. Ctrl-C stops.',
    '',
    'Examples:',
    '  herald console --transport sqlite://.herald/events.db',
    '  herald console --transport redis://127.0.0.1:6379 --read-only',
  ].join('\n'),
  async run(argv, io) {
    const { values } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env);
    const port = numberOption(values, 'port', 7080, { min: 0, integer: true });
    const host = stringOption(values, 'host') ?? '127.0.0.1';
    const readOnly = flag(values, 'read-only');
    const token = stringOption(values, 'token');
    const mask = stringOption(values, 'mask');
    const traceUrl = stringOption(values, 'trace-url');
    const auditFile = stringOption(values, 'audit-file');
    await withHerald(values, io, async (herald, opened) => {
      // The Sagas view, where the backend keeps sagas (a backend without a saga store has none).
      const sagas = await backends
        .openSagaStore((await transportChoice(values, io.env)).url, { mustExist: true })
        .catch((err: unknown): SagaStore | undefined => {
          if (err instanceof ConfigError) return undefined;
          throw err;
        });
      const handler = consoleHandler({
        herald,
        ...(sagas ? { sagas } : {}),
        title: `Herald · ${opened.backend}`,
        readOnly,
        ...(token ? { token } : {}),
        ...(mask ? { mask: mask.split(',').map((s) => s.trim()) } : {}),
        ...(traceUrl ? { traceUrl } : {}),
        ...(auditFile ? { auditFile } : {}),
      });
      const server = createServer(handler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, resolve);
      });
      const address = server.address() as AddressInfo;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`;
      io.stderr.write(
        `herald console: serving ${url} for ${opened.backend}${readOnly ? ' (read-only)' : ''}\n`,
      );
      if (!readOnly)
        io.stderr.write(
          token
            ? 'herald console: replays and purges need the configured token\n'
            : `herald console: token (shown once): ${handler.token}\n`,
        );
      io.stdout.write(`${readOnly || token ? url : `${url}#token=${handler.token}`}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await sagas?.close();
    });
    return EXIT.ok;
  },
};
