/**
 * `herald/saga`: multi-step business processes with compensation, durable in a saga store and
 * resumable after a crash. See docs/saga.md.
 */
export {
  defineSaga,
  SagaDefinition,
  type CommandStepSpec,
  type CompensationContext,
  type LocalStepSpec,
  type SagaOptions,
  type StepContext,
  type StepSpec,
} from './definition.js';
export {
  SagaRunner,
  type BeginOptions,
  type ReplyOutcome,
  type SagaBus,
  type SagaReplySource,
  type SagaRunnerOptions,
} from './runner.js';
export { SagaOperations } from './operations.js';
export { MemorySagaStore, type MemorySagaTx } from './memory-store.js';
export type { SagaCommitOptions, SagaEffect, SagaFilter, SagaPage, SagaStore } from './store.js';
export {
  FINAL_STATUSES,
  PARKED_STATUSES,
  SAGA_STATUSES,
  type SagaRecord,
  type SagaStatus,
  type SagaWaiting,
  type StepState,
  type StepStatus,
  type TimelineEntry,
} from './record.js';
export type { IgnoredReplyReason, SagaInfo, SagaObserver, StepInfo } from './observer.js';
export * from './errors.js';
