import { performance } from 'node:perf_hooks';
import type { EventEnvelope } from '../../contracts/envelope.js';
import {
  ConfigError,
  DecodeError,
  HeraldError,
  SchemaValidationError,
  toError,
} from '../../contracts/errors.js';
import { Headers } from '../../contracts/headers.js';
import type { Logger } from '../../contracts/logger.js';
import type { Policy } from '../../resilience/policy.js';
import { Timeout } from '../../resilience/timeout.js';
import { wrap, type PolicyLike } from '../../resilience/wrap.js';
import type { CodecRegistry } from '../codec/registry.js';
import { decodeMessage } from '../codec/wire.js';
import { compose } from '../compose.js';
import { parsePayload, type AnyEventDefinition, type EnvelopeOf, type EventDefinition } from '../event.js';
import { idempotencyMiddleware, type IdempotencyOptions } from '../middleware/idempotency.js';
import { SchemaVersionError, upcast } from '../upcast.js';
import type { DeliveryInfo, Observers } from '../observer.js';
import { compilePattern, mostSpecific, type TypePattern } from '../patterns.js';
import type { Router } from '../routing.js';
import type { DeadLetterEntry, DeadLetterReason, DeadLetterStore } from '../../store/dead-letter-store.js';
import type { IdempotencyStore } from '../../store/idempotency-store.js';
import type { Delivery, Subscription, Transport } from '../../transport/transport.js';
import { defaultClassify, type ClassifyContext, type ErrorClassifier, type Verdict } from './classify.js';
import type { ConsumeContext, ConsumerMiddleware, Handler, HandlerContext } from './context.js';
import { resolveRetry, retryDelay, type ResolvedRetry, type RetryOptions } from './retry-policy.js';

export { PermanentError } from './errors.js';

/** What to consume and how. Passed to `herald.subscribe()`. */
export interface SubscribeSpec<P = unknown> {
  /** Consumer group: every group gets every event; members of one group share the work. */
  readonly group: string;
  /** Event definitions or type patterns (`conversation.*`) this subscription handles. */
  readonly events?: readonly (EventDefinition<P> | EventDefinition<any> | string)[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** One handler for every event in `events`. */
  readonly handler?: Handler<P>;
  /** Or one handler per type pattern; the most specific pattern wins. */
  readonly handlers?: Readonly<Record<string, Handler>>;
  /** Name recorded in the DLQ, logs and metrics; default the group. */
  readonly name?: string;
  /** Topics to read; by default derived from `events` through the routing rules. */
  readonly topics?: readonly string[];
  /** Messages handled at once by this member; default 8. */
  readonly concurrency?: number;
  /** `aggregate` (default): strictly ordered per aggregateId, parallel across aggregates. */
  readonly ordering?: 'aggregate' | 'none';
  /** Retry through delayed redelivery, then dead-letter; `false` dead-letters on the first failure. */
  readonly retry?: RetryOptions | false;
  /** Skip event ids this group already processed (needs an idempotency store). */
  readonly idempotency?: boolean | IdempotencyOptions;
  /**
   * Fail the handler after this long and abort its `ctx.signal` (the resilience library's `Timeout`,
   * one shared timer per subscription). The failure is retried like any other.
   */
  readonly timeoutMs?: number;
  /**
   * A resilience policy around the handler: anything shaped `{ execute(fn, { signal }) }`, e.g.
   * `wrap(breaker, bulkhead)` from `herald/resilience`. It runs inside the middleware and outside
   * `timeoutMs`. An open breaker's `BrokenCircuitError` defers the message by its `retryAfterMs`
   * without counting an attempt (see {@link defaultClassify}).
   */
  readonly policy?: PolicyLike;
  /**
   * Decides retry, dead-letter or defer for a failed handler; return undefined to keep Herald's
   * decision ({@link defaultClassify}).
   */
  readonly classify?: ErrorClassifier;
  /** Extra middleware around this subscription's handler (after the app-wide middleware). */
  readonly middleware?: readonly ConsumerMiddleware[];
  /** Where a new group starts; default `earliest`. */
  readonly startFrom?: 'earliest' | 'latest';
}

/** A handler for one envelope type (a union of envelopes for a subscription to several events). */
export type EnvelopeHandler<Ev> = (event: Ev, ctx: HandlerContext) => Promise<void> | void;

/**
 * `handlers` typed from the subscription's events: a key that is one of its definitions' types gets
 * that event's envelope; a pattern key (with `*`) gets every event the subscription names.
 */
export type HandlersFor<Ev extends EventEnvelope<unknown>> = {
  readonly [K in Ev['type'] as string extends K ? never : K]?: EnvelopeHandler<Extract<Ev, { type: K }>>;
} & { readonly [pattern: `${string}*${string}`]: EnvelopeHandler<Ev> };

/**
 * {@link SubscribeSpec} typed from its `events`: `handler` receives the union of their envelopes,
 * discriminated by `type` (narrow with `event.type === Placed.type`), `handlers` entries their own.
 * Chosen by `herald.subscribe` whenever `events` is given and no payload type is passed explicitly.
 */
export type TypedSubscribeSpec<E extends readonly (AnyEventDefinition | string)[]> = Omit<
  SubscribeSpec,
  'events' | 'handler' | 'handlers'
> & {
  readonly events: E;
  readonly handler?: EnvelopeHandler<EnvelopeOf<E[number]>>;
  readonly handlers?: HandlersFor<EnvelopeOf<E[number]>>;
};

/** Everything a consumer needs from its surroundings; assembled by Herald. */
export interface ConsumerDeps {
  readonly transport: Transport;
  readonly router: Router;
  readonly codecs: CodecRegistry;
  readonly deadLetterStore: DeadLetterStore;
  readonly idempotency?: IdempotencyStore;
  readonly observers: Observers;
  readonly logger: Logger;
  /** App-wide middleware, outermost first. */
  readonly middleware: readonly ConsumerMiddleware[];
}

interface Route {
  readonly pattern: TypePattern;
  readonly name: string;
  /** Undefined when the work finished synchronously (no middleware and a synchronous handler). */
  readonly run: (ctx: ConsumeContext) => Promise<void> | undefined;
}

interface InFlight {
  readonly delivery: Delivery;
  /** Settles when the message is settled; never rejects. */
  done: Promise<void>;
  /**
   * Neighbours in the consumer's list of running jobs, oldest first. A linked list rather than a
   * Set: an add and a delete per message without hashing, or a table to grow, shrink and rehash.
   */
  prev: InFlight | undefined;
  next: InFlight | undefined;
}

/** Messages remembered per consumer for first-failure times and deferral counts. */
const FAILURE_MEMORY = 10_000;
const RESOLVED: Promise<void> = Promise.resolve();

/** @deprecated Use `Headers.replayGroup`. */
export const REPLAY_GROUP_HEADER = Headers.replayGroup;

/**
 * One subscription's consumer: receives deliveries from the transport, runs them through decoding,
 * validation, middleware and the handler, and settles each one: ack on success, nack with backoff
 * to retry, dead-letter when retrying cannot help or attempts are exhausted.
 */
export class Consumer {
  readonly group: string;
  readonly name: string;
  readonly topics: readonly string[];
  private routes: Route[] = [];
  private readonly handlerSpecs: { pattern: string; name: string; handler: Handler }[];
  private readonly definitions = new Map<string, EventDefinition>();
  private readonly retry: ResolvedRetry;
  private readonly concurrency: number;
  private readonly ordering: 'key' | 'none';
  private readonly startFrom: 'earliest' | 'latest';
  private readonly logger: Logger;
  private readonly subscriptions: Subscription[] = [];
  /** Running jobs, oldest first (see {@link InFlight}). */
  private inFlightHead: InFlight | undefined;
  private inFlightTail: InFlight | undefined;
  private inFlightSize = 0;
  /** Aborted when stop() gives up waiting: every running handler sees it as ctx.signal. */
  private readonly stopController = new AbortController();
  /** First failure time per message, so the DLQ entry can say when trouble began. */
  private readonly firstFailures = new Map<string, number>();
  /**
   * Deferrals per message: the transport counts every redelivery as an attempt, so those that were
   * not the message's fault are subtracted before the attempt budget is checked. Kept in memory by
   * this member (bounded); a deferral seen by another member counts there, not here.
   */
  private readonly deferrals = new Map<string, number>();
  private readonly classifier: ErrorClassifier | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly spec: SubscribeSpec;

  constructor(
    spec: SubscribeSpec,
    private readonly deps: ConsumerDeps,
  ) {
    if (typeof spec.group !== 'string' || spec.group.length === 0)
      throw new ConfigError('group', 'must be a non-empty string');
    this.group = spec.group;
    this.name = spec.name ?? spec.group;
    this.concurrency = spec.concurrency ?? 8;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new ConfigError('concurrency', `must be an integer >= 1, got ${String(spec.concurrency)}`);
    }
    if (spec.ordering !== undefined && spec.ordering !== 'aggregate' && spec.ordering !== 'none') {
      throw new ConfigError(
        'ordering',
        `must be "aggregate" or "none", got ${JSON.stringify(spec.ordering)}`,
      );
    }
    this.ordering = spec.ordering === 'none' ? 'none' : 'key';
    this.startFrom = spec.startFrom ?? 'earliest';
    this.retry = resolveRetry(spec.retry);
    if (spec.classify !== undefined && typeof spec.classify !== 'function') {
      throw new ConfigError('classify', 'must be a function (error, ctx) => verdict | undefined');
    }
    this.classifier = spec.classify;
    if (spec.policy !== undefined && typeof (spec.policy as Policy | undefined)?.execute !== 'function') {
      throw new ConfigError(
        'policy',
        'must have an execute(fn, { signal }) method, e.g. wrap(breaker, bulkhead)',
      );
    }
    this.logger = deps.logger.child({ group: this.group, handler: this.name });

    const patterns: string[] = [];
    for (const e of spec.events ?? []) {
      if (typeof e === 'string') patterns.push(e);
      else {
        patterns.push(e.type);
        this.definitions.set(e.type, e as EventDefinition);
      }
    }
    if (spec.handler && spec.handlers)
      throw new ConfigError('handler', 'pass either handler or handlers, not both');
    if (spec.handler) {
      if (patterns.length === 0)
        throw new ConfigError('events', 'must list the event types (or patterns) the handler takes');
      const handler = spec.handler as Handler;
      this.handlerSpecs = patterns.map((pattern) => ({ pattern, name: this.name, handler }));
    } else if (spec.handlers && Object.keys(spec.handlers).length > 0) {
      this.handlerSpecs = Object.entries(spec.handlers).map(([pattern, handler]) => {
        if (typeof handler !== 'function') throw new ConfigError(`handlers.${pattern}`, 'must be a function');
        return { pattern, name: `${this.name}/${pattern}`, handler };
      });
      if (patterns.length === 0) patterns.push(...Object.keys(spec.handlers));
    } else {
      throw new ConfigError('handler', 'a subscription needs a handler (or a handlers map)');
    }
    if (spec.idempotency && !deps.idempotency) {
      throw new ConfigError(
        'idempotency',
        'needs an idempotency store: pass stores.idempotency to createHerald',
      );
    }
    // Validate middleware options now (fail at subscribe, not at the first message).
    this.spec = spec;
    this.buildChain();
    this.topics = spec.topics ?? [...new Set(patterns.map((p) => deps.router.topicForPattern(p)))];
    if (this.topics.length === 0) throw new ConfigError('topics', 'must name at least one topic');
  }

  /** Built at start, so app-wide middleware added after subscribe() still applies. */
  private buildChain(): (handler: Handler) => (ctx: ConsumeContext) => Promise<void> | undefined {
    const spec = this.spec;
    const middleware: ConsumerMiddleware[] = [...this.deps.middleware, ...(spec.middleware ?? [])];
    if (spec.idempotency && this.deps.idempotency) {
      middleware.push(
        idempotencyMiddleware(this.deps.idempotency, spec.idempotency === true ? {} : spec.idempotency),
      );
    }
    const guard = this.guard(spec);
    return (handler) => {
      const direct: (ctx: ConsumeContext) => Promise<void> | undefined =
        guard === undefined
          ? (ctx) => {
              const result = handler(ctx.event, ctx);
              return result === undefined ? undefined : Promise.resolve(result);
            }
          : (ctx) => {
              const outer = ctx.signal;
              return guard
                .execute(
                  (call) => {
                    // The handler sees the policy's signal: aborted at the timeout or at shutdown.
                    ctx.signal = call.signal;
                    return handler(ctx.event, ctx);
                  },
                  { signal: outer },
                )
                .finally(() => (ctx.signal = outer)) as Promise<void>;
            };
      if (middleware.length === 0) return direct;
      // Middleware awaits next(): give it a promise, but not a new one for a synchronous handler.
      return compose(middleware, (ctx) => {
        try {
          return direct(ctx) ?? RESOLVED;
        } catch (err) {
          return Promise.reject(toError(err));
        }
      });
    };
  }

  /** The subscription's policy and `timeoutMs` as one pipeline; undefined when there is neither. */
  private guard(spec: SubscribeSpec): Policy | undefined {
    let timeout: Timeout | undefined;
    if (spec.timeoutMs !== undefined) {
      if (typeof spec.timeoutMs !== 'number' || !Number.isFinite(spec.timeoutMs) || spec.timeoutMs <= 0) {
        throw new ConfigError('timeoutMs', `must be a number > 0, got ${String(spec.timeoutMs)}`);
      }
      // Aggressive: the message is failed at the deadline even if the handler ignores its signal.
      timeout = new Timeout(spec.timeoutMs, { strategy: 'aggressive', name: `handler ${this.name}` });
    }
    if (spec.policy === undefined) return timeout;
    return timeout === undefined ? wrap(spec.policy) : wrap(spec.policy, timeout);
  }

  /** Subscribes to every topic. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    const chain = this.buildChain();
    this.routes = this.handlerSpecs.map((h) => ({
      pattern: compilePattern(h.pattern),
      name: h.name,
      run: chain(h.handler),
    }));
    for (const topic of this.topics) {
      const sub = await this.deps.transport.subscribe(
        topic,
        { group: this.group, prefetch: this.concurrency, ordering: this.ordering, startFrom: this.startFrom },
        (delivery) => this.track(delivery),
      );
      this.subscriptions.push(sub);
    }
  }

  /**
   * Stops fetching, waits up to `drainTimeoutMs` for running handlers, then aborts the rest and
   * releases their messages for redelivery (not counted as failures).
   */
  async stop(drainTimeoutMs = 30_000): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state !== 'running') return;
    this.state = 'stopping';
    await Promise.all(this.subscriptions.map((s) => s.close()));
    const drained = await waitFor(
      this.running().map((j) => j.done),
      drainTimeoutMs,
    );
    if (!drained) {
      this.logger.warn(
        { inFlight: this.inFlightSize, drainTimeoutMs },
        'drain timeout: releasing unfinished messages',
      );
      this.stopController.abort(new HeraldError('HERALD_STOPPING', 'consumer is stopping'));
      await Promise.all(this.running().map((j) => j.delivery.release().catch(() => undefined)));
    }
    this.state = 'stopped';
  }

  /** Messages currently being processed by this member. */
  get inFlightCount(): number {
    return this.inFlightSize;
  }

  /** The running jobs, oldest first. */
  private running(): InFlight[] {
    const jobs: InFlight[] = [];
    for (let j = this.inFlightHead; j !== undefined; j = j.next) jobs.push(j);
    return jobs;
  }

  private track(delivery: Delivery): void {
    if (this.state !== 'running') {
      void delivery.release().catch(() => undefined);
      return;
    }
    const job: InFlight = { delivery, done: RESOLVED, prev: this.inFlightTail, next: undefined };
    if (this.inFlightTail === undefined) this.inFlightHead = job;
    else this.inFlightTail.next = job;
    this.inFlightTail = job;
    this.inFlightSize++;
    job.done = this.run(job);
  }

  /**
   * Never rejects: whatever goes wrong, the message is settled or left for redelivery. One async
   * function per message with no inner async layer on the success path (a synchronous handler adds
   * no promise): every promise is paid per message, dearer still while an AsyncLocalStorage is
   * active on Node 20.
   */
  private async run(job: InFlight): Promise<void> {
    const { delivery } = job;
    try {
      const { message } = delivery;
      let event: EventEnvelope;
      const malformed = message.headers[Headers.malformed];
      if (malformed !== undefined)
        return await this.deadLetter(delivery, 'decode', new DecodeError(malformed), this.name, undefined);
      try {
        event = decodeMessage(this.deps.codecs.get(message.headers[Headers.contentType]), message);
      } catch (err) {
        return await this.deadLetter(delivery, 'decode', toError(err), this.name, undefined);
      }
      const replayFor = message.headers[Headers.replayGroup];
      const route =
        replayFor === undefined || replayFor === this.group
          ? mostSpecific(this.routes, event.type)
          : undefined;
      const replay = replayFor === this.group;
      // Observers are told of the envelope as decoded, before an upcast replaces it.
      const decoded = event;
      if (!route) {
        // The topic carries types this subscription does not handle, or a replay meant for another group.
        await this.settle(() => delivery.ack());
        this.deps.observers.emit(
          'onSkipped',
          extend(this.deliveryInfo(delivery, this.name, replay, event), { reason: 'no-handler' as const }),
        );
        return;
      }
      const definition = this.definitions.get(event.type);
      if (definition) {
        try {
          // An older version is upcast to the current one first; the handler sees only the current.
          if (definition.version !== event.version) event = upcast(definition, event);
          const parsed = parsePayload(definition, event.payload);
          // The envelope was decoded for this delivery alone: set the parsed payload in place
          // rather than copy every field for it.
          (event as { payload: unknown }).payload = parsed instanceof Promise ? await parsed : parsed;
        } catch (err) {
          if (err instanceof SchemaValidationError || err instanceof SchemaVersionError)
            return await this.deadLetter(delivery, 'schema', err, route.name, event.type);
          throw err;
        }
      }
      const ctx: ConsumeContext = {
        event,
        signal: this.stopController.signal,
        attempt: delivery.attempt,
        group: this.group,
        topic: delivery.topic,
        handler: route.name,
        message,
        logger: this.logger,
        state: {},
      };
      const observers = this.deps.observers;
      // Observers' payload, made only when some observer takes it (or the handler fails).
      let info: DeliveryInfo | undefined;
      if (observers.listeners.onHandlingStarted !== undefined)
        observers.emit(
          'onHandlingStarted',
          (info = this.deliveryInfo(delivery, route.name, replay, decoded)),
        );
      // The clock is read only for an observer that takes durations (a read is ~600 instructions
      // per message, ADR 0012); one registered while this handler runs is told a duration of 0.
      const timed =
        observers.listeners.onHandled !== undefined || observers.listeners.onHandlerFailed !== undefined;
      const started = timed ? performance.now() : 0;
      try {
        const running = route.run(ctx);
        // RESOLVED is what the chain returns for a synchronous handler under middleware that adds
        // nothing (observability on an unsampled message): already fulfilled, so no await needed.
        if (running !== undefined && running !== RESOLVED) await running;
      } catch (err) {
        const durationMs = timed ? performance.now() - started : 0;
        info ??= this.deliveryInfo(delivery, route.name, replay, decoded);
        return await this.fail(delivery, ctx, info, toError(err), durationMs);
      }
      if (this.firstFailures.size > 0) this.firstFailures.delete(message.id);
      if (this.deferrals.size > 0) this.deferrals.delete(message.id);
      try {
        await delivery.ack();
      } catch (err) {
        this.settleFailed(err);
      }
      if (ctx.skipped) {
        if (observers.listeners.onSkipped !== undefined)
          observers.emit(
            'onSkipped',
            extend((info ??= this.deliveryInfo(delivery, route.name, replay, decoded)), {
              reason: ctx.skipped,
            }),
          );
      } else if (observers.listeners.onHandled !== undefined) {
        // Built from the values `info` holds rather than extended from it: one object per message
        // where `extend` made two and ran an `Object.assign` (`info` itself is made only for an
        // `onHandlingStarted` observer, which metrics is).
        observers.emit('onHandled', {
          topic: delivery.topic,
          group: this.group,
          handler: route.name,
          attempt: delivery.attempt,
          messageId: message.id,
          replay,
          event: decoded,
          durationMs: timed ? performance.now() - started : 0,
        });
      }
    } catch (err) {
      await this.unexpected(delivery, toError(err)).catch(() => undefined);
    } finally {
      this.finished(job);
    }
  }

  /** What every observer call about a delivery carries. */
  private deliveryInfo(
    delivery: Delivery,
    handler: string,
    replay: boolean,
    event: EventEnvelope,
  ): DeliveryInfo {
    return {
      topic: delivery.topic,
      group: this.group,
      handler,
      attempt: delivery.attempt,
      messageId: delivery.message.id,
      replay,
      event,
    };
  }

  /** Takes a job off the running list. */
  private finished(job: InFlight): void {
    if (job.prev === undefined) this.inFlightHead = job.next;
    else job.prev.next = job.next;
    if (job.next === undefined) this.inFlightTail = job.prev;
    else job.next.prev = job.prev;
    job.prev = job.next = undefined;
    this.inFlightSize--;
  }

  private async fail(
    delivery: Delivery,
    ctx: ConsumeContext,
    info: DeliveryInfo,
    error: Error,
    durationMs: number,
  ): Promise<void> {
    if (this.stopController.signal.aborted) {
      // Interrupted by shutdown, not a failure of the message.
      await this.settle(() => delivery.release());
      return;
    }
    const { message } = delivery;
    const deferred = this.deferrals.get(message.id) ?? 0;
    const attempt = delivery.attempt - deferred;
    const verdict = this.classify(error, {
      attempt,
      maxAttempts: this.retry.maxAttempts,
      group: this.group,
      handler: ctx.handler,
      event: ctx.event,
    });
    if (verdict.action === 'defer') {
      // Not the message's fault (open breaker, rate limit, reservation held elsewhere): no attempt spent.
      remember(this.deferrals, message.id, deferred + 1);
      this.logger.debug(
        { eventId: ctx.event.id, delayMs: verdict.delayMs, err: error.message },
        'handler deferred; redelivery scheduled without counting an attempt',
      );
      await this.settle(() => delivery.nack({ delayMs: verdict.delayMs }));
      this.deps.observers.emit('onRetryScheduled', extend(info, { error, delayMs: verdict.delayMs }));
      return;
    }
    this.deps.observers.emit('onHandlerFailed', extend(info, { error, durationMs }));
    this.rememberFirstFailure(message.id);
    if (verdict.action === 'dead-letter') {
      return this.deadLetter(delivery, verdict.reason, error, ctx.handler, ctx.event.type);
    }
    if (attempt >= this.retry.maxAttempts) {
      return this.deadLetter(delivery, 'max-attempts', error, ctx.handler, ctx.event.type);
    }
    const delayMs = verdict.delayMs ?? retryDelay(this.retry, attempt);
    this.logger.warn(
      {
        eventId: ctx.event.id,
        eventType: ctx.event.type,
        attempt,
        delayMs,
        err: error.message,
      },
      'handler failed; retry scheduled',
    );
    await this.settle(() => delivery.nack({ delayMs }));
    this.deps.observers.emit('onRetryScheduled', extend(info, { error, delayMs }));
  }

  /** The subscription's classifier, falling back to Herald's; a throwing classifier means "retry". */
  private classify(error: Error, ctx: ClassifyContext): Verdict {
    if (this.classifier !== undefined) {
      try {
        const verdict = this.classifier(error, ctx);
        if (verdict !== undefined) return verdict;
      } catch (err) {
        this.logger.error({ err: toError(err).message }, 'error classifier threw; using the default');
      }
    }
    return defaultClassify(error);
  }

  private async deadLetter(
    delivery: Delivery,
    reason: DeadLetterReason,
    error: Error,
    handler: string,
    eventType: string | undefined,
  ): Promise<void> {
    const now = Date.now();
    const { message } = delivery;
    const entry: DeadLetterEntry = {
      id: `${this.group}:${message.id}`,
      reason,
      message,
      topic: delivery.topic,
      group: this.group,
      handler,
      ...(eventType === undefined ? {} : { eventType }),
      error: { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) },
      attempts: delivery.attempt - (this.deferrals.get(message.id) ?? 0),
      firstFailedAt: this.firstFailures.get(message.id) ?? now,
      lastFailedAt: now,
      deadLetteredAt: now,
    };
    try {
      await this.deps.deadLetterStore.add(entry);
    } catch (err) {
      // Never ack what could not be parked: keep the message and try again later.
      const storeError = toError(err);
      this.logger.error(
        { err: storeError.message, messageId: message.id },
        'dead-letter store failed; message kept',
      );
      this.deps.observers.emit('onError', { error: storeError, where: 'dead-letter store' });
      await this.settle(() => delivery.nack({ delayMs: 5000 }));
      return;
    }
    this.firstFailures.delete(message.id);
    this.deferrals.delete(message.id);
    await this.settle(() => delivery.ack());
    this.logger.error(
      { messageId: message.id, eventType, reason, attempts: delivery.attempt, err: error.message },
      'message dead-lettered',
    );
    this.deps.observers.emit('onDeadLettered', { entry });
  }

  /** A bug outside the handler (e.g. a throwing validator): keep the message, slow down, and say so. */
  private async unexpected(delivery: Delivery, error: Error): Promise<void> {
    this.logger.error(
      { err: error.message, stack: error.stack, messageId: delivery.message.id },
      'unexpected consumer error',
    );
    this.deps.observers.emit('onError', { error, where: 'consumer' });
    await this.settle(() => delivery.nack({ delayMs: 1000 }));
  }

  /** Settling can fail when the broker is unreachable; the message is then redelivered, so log and go on. */
  private async settle(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.settleFailed(err);
    }
  }

  private settleFailed(err: unknown): void {
    const error = toError(err);
    this.logger.error({ err: error.message }, 'could not settle a delivery; it will be redelivered');
    this.deps.observers.emit('onError', { error, where: 'settle' });
  }

  private rememberFirstFailure(id: string): void {
    if (!this.firstFailures.has(id)) remember(this.firstFailures, id, Date.now());
  }
}

/** Sets a per-message entry, evicting the oldest beyond {@link FAILURE_MEMORY} entries. */
function remember(map: Map<string, number>, id: string, value: number): void {
  if (!map.has(id) && map.size >= FAILURE_MEMORY) map.delete(map.keys().next().value!);
  map.set(id, value);
}

/**
 * `{ ...info, ...extra }` without the spread syntax. On Node 20 (V8 11.3) an object spread followed
 * by another property gives every resulting object a hidden class of its own: each costs ~0.8 µs
 * to make, and every observer reading them goes megamorphic (together ≈ 2 µs per handled event with
 * metrics on). Copying into a literal keeps one shape. Newer V8 versions do not have the problem.
 */
function extend<E extends object>(info: DeliveryInfo, extra: E): DeliveryInfo & E {
  return Object.assign(
    {
      topic: info.topic,
      group: info.group,
      handler: info.handler,
      attempt: info.attempt,
      messageId: info.messageId,
      replay: info.replay,
      event: info.event,
    },
    extra,
  );
}

async function waitFor(promises: Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  if (promises.length === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const all = Promise.allSettled(promises).then(() => true as const);
  try {
    return await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
