/**
 * `herald/console`: the web console (overview, dead letters, audit) and its admin JSON API, as a
 * request listener for node:http, Express and Fastify. See docs/console.md.
 */
export { consoleHandler, type ConsoleHandler, type ConsoleHandlerOptions } from './handler.js';
export {
  ConsoleService,
  type ConsoleOptions,
  type DryRun,
  type FlowRow,
  type Overview,
  type ProbesLike,
  type Selection,
} from './service.js';
export {
  DeadLetterIndex,
  type ConsoleFilter,
  type FailureGroup,
  type IndexedLetter,
} from './dead-letter-index.js';
export { fingerprint, normaliseMessage } from './fingerprint.js';
export { AuditLog, type AuditRecord } from './audit.js';
export { Masker, MASK } from './masking.js';
