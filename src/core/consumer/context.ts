import type { EventEnvelope } from '../event.js';
import type { Logger } from '../logger.js';
import type { Middleware } from '../middleware.js';
import type { Message } from '../../transport/transport.js';

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
  /** Middleware may replace the signal (e.g. the timeout middleware links its own). */
  signal: AbortSignal;
  /** Set by middleware that decided not to run the handler (e.g. a duplicate); the message is acked. */
  skipped?: 'duplicate';
}

export type Handler<P = unknown> = (event: EventEnvelope<P>, ctx: HandlerContext) => Promise<void> | void;

export type ConsumerMiddleware = Middleware<ConsumeContext>;
