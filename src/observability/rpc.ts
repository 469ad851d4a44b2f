import { Counter, Histogram, type Registry } from 'prom-client';
import { BoundedLabel } from './labels.js';

/** Seed buckets for gRPC durations, in seconds (1 ms .. 1 s). */
export const GRPC_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export interface GrpcMetricsOptions {
  readonly registry: Registry;
  readonly serviceName: string;
  readonly labelCap?: number;
}

/**
 * `grpc_requests_total{service,side,method,status}` and `grpc_request_duration_seconds{service,side,method}`.
 * Library-neutral: the @grpc/grpc-js interceptors in `herald/grpc` feed it.
 */
export class GrpcMetrics {
  readonly requests: Counter<string>;
  readonly duration: Histogram<string>;
  private readonly service: string;
  private readonly methods: BoundedLabel;

  constructor(options: GrpcMetricsOptions) {
    const registers = [options.registry];
    this.service = options.serviceName;
    this.methods = new BoundedLabel(options.labelCap ?? 200);
    this.requests = new Counter({
      name: 'grpc_requests_total',
      help: 'gRPC calls by final status code name',
      labelNames: ['service', 'side', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'grpc_request_duration_seconds',
      help: 'gRPC call duration',
      labelNames: ['service', 'side', 'method'],
      buckets: GRPC_DURATION_BUCKETS,
      registers,
    });
  }

  /** Records one finished call; `method` is the full path `/pkg.Service/Method`, `status` a code name like `OK`. */
  record(side: 'server' | 'client', method: string, status: string, seconds: number): void {
    const m = this.methods.fold(method);
    this.requests.inc({ service: this.service, side, method: m, status });
    this.duration.observe({ service: this.service, side, method: m }, seconds);
  }
}
