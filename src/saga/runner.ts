import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EventRef } from '../core/bus.js';
import { ConfigError, HeraldError, toError } from '../core/errors.js';
import type { EventEnvelope, EventOptions } from '../core/event.js';
import type {
  CommandStepSpec,
  CompiledStep,
  LocalStepSpec,
  SagaDefinition,
  StepContext,
} from './definition.js';
import {
  SagaBusyError,
  SagaEffectError,
  SagaLeaseLostError,
  SagaReplyTimeoutError,
  SagaStepRejectedError,
  SagaTimeoutError,
  UnknownSagaTypeError,
} from './errors.js';
import { notify, type IgnoredReplyReason, type SagaObserver } from './observer.js';
import {
  addTimeline,
  cloneRecord,
  FINAL_STATUSES,
  PARKED_STATUSES,
  type SagaRecord,
  type SagaStatus,
} from './record.js';
import type { SagaEffect, SagaStore } from './store.js';

/** Where commands and compensation events are published: a Herald instance or its EventBus. */
export interface SagaBus {
  publish<P>(event: EventRef<P>, payload: P, options?: EventOptions): Promise<unknown>;
}

/** What `listen` needs of a Herald instance. */
export interface SagaReplySource {
  subscribe(spec: {
    group: string;
    events: string[];
    handler: (event: EventEnvelope) => Promise<void>;
    ordering?: 'none';
    concurrency?: number;
    retry?: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number };
  }): unknown;
}

export interface SagaRunnerOptions<Tx = unknown> {
  readonly store: SagaStore<Tx>;
  /** Saga types this runner can advance. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly sagas: readonly SagaDefinition<any, any>[];
  /** Needed for command steps and `ctx.publish`. */
  readonly bus?: SagaBus;
  /** This instance's name in leases; default `<host>:<pid>:<random>`. */
  readonly owner?: string;
  /** How long a lease lasts without renewal (renewed every third of it while a step runs); default 30 000. */
  readonly leaseMs?: number;
  /** How often to look for due sagas (timeouts, retries, sagas of a crashed instance); default 500. */
  readonly pollIntervalMs?: number;
  /** Sagas advanced at once by this instance; default 16. */
  readonly concurrency?: number;
  /** How long `stop()` waits for running steps before aborting their signal; default 10 000. */
  readonly drainTimeoutMs?: number;
  readonly observers?: readonly SagaObserver[];
  /** Errors with no caller to reject (store outages in the background loop); default `process.emitWarning`. */
  readonly onError?: (error: Error, sagaId?: string) => void;
}

export interface BeginOptions {
  /** Saga id (e.g. the order id); starting twice with one id starts it once. Default a random id. */
  readonly id?: string;
  /** Strings kept with the saga for observers (e.g. `traceparent`). */
  readonly metadata?: Record<string, string>;
}

/** Outcome of {@link SagaRunner.handleReply}. */
export type ReplyOutcome = 'applied' | IgnoredReplyReason;

/** Thrown inside a drive to stop it without recording anything: the runner is stopping. */
class Stopping extends Error {}

interface Stashed {
  readonly reply: EventEnvelope;
  readonly resolve: (outcome: ReplyOutcome) => void;
  readonly reject: (err: unknown) => void;
}

type Next = 'continue' | 'yield';

/**
 * Advances sagas: runs their steps, persists every transition in the store before acting on it,
 * compensates on failure, and resumes sagas left behind by crashed instances once their lease
 * expires. Many runners may share one store; a lease makes sure only one advances a saga at a time.
 */
export class SagaRunner<Tx = unknown> {
  readonly owner: string;
  readonly store: SagaStore<Tx>;
  /** Replies ignored so far, by reason. */
  readonly ignoredReplies: Record<IgnoredReplyReason, number> = {
    uncorrelated: 0,
    unknown: 0,
    duplicate: 0,
    late: 0,
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly sagas = new Map<string, SagaDefinition<any, any>>();
  private readonly types: string[];
  private readonly bus: SagaBus | undefined;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly concurrency: number;
  private readonly drainTimeoutMs: number;
  private readonly observers: SagaObserver[];
  private readonly onError: (error: Error, sagaId?: string) => void;
  private readonly active = new Map<string, Promise<void>>();
  private readonly stash = new Map<string, Stashed[]>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly abort = new AbortController();
  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: SagaRunnerOptions<Tx>) {
    if (!options || typeof options.store?.commit !== 'function') {
      throw new ConfigError('store', 'is required: new MemorySagaStore(), SqliteSagaStore or redisSagaStore');
    }
    if (!Array.isArray(options.sagas) || options.sagas.length === 0) {
      throw new ConfigError('sagas', 'must list the saga definitions this runner advances');
    }
    this.store = options.store;
    for (const def of options.sagas) {
      if (this.sagas.has(def.type)) throw new ConfigError('sagas', `saga type ${def.type} is listed twice`);
      this.sagas.set(def.type, def);
    }
    this.types = [...this.sagas.keys()];
    this.bus = options.bus;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = positiveInt('leaseMs', options.leaseMs, 30_000);
    this.pollIntervalMs = positiveInt('pollIntervalMs', options.pollIntervalMs, 500);
    this.concurrency = positiveInt('concurrency', options.concurrency, 16);
    this.drainTimeoutMs = positiveInt('drainTimeoutMs', options.drainTimeoutMs, 10_000);
    this.observers = [...(options.observers ?? [])];
    this.onError = options.onError ?? ((error) => process.emitWarning(error));
    const needsBus = options.sagas.some((d) => d.steps.some((s: CompiledStep) => s.kind === 'command'));
    if (needsBus && !this.bus) throw new ConfigError('bus', 'is required: some saga has command steps');
  }

  /** Adds an observer; returns a function that removes it. */
  observe(observer: SagaObserver): () => void {
    this.observers.push(observer);
    return () => {
      const i = this.observers.indexOf(observer);
      if (i >= 0) this.observers.splice(i, 1);
    };
  }

  /**
   * Persists a new saga and, when the runner is started, starts advancing it. Resolves with its id
   * once it is stored. Starting an id that exists does nothing (so a redelivered "order placed"
   * event starts one saga).
   */
  async begin<I>(
    saga: SagaDefinition<I, object> | string,
    input: I,
    options: BeginOptions = {},
  ): Promise<string> {
    const def = this.definition(typeof saga === 'string' ? saga : saga.type);
    const now = Date.now();
    const id = options.id ?? `${def.type}-${now.toString(36)}-${randomBytes(6).toString('hex')}`;
    const record: SagaRecord = {
      id,
      type: def.type,
      status: 'running',
      input,
      cursor: 0,
      steps: def.steps.map((s) => ({ name: s.name, status: 'pending', attempts: 0, compensations: 0 })),
      pivotPassed: false,
      wakeAt: now,
      version: 0,
      createdAt: now,
      updatedAt: now,
      metadata: { ...options.metadata },
      timeline: [{ at: now, event: 'saga.started' }],
      ...(def.timeoutMs !== undefined ? { deadline: now + def.timeoutMs } : {}),
    };
    if (!(await this.store.create(record))) return id;
    notify(this.observers, 'onSagaStarted', info(record));
    if (this.running && !this.stopping && this.active.size < this.concurrency) void this.kick(id);
    else this.wake?.();
    return id;
  }

  /** Starts the background loop: advances due sagas (new, retrying, timed out, abandoned by a crashed instance). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.poll();
  }

  /**
   * Stops taking sagas, lets running steps finish (up to `drainTimeoutMs`, then aborts their
   * signal) and releases every lease. Sagas not finished stay in the store for the next start.
   */
  async stop(): Promise<void> {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    this.wake?.();
    await this.loop;
    const drained = Promise.allSettled([...this.active.values()]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>(
      (resolve) => (timer = setTimeout(() => resolve('late'), this.drainTimeoutMs)),
    );
    if ((await Promise.race([drained, late])) === 'late')
      this.abort.abort(new Stopping('saga runner stopped'));
    clearTimeout(timer);
    await drained;
    this.running = false;
  }

  /**
   * Subscribes this runner to the reply events of its command steps (consumer group `group`,
   * default `herald-saga-replies`). Replies for sagas another instance is advancing are retried by
   * the consumer until that instance lets go.
   */
  listen(source: SagaReplySource, options: { group?: string; concurrency?: number } = {}): void {
    const types = new Set<string>();
    for (const def of this.sagas.values())
      for (const s of def.steps) for (const t of [...s.successTypes, ...s.failureTypes]) types.add(t);
    if (types.size === 0) throw new ConfigError('sagas', 'no saga has command steps: nothing to listen to');
    source.subscribe({
      group: options.group ?? 'herald-saga-replies',
      events: [...types],
      ordering: 'none',
      concurrency: options.concurrency ?? 32,
      retry: { maxAttempts: 50, initialDelayMs: 20, maxDelayMs: 1000 },
      handler: async (event) => {
        await this.handleReply(event);
      },
    });
  }

  /**
   * Applies a reply event to the saga named by its correlation id. A reply the saga is not waiting
   * for (a second copy, a reply to an earlier attempt, or one for a finished saga) is ignored and
   * counted. Rejects with SagaBusyError when another instance holds the saga: deliver it again later.
   */
  async handleReply(reply: EventEnvelope): Promise<ReplyOutcome> {
    const id = reply.correlationId;
    if (id === undefined) return this.ignored(reply, 'uncorrelated');
    if (this.active.has(id)) {
      return new Promise<ReplyOutcome>((resolve, reject) => {
        let list = this.stash.get(id);
        if (!list) this.stash.set(id, (list = []));
        list.push({ reply, resolve, reject });
      });
    }
    const record = await this.store.acquire(id, this.owner, this.leaseMs);
    if (!record) {
      const current = await this.store.get(id);
      if (!current) return this.ignored(reply, 'unknown', id);
      if (current.status !== 'running') return this.ignored(reply, 'late', id);
      throw new SagaBusyError(id, current.lease?.owner);
    }
    return new Promise<ReplyOutcome>((resolve, reject) => this.launch(record, { reply, resolve, reject }));
  }

  /** Resolves with the saga once it is final or parked (polling the store, so it works across processes). */
  async wait(id: string, timeoutMs = 30_000): Promise<SagaRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const record = await this.store.get(id);
      if (record && (FINAL_STATUSES.has(record.status) || PARKED_STATUSES.has(record.status))) return record;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HeraldError(
          'HERALD_SAGA_WAIT_TIMEOUT',
          `saga ${id} is still ${record?.status ?? 'missing'} after ${timeoutMs} ms`,
        );
      }
      await new Promise<void>((resolve) => {
        let set = this.waiters.get(id);
        if (!set) this.waiters.set(id, (set = new Set()));
        const done = (): void => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) this.waiters.delete(id);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 100));
        set.add(done);
      });
    }
  }

  // ---- the loop ---------------------------------------------------------------------------------

  private async poll(): Promise<void> {
    while (!this.stopping) {
      const free = this.concurrency - this.active.size;
      let claimed: SagaRecord[] = [];
      if (free > 0) {
        try {
          claimed = await this.store.claimDue(this.owner, this.leaseMs, free, this.types);
        } catch (err) {
          this.onError(toError(err));
        }
        for (const record of claimed) this.launch(record);
      }
      // A full batch suggests more are due: claim again at once (the timer would only add latency).
      if (claimed.length > 0 && claimed.length === free) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.wake = undefined;
          resolve();
        }, this.pollIntervalMs);
        this.wake = () => {
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
  }

  private async kick(id: string): Promise<void> {
    try {
      if (this.active.has(id)) return;
      const record = await this.store.acquire(id, this.owner, this.leaseMs);
      // The poll loop may have claimed it meanwhile: then its drive holds this same lease, keep it.
      if (record && !this.active.has(id)) this.launch(record);
    } catch (err) {
      this.onError(toError(err), id);
    }
  }

  private launch(record: SagaRecord, first?: Stashed): void {
    if (this.active.has(record.id)) {
      // Claimed twice by this instance (a reply raced the loop): the running drive picks it up.
      if (first) this.stashReply(record.id, first);
      return;
    }
    const run = this.drive(record, first).finally(() => this.finished(record.id));
    this.active.set(record.id, run);
  }

  private stashReply(id: string, s: Stashed): void {
    let list = this.stash.get(id);
    if (!list) this.stash.set(id, (list = []));
    list.push(s);
  }

  private finished(id: string): void {
    this.active.delete(id);
    const left = this.stash.get(id);
    this.stash.delete(id);
    for (const s of left ?? []) this.handleReply(s.reply).then(s.resolve, s.reject);
    if (!this.stopping) this.wake?.();
  }

  /** Advances one leased saga as far as it can go now, then lets go of the lease. */
  private async drive(record: SagaRecord, first?: Stashed): Promise<void> {
    const def = this.sagas.get(record.type);
    const heartbeat = setInterval(
      () => {
        this.store
          .renew(record.id, this.owner, this.leaseMs)
          .catch((err: unknown) => this.onError(toError(err), record.id));
      },
      Math.max(1, Math.floor(this.leaseMs / 3)),
    );
    heartbeat.unref();
    let holding = true;
    try {
      if (!def) throw new UnknownSagaTypeError(record.type, this.types);
      if (first) {
        if (this.replyMatches(def, record, first.reply)) {
          const next = await this.applyReply(def, record, first.reply);
          first.resolve('applied');
          if (next === 'yield') holding = false;
        } else {
          first.resolve(
            this.ignored(first.reply, record.status === 'running' ? 'duplicate' : 'late', record.id),
          );
        }
      }
      while (holding) {
        if (this.stopping) break;
        const next = await this.advance(def, record);
        if (next === 'yield') holding = false;
      }
    } catch (err) {
      first?.reject(err); // no-op when the reply was already applied
      if (!(err instanceof Stopping)) {
        if (err instanceof SagaLeaseLostError) holding = false;
        this.onError(toError(err), record.id);
      }
    } finally {
      clearInterval(heartbeat);
      if (holding)
        await this.store
          .release(record.id, this.owner)
          .catch((e: unknown) => this.onError(toError(e), record.id));
    }
  }

  private async advance(def: SagaDefinition, record: SagaRecord): Promise<Next> {
    if (record.status === 'compensating') return this.compensateNext(def, record);
    if (record.status !== 'running') {
      await this.store.release(record.id, this.owner);
      return 'yield';
    }
    if (record.waiting) return this.continueWaiting(def, record);
    if (record.cursor >= def.steps.length) {
      await this.transition(record, { release: true }, (r) => {
        r.status = 'completed';
        r.wakeAt = null;
        addTimeline(r, { event: 'saga.completed' });
      });
      this.finishedSaga(record);
      return 'yield';
    }
    if (record.deadline !== undefined && Date.now() >= record.deadline) {
      return this.stepFailed(def, record, record.cursor, new SagaTimeoutError(def.timeoutMs!), false);
    }
    const step = def.steps[record.cursor]!;
    return step.kind === 'local' ? this.runLocal(def, record, step) : this.sendCommand(def, record, step);
  }

  // ---- forward ----------------------------------------------------------------------------------

  private async runLocal(def: SagaDefinition, record: SagaRecord, step: CompiledStep): Promise<Next> {
    const i = record.cursor;
    await this.transition(record, {}, (r) => {
      const s = r.steps[i]!;
      s.status = 'running';
      s.attempts++;
      s.startedAt ??= Date.now();
      r.wakeAt = Date.now(); // if this instance dies now, due again as soon as the lease expires
      addTimeline(r, { event: 'step.started', step: step.name, detail: `attempt ${s.attempts}` });
    });
    const attempt = record.steps[i]!.attempts;
    const started = performance.now();
    notify(this.observers, 'onStepStarted', stepInfo(record, step.name, 'action', attempt));
    let effects: SagaEffect<Tx>[] = [];
    let result: unknown;
    try {
      const spec = step.spec as LocalStepSpec<unknown, unknown, unknown>;
      result = await step.action!.execute(
        (ctx) => {
          effects = [];
          return spec.run(this.context(record, step.name, 'run', ctx.attempt, ctx.signal, effects));
        },
        { signal: this.abort.signal },
      );
      await this.transition(record, { effects: this.fenced(step.name, effects) }, (r) => {
        const s = r.steps[i]!;
        s.status = 'done';
        s.result = result;
        s.endedAt = Date.now();
        delete s.error;
        r.cursor = i + 1;
        if (step.pivot) r.pivotPassed = true;
        r.wakeAt = Date.now();
        addTimeline(r, { event: 'step.completed', step: step.name });
      });
    } catch (err) {
      if (this.abort.signal.aborted) throw new Stopping();
      if (err instanceof SagaLeaseLostError) throw err;
      const error = toError(err);
      notify(this.observers, 'onStepFinished', {
        ...stepInfo(record, step.name, 'action', attempt),
        durationMs: performance.now() - started,
        error,
      });
      return this.stepFailed(def, record, i, error, false);
    }
    notify(this.observers, 'onStepFinished', {
      ...stepInfo(record, step.name, 'action', attempt),
      durationMs: performance.now() - started,
    });
    return 'continue';
  }

  private async sendCommand(_def: SagaDefinition, record: SagaRecord, step: CompiledStep): Promise<Next> {
    const i = record.cursor;
    const now = Date.now();
    await this.transition(record, {}, (r) => {
      const s = r.steps[i]!;
      s.status = 'waiting';
      s.attempts++;
      s.startedAt ??= now;
      r.waiting = {
        step: i,
        commandId: `${r.id}:${step.name}:${s.attempts}`,
        sent: false,
        until: now + step.replyTimeoutMs,
      };
      r.wakeAt = now;
      addTimeline(r, { event: 'step.started', step: step.name, detail: `attempt ${s.attempts}` });
    });
    notify(this.observers, 'onStepStarted', stepInfo(record, step.name, 'action', record.steps[i]!.attempts));
    return this.publishCommand(record, step);
  }

  /** Publishes the awaited command (again, with the same id, after a crash), then waits without holding the lease. */
  private async publishCommand(record: SagaRecord, step: CompiledStep): Promise<Next> {
    const waiting = record.waiting!;
    const spec = step.spec as CommandStepSpec<unknown, unknown, unknown>;
    const ctx = this.context(
      record,
      step.name,
      'run',
      record.steps[waiting.step]!.attempts,
      this.abort.signal,
      [],
    );
    try {
      await this.bus!.publish(spec.command.event, spec.command.payload(ctx), {
        id: waiting.commandId,
        correlationId: record.id,
        aggregateId: spec.command.aggregateId?.(ctx) ?? record.id,
        metadata: { 'saga-type': record.type, 'saga-step': step.name, 'idempotency-key': ctx.idempotencyKey },
      });
    } catch (err) {
      // The broker is unreachable: try again later; the command keeps its id, so a resend is deduplicated.
      this.onError(toError(err), record.id);
      await this.transition(record, { release: true }, (r) => {
        r.wakeAt = Date.now() + Math.min(5000, this.pollIntervalMs * 4);
        addTimeline(r, { event: 'command.publish-failed', step: step.name, detail: toError(err).message });
      });
      return 'yield';
    }
    const hasReply = (this.stash.get(record.id)?.length ?? 0) > 0;
    await this.transition(record, { release: !hasReply }, (r) => {
      r.waiting!.sent = true;
      r.wakeAt = Math.min(r.waiting!.until, r.deadline ?? Infinity);
      addTimeline(r, { event: 'command.sent', step: step.name, detail: r.waiting!.commandId });
    });
    return hasReply ? 'continue' : 'yield';
  }

  private async continueWaiting(def: SagaDefinition, record: SagaRecord): Promise<Next> {
    const stashed = this.stash.get(record.id);
    while (stashed && stashed.length > 0) {
      const s = stashed.shift()!;
      if (this.replyMatches(def, record, s.reply)) {
        try {
          const next = await this.applyReply(def, record, s.reply);
          s.resolve('applied');
          return next;
        } catch (err) {
          s.reject(err);
          throw err;
        }
      }
      s.resolve(this.ignored(s.reply, 'duplicate', record.id));
    }
    const waiting = record.waiting!;
    const step = def.steps[waiting.step]!;
    if (!waiting.sent) return this.publishCommand(record, step);
    const now = Date.now();
    if (record.deadline !== undefined && now >= record.deadline) {
      return this.stepFailed(def, record, waiting.step, new SagaTimeoutError(def.timeoutMs!), true);
    }
    if (now >= waiting.until) {
      const error = new SagaReplyTimeoutError(step.name, step.replyTimeoutMs);
      notify(this.observers, 'onStepFinished', {
        ...stepInfo(record, step.name, 'action', record.steps[waiting.step]!.attempts),
        durationMs: step.replyTimeoutMs,
        error,
      });
      return this.commandAttemptFailed(def, record, step, error, true);
    }
    await this.transition(record, { release: true }, (r) => {
      r.wakeAt = Math.min(waiting.until, r.deadline ?? Infinity);
    });
    return 'yield';
  }

  private replyMatches(def: SagaDefinition, record: SagaRecord, reply: EventEnvelope): boolean {
    const waiting = record.waiting;
    if (record.status !== 'running' || !waiting || !waiting.sent) return false;
    if (reply.causationId !== undefined && reply.causationId !== waiting.commandId) return false;
    const step = def.steps[waiting.step]!;
    return step.successTypes.has(reply.type) || step.failureTypes.has(reply.type);
  }

  private async applyReply(def: SagaDefinition, record: SagaRecord, reply: EventEnvelope): Promise<Next> {
    const i = record.waiting!.step;
    const step = def.steps[i]!;
    const spec = step.spec as CommandStepSpec<unknown, unknown, unknown>;
    const attempt = record.steps[i]!.attempts;
    const durationMs = Date.now() - (record.steps[i]!.startedAt ?? Date.now());
    if (step.successTypes.has(reply.type)) {
      const result = spec.reply.result ? spec.reply.result(reply) : reply.payload;
      await this.transition(record, {}, (r) => {
        const s = r.steps[i]!;
        s.status = 'done';
        s.result = result;
        s.endedAt = Date.now();
        delete s.error;
        delete r.waiting;
        r.cursor = i + 1;
        if (step.pivot) r.pivotPassed = true;
        r.wakeAt = Date.now();
        addTimeline(r, { event: 'step.completed', step: step.name, detail: reply.type });
      });
      notify(this.observers, 'onStepFinished', {
        ...stepInfo(record, step.name, 'action', attempt),
        durationMs,
      });
      return 'continue';
    }
    const payload = reply.payload as { reason?: unknown } | undefined;
    const reason = spec.reply.reason
      ? spec.reply.reason(reply)
      : typeof payload?.reason === 'string'
        ? payload.reason
        : reply.type;
    const error = new SagaStepRejectedError(step.name, reply.type, reason);
    notify(this.observers, 'onStepFinished', {
      ...stepInfo(record, step.name, 'action', attempt),
      durationMs,
      error,
    });
    return this.commandAttemptFailed(def, record, step, error, false);
  }

  /** A command attempt failed: send it again after a backoff if the step's retry allows, else fail the step. */
  private async commandAttemptFailed(
    def: SagaDefinition,
    record: SagaRecord,
    step: CompiledStep,
    error: Error,
    uncertain: boolean,
  ): Promise<Next> {
    const i = record.waiting!.step;
    const attempts = record.steps[i]!.attempts;
    if (step.resend && attempts <= step.resend.maxRetries) {
      // The delay schedule of the resilience library's retry policy, applied across processes.
      const delay = step.resend.backoff.delay(attempts, step.resend.backoff.initialDelayMs, Math.random);
      await this.transition(record, { release: true }, (r) => {
        const s = r.steps[i]!;
        s.status = 'pending';
        s.error = error.message;
        delete r.waiting;
        r.wakeAt = Date.now() + delay;
        addTimeline(r, {
          event: 'step.retry-scheduled',
          step: step.name,
          detail: `${error.message}; in ${Math.round(delay)} ms`,
        });
      });
      return 'yield';
    }
    return this.stepFailed(def, record, i, error, uncertain);
  }

  /**
   * A step gave up. Before the pivot the saga compensates the completed steps in reverse (and the
   * failed step itself when `uncertain`: a command whose outcome is unknown); after it, it parks as
   * `failed`.
   */
  private async stepFailed(
    _def: SagaDefinition,
    record: SagaRecord,
    i: number,
    error: Error,
    uncertain: boolean,
  ): Promise<Next> {
    const name = record.steps[i]?.name;
    const failure = {
      ...(name !== undefined ? { step: name } : {}),
      message: error.message,
      ...(error instanceof HeraldError ? { code: error.code } : {}),
    };
    if (record.pivotPassed) {
      await this.transition(record, { release: true }, (r) => {
        if (r.steps[i]) {
          r.steps[i].status = 'failed';
          r.steps[i].error = error.message;
        }
        delete r.waiting;
        r.status = 'failed';
        r.error = failure;
        r.wakeAt = null;
        addTimeline(r, {
          event: 'saga.failed',
          ...(name !== undefined ? { step: name } : {}),
          detail: error.message,
        });
      });
      this.finishedSaga(record);
      return 'yield';
    }
    await this.transition(record, {}, (r) => {
      const s = r.steps[i];
      if (s) {
        // An uncertain step is compensated like a completed one: its compensation must tolerate "nothing to undo".
        s.status = uncertain ? 'done' : 'failed';
        s.error = error.message;
      }
      delete r.waiting;
      r.status = 'compensating';
      r.error = failure;
      r.cursor = uncertain ? i : i - 1;
      r.wakeAt = Date.now();
      addTimeline(r, {
        event: 'saga.compensating',
        ...(name !== undefined ? { step: name } : {}),
        detail: error.message,
      });
    });
    return 'continue';
  }

  // ---- backward ---------------------------------------------------------------------------------

  private async compensateNext(def: SagaDefinition, record: SagaRecord): Promise<Next> {
    let j = record.cursor;
    while (j >= 0) {
      const s = record.steps[j]!;
      const compensable =
        s.status === 'done' || s.status === 'compensating' || s.status === 'compensation-failed';
      if (compensable && def.steps[j]!.spec.compensate) break;
      j--;
    }
    if (j < 0) {
      await this.transition(record, { release: true }, (r) => {
        r.status = 'compensated';
        r.cursor = -1;
        r.wakeAt = null;
        addTimeline(r, { event: 'saga.compensated' });
      });
      this.finishedSaga(record);
      return 'yield';
    }
    const step = def.steps[j]!;
    await this.transition(record, {}, (r) => {
      const s = r.steps[j]!;
      s.status = 'compensating';
      s.compensations++;
      r.cursor = j;
      r.wakeAt = Date.now();
      addTimeline(r, {
        event: 'compensation.started',
        step: step.name,
        detail: `attempt ${s.compensations}`,
      });
    });
    const attempt = record.steps[j]!.compensations;
    notify(this.observers, 'onStepStarted', stepInfo(record, step.name, 'compensation', attempt));
    const started = performance.now();
    let effects: SagaEffect<Tx>[] = [];
    try {
      await step.compensation.execute(
        (ctx) => {
          effects = [];
          const base = this.context(record, step.name, 'compensate', ctx.attempt, ctx.signal, effects);
          return step.spec.compensate!({ ...base, result: record.steps[j]!.result });
        },
        { signal: this.abort.signal },
      );
      await this.transition(record, { effects: this.fenced(step.name, effects) }, (r) => {
        const s = r.steps[j]!;
        s.status = 'compensated';
        s.endedAt = Date.now();
        r.cursor = j - 1;
        r.wakeAt = Date.now();
        addTimeline(r, { event: 'compensation.completed', step: step.name });
      });
    } catch (err) {
      if (this.abort.signal.aborted) throw new Stopping();
      if (err instanceof SagaLeaseLostError) throw err;
      const error = toError(err);
      notify(this.observers, 'onStepFinished', {
        ...stepInfo(record, step.name, 'compensation', attempt),
        durationMs: performance.now() - started,
        error,
      });
      await this.transition(record, { release: true }, (r) => {
        const s = r.steps[j]!;
        s.status = 'compensation-failed';
        s.error = error.message;
        r.status = 'compensation-failed';
        r.error = {
          step: step.name,
          message: error.message,
          ...(error instanceof HeraldError ? { code: error.code } : {}),
        };
        r.wakeAt = null;
        addTimeline(r, { event: 'compensation.failed', step: step.name, detail: error.message });
      });
      this.finishedSaga(record);
      return 'yield';
    }
    notify(this.observers, 'onStepFinished', {
      ...stepInfo(record, step.name, 'compensation', attempt),
      durationMs: performance.now() - started,
    });
    return 'continue';
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** Applies `mutate` to a copy, commits it (with effects, fenced by the lease), then adopts it. */
  private async transition(
    record: SagaRecord,
    options: { release?: boolean; effects?: SagaEffect<Tx>[] },
    mutate: (r: SagaRecord) => void,
  ): Promise<void> {
    const next = cloneRecord(record);
    mutate(next);
    next.updatedAt = Date.now();
    await this.store.commit(next, this.owner, {
      leaseMs: options.release ? 0 : this.leaseMs,
      ...(options.effects && options.effects.length > 0 ? { effects: options.effects } : {}),
    });
    adopt(record, next);
  }

  /** Effects tagged with their step, so a failing one is told apart from a lost lease. */
  private fenced(step: string, effects: SagaEffect<Tx>[]): SagaEffect<Tx>[] {
    return effects.map((fn) => (tx: Tx) => {
      try {
        fn(tx);
      } catch (err) {
        throw new SagaEffectError(step, err);
      }
    });
  }

  private context(
    record: SagaRecord,
    step: string,
    direction: 'run' | 'compensate',
    attempt: number,
    signal: AbortSignal,
    effects: SagaEffect<Tx>[],
  ): StepContext<unknown, Record<string, unknown>> {
    const results: Record<string, unknown> = {};
    for (const s of record.steps)
      if (s.status === 'done' || s.status === 'compensating') results[s.name] = s.result;
    const idempotencyKey = `${record.id}/${step}/${direction}`;
    let published = 0;
    return {
      sagaId: record.id,
      sagaType: record.type,
      input: record.input,
      results,
      step,
      idempotencyKey,
      attempt,
      signal,
      effect: (fn) => {
        effects.push(fn as unknown as SagaEffect<Tx>);
      },
      publish: async (event, payload, options = {}) => {
        if (!this.bus) throw new ConfigError('bus', 'ctx.publish needs the runner to have a bus');
        await this.bus.publish(event, payload, {
          id: `${idempotencyKey}/${++published}`,
          correlationId: record.id,
          ...options,
        });
      },
    };
  }

  private ignored(reply: EventEnvelope, reason: IgnoredReplyReason, sagaId?: string): IgnoredReplyReason {
    this.ignoredReplies[reason]++;
    notify(this.observers, 'onReplyIgnored', {
      ...(sagaId ? { sagaId } : {}),
      replyType: reply.type,
      reason,
    });
    return reason;
  }

  private finishedSaga(record: SagaRecord): void {
    notify(this.observers, 'onSagaFinished', {
      ...info(record),
      status: record.status,
      durationMs: Date.now() - record.createdAt,
      ...(record.error ? { error: record.error.message } : {}),
    });
    for (const w of [...(this.waiters.get(record.id) ?? [])]) w();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private definition(type: string): SagaDefinition<any, any> {
    const def = this.sagas.get(type);
    if (!def) throw new UnknownSagaTypeError(type, this.types);
    return def;
  }
}

/** Makes `record` equal to `next` in place (fields `next` dropped are deleted, not kept). */
function adopt(record: SagaRecord, next: SagaRecord): void {
  const target = record as unknown as Record<string, unknown>;
  for (const key of Object.keys(target)) if (!(key in next)) delete target[key];
  Object.assign(record, next);
}

function info(record: SagaRecord): { sagaId: string; sagaType: string; metadata: Record<string, string> } {
  return { sagaId: record.id, sagaType: record.type, metadata: record.metadata };
}

function stepInfo(record: SagaRecord, step: string, kind: 'action' | 'compensation', attempt: number) {
  return { ...info(record), step, kind, attempt };
}

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0)
    throw new ConfigError(field, `must be an integer > 0, got ${String(value)}`);
  return value;
}

export type { SagaStatus };
