import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { grpcClientMetrics, grpcServerMetrics } from '../../src/adapters/grpc/index.js';
import { createObservability } from '../../src/observability/index.js';
import { metricValue } from './helpers.js';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown,
};
const service: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

describe('gRPC metrics interceptors', () => {
  test('server and client calls are counted by method and status code', async () => {
    const registry = new Registry();
    const obs = createObservability({ serviceName: 'svc-grpc', metrics: { registry }, logging: false });
    const server = new grpc.Server({ interceptors: [grpcServerMetrics(obs.grpc!)] });
    server.addService(service, {
      Echo: (call: grpc.ServerUnaryCall<{ fail?: boolean }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        call.request.fail ? cb({ code: grpc.status.NOT_FOUND, details: 'nope' }) : cb(null, call.request),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const Client = grpc.makeGenericClientConstructor(service, 'Echo');
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      interceptors: [grpcClientMetrics(obs.grpc!)],
    });
    const echo = (req: object): Promise<unknown> =>
      new Promise((resolve) =>
        (client as unknown as Record<string, (r: object, cb: (e: unknown, v: unknown) => void) => void>)
          .Echo!(req, (e, v) => resolve(e ?? v)),
      );
    await echo({ a: 1 });
    await echo({ a: 2 });
    await echo({ fail: true });
    client.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    const labels = { service: 'svc-grpc', method: '/test.Echo/Echo' };
    assert.equal(
      await metricValue(registry, 'grpc_requests_total', { ...labels, side: 'server', status: 'OK' }),
      2,
    );
    assert.equal(
      await metricValue(registry, 'grpc_requests_total', { ...labels, side: 'server', status: 'NOT_FOUND' }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'grpc_requests_total', { ...labels, side: 'client', status: 'OK' }),
      2,
    );
    assert.equal(
      await metricValue(registry, 'grpc_requests_total', { ...labels, side: 'client', status: 'NOT_FOUND' }),
      1,
    );
    assert.equal(
      await metricValue(registry, 'grpc_request_duration_seconds', { ...labels, side: 'client' }, '_count'),
      3,
    );
  });
});
