import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { HttpClient, parseRetryAfter, type HttpAttemptEvent } from '../../src/http/index.js';
import { BrokenCircuitError, TimeoutError } from '../../src/resilience/index.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(
  handler: Handler,
): Promise<{ url: string; close: () => Promise<void>; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Replies with the given statuses in turn (the last one repeats). */
function sequence(...statuses: [number, Record<string, string>?][]): Handler {
  let i = 0;
  return (_req, res) => {
    const [status, headers] = statuses[Math.min(i++, statuses.length - 1)]!;
    res.writeHead(status, headers).end(String(status));
  };
}

const fast = { initialDelayMs: 1, maxDelayMs: 5 };

describe('HttpClient', () => {
  test('retries idempotent requests on retryable statuses and returns the success', async () => {
    const srv = await serve(sequence([503], [502], [200]));
    try {
      const client = new HttpClient({ baseUrl: srv.url, retry: fast });
      const events: HttpAttemptEvent[] = [];
      client.onAttempt((e) => events.push(e));
      const res = await client.get('/x');
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '200');
      assert.equal(srv.hits(), 3);
      assert.deepEqual(
        events.map((e) => [e.attempt, e.status]),
        [
          [1, 503],
          [2, 502],
          [3, 200],
        ],
      );
    } finally {
      await srv.close();
    }
  });

  test('does not retry POST, nor non-retryable statuses; idempotent: true opts a POST in', async () => {
    const srv = await serve(sequence([503], [200]));
    try {
      const client = new HttpClient({ baseUrl: srv.url, retry: fast });
      assert.equal((await client.post('/x', 'body')).status, 503);
      assert.equal(srv.hits(), 1);
      assert.equal((await client.post('/x', 'body', { idempotent: true })).status, 200);
    } finally {
      await srv.close();
    }
    const notFound = await serve(sequence([404]));
    try {
      const res = await new HttpClient({ retry: fast }).get(`${notFound.url}/missing`);
      assert.equal(res.status, 404);
      assert.equal(notFound.hits(), 1);
    } finally {
      await notFound.close();
    }
  });

  test('returns the last retryable response when retries run out', async () => {
    const srv = await serve(sequence([503]));
    try {
      const res = await new HttpClient({ retry: { ...fast, maxRetries: 2 }, breaker: false }).get(srv.url);
      assert.equal(res.status, 503);
      assert.equal(srv.hits(), 3);
    } finally {
      await srv.close();
    }
  });

  test('honours Retry-After, and gives up when it is longer than maxRetryAfterMs', async () => {
    assert.equal(parseRetryAfter('3'), 3_000);
    assert.equal(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now())! > 8_000, true);
    assert.equal(parseRetryAfter('soon'), undefined);
    const srv = await serve(sequence([429, { 'retry-after': '0' }], [200]));
    try {
      const client = new HttpClient({ retry: { initialDelayMs: 5_000, maxDelayMs: 5_000 } });
      const res = await client.get(srv.url);
      assert.equal(res.status, 200, 'Retry-After: 0 overrode the 5 s backoff');
    } finally {
      await srv.close();
    }
    const long = await serve(sequence([503, { 'retry-after': '120' }], [200]));
    try {
      const res = await new HttpClient({ retry: fast }).get(long.url);
      assert.equal(res.status, 503);
      assert.equal(long.hits(), 1);
    } finally {
      await long.close();
    }
  });

  test('per-host breaker opens on 5xx for that host only', async () => {
    const bad = await serve(sequence([500]));
    const good = await serve(sequence([200]));
    try {
      const client = new HttpClient({
        retry: false,
        breaker: { minimumCalls: 2, failureThreshold: 2, openDurationMs: 60_000 },
      });
      await client.get(bad.url);
      await client.get(bad.url);
      await assert.rejects(client.get(bad.url), BrokenCircuitError);
      assert.equal(bad.hits(), 2);
      assert.equal((await client.get(good.url)).status, 200);
      assert.equal(client.breakerFor(new URL(bad.url).host)?.state, 'open');
      assert.equal(client.breakerFor(new URL(good.url).host)?.state, 'closed');
    } finally {
      await bad.close();
      await good.close();
    }
  });

  test('times out a hanging server with TimeoutError and aborts the request', async () => {
    const srv = await serve(() => {
      /* never answers */
    });
    try {
      const client = new HttpClient({ timeoutMs: 30, retry: false });
      await assert.rejects(client.get(srv.url), TimeoutError);
    } finally {
      await srv.close();
    }
  });

  test('the caller signal cancels the request without retrying', async () => {
    const ac = new AbortController();
    // Abort once the server holds the request, so the test does not depend on timing.
    const srv = await serve(() => ac.abort(new Error('user navigated away')));
    try {
      const client = new HttpClient({ timeoutMs: false, retry: fast });
      await assert.rejects(client.get(srv.url, { signal: ac.signal }), /user navigated away/);
      assert.equal(srv.hits(), 1);
    } finally {
      await srv.close();
    }
  });

  describe('trace context', () => {
    const manager = new AsyncLocalStorageContextManager();
    before(() => {
      context.setGlobalContextManager(manager.enable());
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    });
    after(() => {
      propagation.disable();
      context.disable();
    });

    test('injects traceparent from the active context', async () => {
      let traceparent: string | undefined;
      const srv = await serve((req, res) => {
        traceparent = req.headers.traceparent as string | undefined;
        res.end('ok');
      });
      try {
        const spanContext = {
          traceId: '0af7651916cd43dd8448eb211c80319c',
          spanId: 'b7ad6b7169203331',
          traceFlags: TraceFlags.SAMPLED,
        };
        const ctx = trace.setSpanContext(context.active(), spanContext);
        await context.with(ctx, () => new HttpClient().get(srv.url));
        assert.equal(traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      } finally {
        await srv.close();
      }
    });
  });

  test('bad config fails at construction', () => {
    assert.throws(() => new HttpClient({ timeoutMs: 0 }), /Timeout.timeoutMs: must be a number > 0/);
    assert.throws(() => new HttpClient({ breaker: { halfOpenMaxCalls: 0 } }), /halfOpenMaxCalls/);
    assert.throws(() => new HttpClient({ maxHosts: 0 }), /maxHosts/);
  });
});
