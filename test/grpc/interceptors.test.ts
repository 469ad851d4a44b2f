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
} from '../../src/adapters/grpc/index.js';
import { CircuitBreaker } from '../../src/resilience/index.js';

interface SayRequest {
  text: string;
  failTimes?: number;
  key?: string;
  failCode?: number;
  delayMs?: number;
  count?: number;
  failAfter?: number;
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
  count(req: SayRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<SayReply>;
  collect(
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: SayReply) => void,
  ): grpc.ClientWritableStream<SayRequest>;
  chat(options?: grpc.CallOptions): grpc.ClientDuplexStream<SayRequest, SayReply>;
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

interface StreamResult {
  messages: SayReply[];
  metadata: grpc.Metadata | undefined;
  error: grpc.ServiceError | undefined;
  status: grpc.StatusObject;
}

/** Reads a response stream to its end: every message, the metadata, the error and the final status. */
function readStream(call: grpc.ClientReadableStream<SayReply>): Promise<StreamResult> {
  return new Promise((resolve) => {
    const messages: SayReply[] = [];
    let metadata: grpc.Metadata | undefined;
    let error: grpc.ServiceError | undefined;
    let status: grpc.StatusObject | undefined;
    let ended = false;
    // 'status' can come before buffered messages are emitted; 'end' comes after the last one.
    const done = () => {
      if (ended && status) resolve({ messages, metadata, error, status });
    };
    call.on('metadata', (m: grpc.Metadata) => (metadata = m));
    call.on('data', (m: SayReply) => messages.push(m));
    call.on('error', (e: grpc.ServiceError) => (error = e));
    call.on('end', () => {
      ended = true;
      done();
    });
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      done();
    });
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
      count: (c: grpc.ServerWritableStream<SayRequest, SayReply>) => {
        const { text, failTimes = 0, key = '', count = 0, failAfter = 0 } = c.request;
        const failCode = c.request.failCode || grpc.status.UNAVAILABLE;
        const { n, fails } = arrive(key, failTimes);
        const headers = new grpc.Metadata();
        headers.set('x-attempt', String(n));
        c.sendMetadata(headers);
        if (fails) {
          c.emit('error', { code: failCode, details: `failing ${n}/${failTimes}` });
          return;
        }
        for (let i = 0; i < count; i++) {
          if (failAfter > 0 && i === failAfter) {
            c.emit('error', { code: failCode, details: `failing after ${failAfter} replies` });
            return;
          }
          c.write({ text: `${text} ${i}`, attempts: n });
        }
        c.end();
      },
      collect: (c: grpc.ServerReadableStream<SayRequest, SayReply>, cb: grpc.sendUnaryData<SayReply>) => {
        const texts: string[] = [];
        let first: SayRequest | undefined;
        c.on('data', (m: SayRequest) => {
          first ??= m;
          texts.push(m.text);
        });
        c.on('end', () => {
          const { n, fails } = arrive(first?.key ?? '', first?.failTimes ?? 0);
          if (fails) cb({ code: grpc.status.UNAVAILABLE, details: 'failing' });
          else cb(null, { text: texts.join(','), attempts: n });
        });
      },
      chat: (c: grpc.ServerDuplexStream<SayRequest, SayReply>) => {
        let n = 0;
        c.on('data', (m: SayRequest) => {
          if (n === 0) {
            const a = arrive(m.key ?? '', m.failTimes ?? 0);
            n = a.n;
            if (a.fails) {
              c.emit('error', { code: grpc.status.UNAVAILABLE, details: 'failing' });
              return;
            }
          }
          c.write({ text: `echo ${m.text}`, attempts: n });
        });
        c.on('end', () => c.end());
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

  /** Counts a call for `key` and tells whether it should fail (the first `failTimes` do). */
  const arrive = (key: string, failTimes: number): { n: number; fails: boolean } => {
    hits++;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return { n, fails: n <= failTimes };
  };

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
    assert.throws(() => deadlineInterceptor(0), /deadlineInterceptor.ms: must be a number > 0/);
    assert.throws(() => retryInterceptor({ maxRetries: -1 }), /maxRetries/);
  });

  describe('server-streaming retry', () => {
    test(
      'retries UNAVAILABLE before the first message and delivers the final attempt once, in order',
      { timeout: 10_000 },
      async () => {
        const events: GrpcCallEvent[] = [];
        const c = client([
          retryInterceptor({ initialDelayMs: 1, maxDelayMs: 5, onCall: (e) => events.push(e) }),
        ]);
        try {
          const r = await readStream(c.count({ text: 'n', failTimes: 2, key: 'stream-ok', count: 50 }));
          assert.equal(r.error, undefined);
          assert.equal(r.status.code, grpc.status.OK);
          assert.deepEqual(
            r.messages.map((m) => m.text),
            Array.from({ length: 50 }, (_, i) => `n ${i}`),
          );
          assert.ok(r.messages.every((m) => m.attempts === 3));
          assert.deepEqual(r.metadata?.get('x-attempt'), ['3'], 'headers of failed attempts are dropped');
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
      },
    );

    test(
      'once a message was delivered, a retryable status passes through un-retried',
      { timeout: 10_000 },
      async () => {
        const c = client([retryInterceptor({ initialDelayMs: 1 })]);
        try {
          const r = await readStream(c.count({ text: 'm', key: 'stream-commit', count: 5, failAfter: 2 }));
          assert.deepEqual(
            r.messages.map((m) => m.text),
            ['m 0', 'm 1'],
          );
          assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
          assert.equal(seen.get('stream-commit'), 1, 'no second attempt replayed messages');
        } finally {
          c.close();
        }
      },
    );

    test('gives up after maxRetries, and does not retry other codes', { timeout: 10_000 }, async () => {
      const c = client([retryInterceptor({ maxRetries: 1, initialDelayMs: 1 })]);
      try {
        const exhausted = await readStream(
          c.count({ text: 'x', failTimes: 5, key: 'stream-exhaust', count: 1 }),
        );
        assert.equal(exhausted.error?.code, grpc.status.UNAVAILABLE);
        assert.deepEqual(exhausted.messages, []);
        assert.equal(seen.get('stream-exhaust'), 2);
        assert.deepEqual(
          exhausted.metadata?.get('x-attempt'),
          ['2'],
          'the final attempt headers are delivered',
        );
        const invalid = await readStream(
          c.count({
            text: 'x',
            failTimes: 5,
            key: 'stream-invalid',
            failCode: grpc.status.INVALID_ARGUMENT,
            count: 1,
          }),
        );
        assert.equal(invalid.error?.code, grpc.status.INVALID_ARGUMENT);
        assert.equal(seen.get('stream-invalid'), 1);
      } finally {
        c.close();
      }
    });

    test('an empty stream that succeeds ends with OK and its headers', { timeout: 10_000 }, async () => {
      const c = client([retryInterceptor({ initialDelayMs: 1 })]);
      try {
        const r = await readStream(c.count({ text: 'e', failTimes: 1, key: 'stream-empty', count: 0 }));
        assert.equal(r.status.code, grpc.status.OK);
        assert.deepEqual(r.messages, []);
        assert.deepEqual(r.metadata?.get('x-attempt'), ['2']);
      } finally {
        c.close();
      }
    });

    test('every attempt passes the breaker', { timeout: 10_000 }, async () => {
      const breaker = new CircuitBreaker({ minimumCalls: 10, failureThreshold: 10 });
      const c = client([
        deadlineInterceptor(5_000),
        retryInterceptor({ initialDelayMs: 1, maxDelayMs: 2 }),
        breakerInterceptor(breaker),
      ]);
      try {
        const r = await readStream(c.count({ text: 'b', failTimes: 2, key: 'stream-breaker', count: 2 }));
        assert.equal(r.messages.length, 2);
        assert.deepEqual(breaker.stats, { calls: 3, failures: 2, slow: 0 });
      } finally {
        c.close();
      }
    });

    test(
      'a backoff delay that would outlast the deadline is not waited out',
      { timeout: 5_000 },
      async () => {
        const c = client([
          deadlineInterceptor(2_000),
          retryInterceptor({ initialDelayMs: 30_000, maxDelayMs: 30_000, jitter: 'none' }),
        ]);
        try {
          const r = await readStream(c.count({ text: 'd', failTimes: 5, key: 'stream-deadline', count: 1 }));
          assert.equal(r.error?.code, grpc.status.UNAVAILABLE, 'the last status, at once');
          assert.equal(seen.get('stream-deadline'), 1);
          await assert.rejects(
            call(c, { text: 'd', failTimes: 5, key: 'unary-deadline' }),
            (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
          );
          assert.equal(seen.get('unary-deadline'), 1);
        } finally {
          c.close();
        }
      },
    );
  });

  describe('cancellation', () => {
    // A first attempt that fails, then a backoff long enough that only a cancel can end the call.
    let attemptFailed: () => void = () => {};
    const firstFailure = () => new Promise<void>((resolve) => (attemptFailed = resolve));
    const slowRetry = () =>
      retryInterceptor({
        initialDelayMs: 60_000,
        maxDelayMs: 60_000,
        jitter: 'none',
        onCall: () => attemptFailed(),
      });

    test(
      'cancelling a stream during the backoff delay ends it with CANCELLED, with no new attempt',
      { timeout: 10_000 },
      async () => {
        const failed = firstFailure();
        const c = client([slowRetry()]);
        try {
          const call = c.count({ text: 'c', failTimes: 5, key: 'stream-cancel', count: 1 });
          const result = readStream(call);
          await failed;
          call.cancel();
          const r = await result;
          assert.equal(r.error?.code, grpc.status.CANCELLED);
          assert.equal(seen.get('stream-cancel'), 1);
        } finally {
          c.close();
        }
      },
    );

    test(
      'cancelling a unary call during the backoff delay ends it with CANCELLED',
      { timeout: 10_000 },
      async () => {
        const failed = firstFailure();
        const c = client([slowRetry()]);
        try {
          let unary!: grpc.ClientUnaryCall;
          const result = new Promise<grpc.ServiceError | null>((resolve) => {
            unary = c.say({ text: 'c', failTimes: 5, key: 'unary-cancel' }, {}, (err) => resolve(err));
          });
          await failed;
          unary.cancel();
          assert.equal((await result)?.code, grpc.status.CANCELLED);
          assert.equal(seen.get('unary-cancel'), 1);
        } finally {
          c.close();
        }
      },
    );
  });

  describe('client-streaming and bidirectional calls are not retried', () => {
    test('client streaming: the first UNAVAILABLE reaches the caller', { timeout: 10_000 }, async () => {
      const c = client([retryInterceptor({ initialDelayMs: 1 })]);
      try {
        const err = await new Promise<grpc.ServiceError | null>((resolve) => {
          const call = c.collect({}, (e) => resolve(e));
          call.write({ text: 'a', key: 'collect', failTimes: 1 });
          call.write({ text: 'b' });
          call.end();
        });
        assert.equal(err?.code, grpc.status.UNAVAILABLE);
        assert.equal(seen.get('collect'), 1);
        const ok = await new Promise<SayReply | undefined>((resolve, reject) => {
          const call = c.collect({}, (e, res) => (e ? reject(e) : resolve(res)));
          call.write({ text: 'a', key: 'collect', failTimes: 1 });
          call.write({ text: 'b' });
          call.end();
        });
        assert.deepEqual(ok, { text: 'a,b', attempts: 2 }, 'streams still flow through the interceptor');
      } finally {
        c.close();
      }
    });

    test('bidirectional: the first UNAVAILABLE reaches the caller', { timeout: 10_000 }, async () => {
      const c = client([retryInterceptor({ initialDelayMs: 1 })]);
      try {
        const call = c.chat();
        const done = readStream(call);
        call.write({ text: 'hi', key: 'chat', failTimes: 1 });
        call.end();
        const r = await done;
        assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
        assert.equal(seen.get('chat'), 1);
      } finally {
        c.close();
      }
    });
  });
});
