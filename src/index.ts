/**
 * Herald: typed events over durable transports, with retries, dead letters and idempotency built in.
 * This entry point has no driver dependency; drivers live under `herald/<driver>`.
 */
export {
  createHerald,
  Herald,
  type HeraldOptions,
  type HeraldPlugin,
  type HeraldStores,
} from './core/herald.js';
export {
  defineEvent,
  assertEventType,
  type EventDefinition,
  type EventEnvelope,
  type EventOptions,
  type PayloadOf,
  type InputOf,
  type EnvelopeOf,
  type AnyEventDefinition,
} from './core/event.js';
export { upcaster, upcast, knownVersions, SchemaVersionError, type Upcaster } from './core/upcast.js';
export { replayEvents } from './core/replay.js';
export type { ConsumeSpec } from './core/consume.js';
export type {
  BatchContext,
  BatchHandler,
  BatchOptions,
  BatchResult,
  BatchSubscribeSpec,
} from './core/batch.js';
export {
  EventBus,
  type BatchItem,
  type EventRef,
  type PublishContext,
  type PublishMiddleware,
  type PublishEventOptions,
  type EventBusOptions,
} from './core/bus.js';
export { ScheduledPublishUnsupportedError, type ScheduleOptions } from './core/schedule.js';
export {
  Consumer,
  REPLAY_GROUP_HEADER,
  type SubscribeSpec,
  type TypedSubscribeSpec,
  type HandlersFor,
  type EnvelopeHandler,
  type ConsumerDeps,
} from './core/consumer/consumer.js';
export { PermanentError, DeferredError } from './core/consumer/errors.js';
export {
  defaultClassify,
  type ClassifyContext,
  type ErrorClassifier,
  type Verdict,
} from './core/consumer/classify.js';
export type { ConsumeContext, ConsumerMiddleware, Handler, HandlerContext } from './core/consumer/context.js';
export { resolveRetry, retryDelay, type RetryOptions } from './core/consumer/retry-policy.js';
export { idempotencyMiddleware, type IdempotencyOptions } from './core/middleware/idempotency.js';
export { compose } from './core/compose.js';
export {
  DeadLetterAdmin,
  DeadLetterQueue,
  type ReplayResult,
  type ReplaySelection,
} from './core/dead-letters.js';
export { Observers, type Observer, type DeliveryInfo } from './core/observer.js';

export { Router, type RoutingRules } from './core/routing.js';
export { compilePattern, type TypePattern } from './core/patterns.js';
export { uuidv7 } from './core/ids.js';
export type { Codec } from './core/codec/codec.js';
export { jsonCodec } from './core/codec/json.js';
export {
  compressed,
  zlibCompressor,
  type CompressionAlgorithm,
  type Compressor,
} from './core/codec/compression.js';
export { CodecRegistry } from './core/codec/registry.js';
export {
  decodeMessage,
  encodeMessage,
  envelopeFromHeaders,
  isBinaryMessage,
  jsonEnvelopeOf,
  withJsonPayload,
  type WireMode,
} from './core/codec/wire.js';
export {
  toCloudEvent,
  fromCloudEvent,
  toBinaryCloudEvent,
  fromBinaryCloudEvent,
  type CloudEvent,
} from './core/cloudevents.js';
export * from './contracts/index.js';
/** The one timeout error: raised by a subscription's `timeoutMs` and by `herald/resilience`'s Timeout. */
export { TimeoutError } from './resilience/errors.js';
export * from './transport/transport.js';
export { MemoryTransport, type MemoryTransportOptions } from './transport/memory.js';
export {
  claimCheck,
  CLAIM_CHECK_HEADER,
  CLAIM_CHECK_ERROR_HEADER,
  type ClaimCheckOptions,
} from './transport/claim-check.js';
export { FileBlobStore, type BlobStore } from './store/blob-store.js';
export {
  validateSubscribeOptions,
  validateDelay,
  scheduledTime,
  validateCancelIds,
} from './transport/validate.js';
export * from './store/dead-letter-store.js';
export { errorFingerprint } from './store/dead-letter-fingerprint.js';
export * from './store/idempotency-store.js';
export * from './store/event-store.js';
export { MemoryDeadLetterStore, MemoryEventStore, MemoryIdempotencyStore } from './store/memory/index.js';
