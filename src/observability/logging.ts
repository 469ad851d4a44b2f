import { context } from '@opentelemetry/api';
import {
  pino,
  type DestinationStream,
  type Level,
  type Logger as PinoLogger,
  type LoggerOptions,
} from 'pino';
import { createRequire } from 'node:module';
import { ConfigError } from '../core/errors.js';
import type PinoPretty from 'pino-pretty';
import type { PublishMiddleware } from '../core/bus.js';
import type { ConsumeContext, ConsumerMiddleware } from '../core/consumer/context.js';
import type { DeliveryInfo, Observer } from '../core/observer.js';
import { fuseConsume, fusePublish, type ConsumeHooks, type PublishHooks } from './hooks.js';
import { activeTraceIds, runInContext, type EventTracing } from './tracing.js';

export interface LoggingOptions {
  /** Minimum level; default `info` (or `LOG_LEVEL`). */
  readonly level?: Level;
  /** Where lines go; default stdout, pretty-printed when stdout is a TTY. */
  readonly destination?: DestinationStream;
  /** Force (true) or suppress (false) pretty output; default: stdout is a TTY and no destination given. */
  readonly pretty?: boolean;
  /** Level of the per-event lines (published, handled); default `debug` so a busy service stays quiet at info. */
  readonly eventLevel?: Level;
  /** Log event payloads (redacted by `redact`); default false. */
  readonly includePayload?: boolean;
  /** Log event metadata (redacted by `redact`); default false. */
  readonly includeMetadata?: boolean;
  /** Field names masked wherever they appear in logged payload or metadata (one level deep), e.g. `['password', 'token']`. */
  readonly redact?: readonly string[];
  /** Extra raw pino redact paths. */
  readonly redactPaths?: readonly string[];
  /** Added to every line. */
  readonly base?: Record<string, unknown>;
}

/**
 * A pino logger whose every line carries `trace_id`/`span_id` of the active span, so logs and
 * traces join up.
 */
export function createLogger(serviceName: string, options: LoggingOptions = {}): PinoLogger {
  const fields = options.redact ?? [];
  const paths = [
    ...fields.flatMap((f) => [`payload.${f}`, `metadata.${f}`, `payload.*.${f}`, `metadata.*.${f}`]),
    ...(options.redactPaths ?? []),
  ];
  const config: LoggerOptions = {
    level: options.level ?? (process.env.LOG_LEVEL as Level | undefined) ?? 'info',
    base: { service: serviceName, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => activeTraceIds(context.active()) ?? {},
    ...(paths.length > 0 ? { redact: { paths, censor: '[redacted]' } } : {}),
  };
  const usePretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true);
  // pino-pretty is an optional peer, loaded only when pretty output is asked for: asked for
  // explicitly it must be installed; by default (a TTY) plain JSON lines do without it.
  const pretty = usePretty ? loadPretty(options.pretty === true) : undefined;
  if (pretty) return pino(config, pretty({ colorize: true, destination: options.destination ?? 1 }));
  return options.destination ? pino(config, options.destination) : pino(config);
}

function loadPretty(required: boolean): typeof PinoPretty | undefined {
  try {
    return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    if (required)
      throw new ConfigError(
        'pretty',
        'pretty output needs the package pino-pretty, which is not installed: npm install pino-pretty',
      );
    return undefined;
  }
}

/**
 * Event lifecycle logs: published, batch published, handled, handler failed, retry attempt, retry
 * scheduled, dead-lettered. Lines written inside a span carry its ids; retry and dead-letter lines
 * take them from the failed span that `tracing` keeps until that decision.
 */
export class EventLogging {
  private readonly eventLevel: Level;
  /**
   * Whether lines at the event level are written, kept in step with the logger's level. pino's
   * `isLevelEnabled` costs ≈ 440 instructions a call (a getter and symbol-keyed reads on the
   * logger, whose level methods make it a dictionary-mode object), and the hooks ask once per
   * published and once per handled event (ADR 0409).
   */
  private perEvent: boolean;

  constructor(
    readonly logger: PinoLogger,
    private readonly options: LoggingOptions = {},
    private readonly tracing?: EventTracing,
  ) {
    this.eventLevel = options.eventLevel ?? 'debug';
    this.perEvent = logger.isLevelEnabled(this.eventLevel);
    // pino's level setter emits this on the logger whose level changed. A child's change reaches
    // the same listeners (children share the parent's emitter) and leaves this logger's level as
    // it was; asking this logger again is right either way.
    logger.on('level-change', this.onLevelChange);
  }

  private readonly onLevelChange = (): void => {
    this.perEvent = this.logger.isLevelEnabled(this.eventLevel);
  };

  /**
   * Stops following the logger's level. A logger passed in by the application may outlive many
   * Herald instances (children share its emitter), so each one's listener must go with it.
   */
  close(): void {
    this.logger.off('level-change', this.onLevelChange);
  }

  /** @internal Parts of the fused observability middleware; use {@link publishMiddleware}. */
  publishHooks(): PublishHooks {
    const logger = this.logger;
    const level = this.eventLevel;
    return {
      enter: (ctx) => {
        const perEvent = this.perEvent;
        if (!perEvent && ctx.events.length === 1) return undefined;
        const started = performance.now();
        return (err) => {
          if (err !== undefined) return;
          const duration_ms = round(performance.now() - started);
          if (ctx.events.length > 1)
            logger.info({ topic: ctx.topic, count: ctx.events.length, duration_ms }, 'batch published');
          if (!perEvent) return;
          for (const e of ctx.events) {
            logger[level](
              { event_id: e.id, event_type: e.type, topic: ctx.topic, duration_ms, ...this.body(e) },
              'event published',
            );
          }
        };
      },
    };
  }

  /**
   * Per-event lines (`retry attempt` at info, `event handled` at the event level) written inside the
   * handler's span. Failures are logged by the {@link observer}, so at the default levels a
   * first delivery costs nothing here.
   *
   * @internal Parts of the fused observability middleware; use the consume middleware.
   */
  consumeHooks(): ConsumeHooks {
    const logger = this.logger;
    const level = this.eventLevel;
    // No closure or object per message unless a line is written: at the default levels a first
    // delivery returns after two comparisons.
    const fields = (ctx: ConsumeContext): Record<string, unknown> => ({
      event_id: ctx.event.id,
      event_type: ctx.event.type,
      handler: ctx.handler,
      group: ctx.group,
      topic: ctx.topic,
      attempt: ctx.attempt,
    });
    return {
      enter: (ctx) => {
        if (ctx.attempt > 1) logger.info(fields(ctx), 'retry attempt');
        if (!this.perEvent) return undefined;
        const started = performance.now();
        return (err) => {
          if (err !== undefined) return;
          const line = fields(ctx);
          line.duration_ms = round(performance.now() - started);
          line.status = ctx.skipped ?? 'success';
          if (this.options.includePayload || this.options.includeMetadata)
            Object.assign(line, this.body(ctx.event));
          logger[level](line, 'event handled');
        };
      },
    };
  }

  /** Standalone publish middleware; lines inside a span need the tracing hooks to run first. */
  publishMiddleware(): PublishMiddleware {
    return fusePublish([this.publishHooks()], runInContext)!;
  }

  consumeMiddleware(): ConsumerMiddleware {
    return fuseConsume([this.consumeHooks()], runInContext)!;
  }

  /** Must run before the tracing observer, which ends the pending span. */
  observer(): Observer {
    const logger = this.logger;
    const ids = (group: string, eventId: string | undefined, attempt?: number): object => {
      const span = this.tracing?.pendingSpan(group, eventId, attempt);
      if (!span) return {};
      const sc = span.spanContext();
      return { trace_id: sc.traceId, span_id: sc.spanId };
    };
    const delivery = (info: DeliveryInfo): object => ({
      ...ids(info.group, info.event?.id, info.attempt),
      event_id: info.event?.id,
      event_type: info.event?.type,
      handler: info.handler,
      group: info.group,
      attempt: info.attempt,
    });
    return {
      onHandlerFailed: (info) => {
        logger.warn(
          { ...delivery(info), topic: info.topic, duration_ms: round(info.durationMs), err: info.error },
          'handler failed',
        );
      },
      onRetryScheduled: (info) => {
        logger.warn({ ...delivery(info), delay_ms: info.delayMs, err: info.error }, 'retry queued');
      },
      onDeadLettered: ({ entry }) => {
        logger.error(
          {
            ...ids(entry.group, entry.message.id),
            event_id: entry.message.id,
            event_type: entry.eventType,
            handler: entry.handler,
            group: entry.group,
            attempts: entry.attempts,
            reason: entry.reason,
            error: entry.error.message,
          },
          'event dead-lettered',
        );
      },
      onError: ({ error, where }) => logger.error({ where, err: error }, 'herald error'),
    };
  }

  private body(e: { payload?: unknown; metadata?: unknown }): object {
    if (!this.options.includePayload && !this.options.includeMetadata) return {};
    const body: { payload?: unknown; metadata?: unknown } = {};
    if (this.options.includePayload) body.payload = e.payload;
    if (this.options.includeMetadata) body.metadata = e.metadata;
    return body;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
