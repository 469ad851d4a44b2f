import type { EventEnvelope } from '../../contracts/envelope.js';
import type { Logger } from '../../contracts/logger.js';
import type { Message } from '../../contracts/message.js';
import type { Middleware } from '../../contracts/middleware.js';

/** What a handler gets next to the event. */
export interface HandlerContext {
  /** Aborted when the handler times out or the consumer is stopped past its drain timeout. */
  readonly signal: AbortSignal;
  /** 1 on first delivery. */
  readonly attempt: number;
  readonly group: string;
  readonly topic: string;
  /** Name of the handler, as recorded in the DLQ and metrics. */
  readonly handler: string;
  readonly message: Message;
  readonly logger: Logger;
  /** Scratch space shared by middleware and the handler for this one message. */
  readonly state: Record<string, unknown>;
}

/** What consumer middleware sees: the context plus the decoded event. */
export interface ConsumeContext<P = unknown> extends HandlerContext {
  readonly event: EventEnvelope<P>;
  /** Replaced while a subscription's policy or `timeoutMs` runs the handler, by the policy's signal. */
  signal: AbortSignal;
  /** Set by middleware that decided not to run the handler (e.g. a duplicate); the message is acked. */
  skipped?: 'duplicate';
}

export type Handler<P = unknown> = (event: EventEnvelope<P>, ctx: HandlerContext) => Promise<void> | void;

export type ConsumerMiddleware = Middleware<ConsumeContext>;
