/**
 * `@grpc/grpc-js` interceptors feeding `grpc_requests_total` and `grpc_request_duration_seconds`
 * (see {@link GrpcMetrics} in `herald/observability`).
 */
import {
  InterceptingCall,
  ResponderBuilder,
  ServerInterceptingCall,
  status as Status,
  type Interceptor,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { GrpcMetrics } from '../../observability/rpc.js';

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

function codeName(code: number): string {
  return CODE_NAMES[code] ?? 'UNKNOWN';
}

/** Client interceptor: `new Client(addr, creds, { interceptors: [grpcClientMetrics(obs.grpc)] })`. */
export function grpcClientMetrics(metrics: GrpcMetrics): Interceptor {
  return (options, nextCall) => {
    const method = options.method_definition.path;
    const started = process.hrtime.bigint();
    return new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            metrics.record(
              'client',
              method,
              codeName(status.code),
              Number(process.hrtime.bigint() - started) / 1e9,
            );
            nextStatus(status);
          },
        });
      },
    });
  };
}

/** Server interceptor: `new Server({ interceptors: [grpcServerMetrics(obs.grpc)] })`. */
export function grpcServerMetrics(metrics: GrpcMetrics): ServerInterceptor {
  return (methodDescriptor, call) => {
    const started = process.hrtime.bigint();
    const responder = new ResponderBuilder()
      .withSendStatus((status, next) => {
        metrics.record(
          'server',
          methodDescriptor.path,
          codeName(status.code),
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        next(status);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
