import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { backends, type OpenedBackend } from '../../src/backends/index.js';
import { consoleHandler, type ConsoleHandler, type ConsoleHandlerOptions } from '../../src/console/index.js';
import { defineEvent } from '../../src/core/event.js';
import { createHerald, type Herald } from '../../src/core/herald.js';
import { silentLogger } from '../../src/core/logger.js';
import type { SagaStore } from '../../src/saga/store.js';

export const InvoiceRequested = defineEvent('billing.invoice.requested', {
  schema: z.object({ orderId: z.string().min(1), amount: z.number().positive(), email: z.string() }),
});

/**
 * A SQLite-backed Herald with one consumer whose handler is broken until `fix()`; the console is
 * served on a free port.
 */
export interface Harness {
  readonly herald: Herald;
  readonly opened: OpenedBackend;
  readonly handler: ConsoleHandler;
  readonly url: string;
  readonly handled: Set<string>;
  /** The console's saga store (the same SQLite file), when started with `{ sagas: true }`. */
  readonly sagas?: SagaStore;
  readonly dir: string;
  fix(): void;
  publish(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(
  options: Partial<ConsoleHandlerOptions> = {},
  extra: { sagas?: boolean } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-console-'));
  const opened = await backends.open(`sqlite://${join(dir, 'events.db')}`, { mustExist: false });
  const sagas = extra.sagas ? await backends.openSagaStore(`sqlite://${join(dir, 'events.db')}`) : undefined;
  const herald = await createHerald({
    service: 'billing',
    transport: opened.transport,
    stores: { deadLetters: opened.stores.deadLetters! },
    logger: silentLogger,
    closeResources: false,
    drainTimeoutMs: 500,
  });
  let broken = true;
  const handled = new Set<string>();
  herald.subscribe({
    group: 'invoicing',
    events: [InvoiceRequested],
    retry: { maxAttempts: 2, initialDelayMs: 10, jitter: false },
    handler: (event) => {
      if (broken) throw new Error(`Customer record for order ${event.payload.orderId} not found (tenant 42)`);
      handled.add(event.payload.orderId);
    },
  });
  await herald.start();
  const handler = consoleHandler({
    herald,
    events: [InvoiceRequested],
    mask: ['email'],
    ...(sagas ? { sagas } : {}),
    ...options,
  });
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let published = 0;
  return {
    herald,
    opened,
    handler,
    url,
    handled,
    ...(sagas ? { sagas } : {}),
    dir,
    fix: () => void (broken = false),
    publish: async (n) => {
      for (let i = 0; i < n; i++) {
        const k = published++;
        await herald.publish(
          InvoiceRequested,
          { orderId: `ord-${1000 + k}`, amount: 10 + k, email: `customer${k}@example.com` },
          { aggregateId: `customer-${k % 5}` },
        );
      }
    },
    close: async () => {
      handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await herald.stop();
      await sagas?.close().catch(() => undefined);
      await opened.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One admin API call; `json` is {} when the answer is not JSON (page, assets, export). */
export async function call(
  h: Harness,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(new URL(path, h.url), {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

/** The bearer header of the harness's token. */
export const auth = (h: Harness): Record<string, string> => ({ authorization: `Bearer ${h.handler.token}` });
