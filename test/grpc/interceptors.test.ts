import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  breakerInterceptor,
  deadlineInterceptor,
  retryInterceptor,
  type GrpcCallEvent,
} from '../../src/grpc/index.js';
import { CircuitBreaker } from '../../src/resilience/index.js';

interface SayRequest {
  text: string;
  failTimes?: number;
  key?: string;
  failCode?: number;
  delayMs?: number;
}
interface SayReply {
  text: string;
  attempts: number;
}
type EchoClient = grpc.Client & {
  say(
    req: SayRequest,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: SayReply) => void,
  ): grpc.ClientUnaryCall;
};
type EchoCtor = new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => EchoClient;

const here = path.dirname(fileURLToPath(import.meta.url));
const definition = protoLoader.loadSync(path.join(here, 'echo.proto'), { keepCase: false, defaults: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  herald: { test: { Echo: EchoCtor & { service: grpc.ServiceDefinition } } };
};
const Echo = pkg.herald.test.Echo;

function call(client: EchoClient, req: SayRequest, options: grpc.CallOptions = {}): Promise<SayReply> {
  return new Promise((resolve, reject) => {
    client.say(req, options, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

describe('gRPC interceptors against a real server', () => {
  const server = new grpc.Server();
  const seen = new Map<string, number>();
  let hits = 0;
  let address = '';

  before(async () => {
    server.addService(Echo.service, {
      say: (c: grpc.ServerUnaryCall<SayRequest, SayReply>, cb: grpc.sendUnaryData<SayReply>) => {
        hits++;
        const { text, failTimes = 0, key = '', delayMs = 0 } = c.request;
        // proto3 defaults absent fields to 0, which is OK: treat 0 as "not set".
        const failCode = c.request.failCode || grpc.status.UNAVAILABLE;
        const n = (seen.get(key) ?? 0) + 1;
        seen.set(key, n);
        setTimeout(() => {
          if (n <= failTimes) cb({ code: failCode, details: `failing ${n}/${failTimes}` });
          else cb(null, { text: `echo ${text}`, attempts: n });
        }, delayMs);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  after(() => server.forceShutdown());

  const client = (interceptors: grpc.Interceptor[]): EchoClient =>
    new Echo(address, grpc.credentials.createInsecure(), { interceptors });

  test('retry interceptor retries UNAVAILABLE and delivers the final response', async () => {
    const events: GrpcCallEvent[] = [];
    const c = client([retryInterceptor({ initialDelayMs: 1, maxDelayMs: 5, onCall: (e) => events.push(e) })]);
    try {
      const res = await call(c, { text: 'hi', failTimes: 2, key: 'retry-ok' });
      assert.deepEqual(res, { text: 'echo hi', attempts: 3 });
      assert.deepEqual(
        events.map((e) => [e.attempt, grpc.status[e.code]]),
        [
          [1, 'UNAVAILABLE'],
          [2, 'UNAVAILABLE'],
          [3, 'OK'],
        ],
      );
    } finally {
      c.close();
    }
  });

  test('retry interceptor gives up after maxRetries and does not retry other codes', async () => {
    const c = client([retryInterceptor({ maxRetries: 1, initialDelayMs: 1 })]);
    try {
      await assert.rejects(
        call(c, { text: 'x', failTimes: 5, key: 'retry-exhaust' }),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
      );
      assert.equal(seen.get('retry-exhaust'), 2);
      await assert.rejects(
        call(c, { text: 'x', failTimes: 5, key: 'retry-invalid', failCode: grpc.status.INVALID_ARGUMENT }),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
      );
      assert.equal(seen.get('retry-invalid'), 1);
    } finally {
      c.close();
    }
  });

  test('breaker interceptor opens on failures and short-circuits with UNAVAILABLE without a request', async () => {
    const breaker = new CircuitBreaker({ minimumCalls: 2, failureThreshold: 2, openDurationMs: 60_000 });
    const c = client([breakerInterceptor(breaker)]);
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          call(c, { text: 'x', failTimes: 99, key: 'breaker', failCode: grpc.status.INTERNAL }),
        );
      }
      assert.equal(breaker.state, 'open');
      const before = hits;
      await assert.rejects(
        call(c, { text: 'x', key: 'breaker' }),
        (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE && /open/.test(e.details),
      );
      assert.equal(hits, before, 'the open breaker kept the call off the network');
    } finally {
      c.close();
    }
  });

  test('application errors do not count against the breaker', async () => {
    const breaker = new CircuitBreaker({ minimumCalls: 2, failureThreshold: 2 });
    const c = client([breakerInterceptor(breaker)]);
    try {
      for (let i = 0; i < 4; i++) {
        await assert.rejects(
          call(c, { text: 'x', failTimes: 99, key: 'app', failCode: grpc.status.NOT_FOUND }),
        );
      }
      assert.equal(breaker.state, 'closed');
      assert.equal((await call(c, { text: 'ok', key: 'fresh' })).text, 'echo ok');
    } finally {
      c.close();
    }
  });

  test('deadline interceptor bounds slow calls with DEADLINE_EXCEEDED, and the breaker counts them', async () => {
    const breaker = new CircuitBreaker({ minimumCalls: 1, failureThreshold: 1 });
    const c = client([deadlineInterceptor(50), breakerInterceptor(breaker)]);
    try {
      await assert.rejects(
        call(c, { text: 'slow', key: 'slow', delayMs: 300 }),
        (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED,
      );
      assert.equal(breaker.state, 'open');
    } finally {
      c.close();
    }
  });

  test('composed: deadline → retry → breaker; each attempt passes the breaker', async () => {
    const breaker = new CircuitBreaker({
      minimumCalls: 10,
      failureThreshold: 10,
      window: { type: 'count', size: 10 },
    });
    const c = client([
      deadlineInterceptor(5_000),
      retryInterceptor({ initialDelayMs: 1, maxDelayMs: 2 }),
      breakerInterceptor(breaker),
    ]);
    try {
      const res = await call(c, { text: 'z', failTimes: 2, key: 'composed' });
      assert.equal(res.attempts, 3);
      assert.deepEqual(breaker.stats, { calls: 3, failures: 2, slow: 0 });
    } finally {
      c.close();
    }
  });

  test('bad config fails fast', () => {
    assert.throws(() => deadlineInterceptor(0), /deadlineInterceptor: ms must be a number > 0/);
    assert.throws(() => retryInterceptor({ maxRetries: -1 }), /maxRetries/);
  });
});
