/** `herald/grpc`: resilience and metrics interceptors for `@grpc/grpc-js` clients and servers. */
export * from './interceptors.js';
export * from './metrics.js';
