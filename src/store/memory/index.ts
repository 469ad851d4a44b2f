export { MemoryDeadLetterStore } from './dead-letter-store.js';
export { MemoryEventStore } from './event-store.js';
export { MemoryIdempotencyStore } from './idempotency-store.js';
