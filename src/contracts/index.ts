/**
 * The bottom layer: types and errors every other layer shares. Imports nothing of Herald, so
 * transports, stores, resilience and adapters can depend on it without pulling in the core.
 */
export * from './errors.js';
export type { EventEnvelope, EventOptions } from './envelope.js';
export type { Message } from './message.js';
export { Headers } from './headers.js';
export { silentLogger, type Logger } from './logger.js';
export type { Middleware } from './middleware.js';
