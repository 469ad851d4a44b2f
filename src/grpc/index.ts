/** `herald/grpc`: resilience interceptors for `@grpc/grpc-js` clients. */
export * from './interceptors.js';
