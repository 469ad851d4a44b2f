export * from './breaker.js';
export type { WindowSnapshot } from './window.js';
