import type { EventRef } from '../core/bus.js';
import { ConfigError } from '../core/errors.js';
import type { EventDefinition, EventEnvelope, EventOptions } from '../core/event.js';
import { Retry, Timeout, wrap, type Policy, type RetryOptions } from '../resilience/index.js';

/** What every step function receives. */
export interface StepContext<I, R> {
  readonly sagaId: string;
  readonly sagaType: string;
  readonly input: I;
  /** Results of the steps completed so far, by step name. */
  readonly results: Partial<R>;
  readonly step: string;
  /**
   * Stable per saga, step and direction (`<sagaId>/<step>/run` or `/compensate`): pass it to the
   * outside system so a repeated call after a crash is recognised there.
   */
  readonly idempotencyKey: string;
  /** 1-based attempt within this process's retry loop. */
  readonly attempt: number;
  /** Aborted by the step's timeout or when the runner stops. */
  readonly signal: AbortSignal;
  /**
   * Registers a write the store applies in the same transaction as this step's completion (SQLite:
   * `(db: Database) => ...`; Redis: `(tx: RedisSagaTx) => tx.call(...)`). Effects of a failed
   * attempt are discarded. This is how a step's local effect happens exactly once.
   */
  effect<Tx = unknown>(fn: (tx: Tx) => void): void;
  /**
   * Publishes an event with the saga's id as correlation id and an id derived from the idempotency
   * key (the same on every retry, so consumers with idempotency see one event). Needs the runner's `bus`.
   */
  publish<P>(event: EventRef<P>, payload: P, options?: EventOptions): Promise<void>;
}

/** A compensation also sees the result its step's action returned. */
export interface CompensationContext<I, R, Out> extends StepContext<I, R> {
  readonly result: Out | undefined;
}

interface StepCommon<I, R, Out> {
  /** Undoes the step. Retried (`compensationRetry`); when it keeps failing the saga parks as `compensation-failed`. */
  readonly compensate?: (ctx: CompensationContext<I, R, Out>) => Promise<void> | void;
  /** After this step completes the saga can no longer compensate: later failures park it as `failed`. */
  readonly pivot?: boolean;
  /** Retry of the compensation; default 3 retries from 100 ms with full jitter. */
  readonly compensationRetry?: RetryOptions | false;
  /** Per-attempt timeout of the compensation. */
  readonly compensationTimeoutMs?: number;
}

/** A step run in process: a plain async function. */
export interface LocalStepSpec<I, R, Out> extends StepCommon<I, R, Out> {
  readonly run: (ctx: StepContext<I, R>) => Promise<Out> | Out;
  /** Per-attempt timeout (cooperative: `ctx.signal` aborts). */
  readonly timeoutMs?: number;
  /** Retry of the action before the saga gives up on it; default none. */
  readonly retry?: RetryOptions | false;
}

type ReplyRef = EventDefinition<any> | string; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A step run by another service: the runner publishes a command and waits (durably, without holding
 * anything in memory) for a reply event carrying the saga id as correlation id and the command's id
 * as causation id.
 */
export interface CommandStepSpec<I, R, Out> extends StepCommon<I, R, Out> {
  readonly command: {
    readonly event: EventRef<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    readonly payload: (ctx: StepContext<I, R>) => unknown;
    /** Ordering key of the command; default the saga id. */
    readonly aggregateId?: (ctx: StepContext<I, R>) => string;
  };
  readonly reply: {
    /** Reply types that complete the step. */
    readonly success: ReplyRef | readonly ReplyRef[];
    /** Reply types that fail the step. */
    readonly failure?: ReplyRef | readonly ReplyRef[];
    /** The step's result from a success reply; default the reply's payload. */
    readonly result?: (reply: EventEnvelope) => Out;
    /** The failure message from a failure reply; default `payload.reason` or the type. */
    readonly reason?: (reply: EventEnvelope) => string;
  };
  /** How long to wait for the reply, per attempt; default 30 000 ms. */
  readonly timeoutMs?: number;
  /** Sends the command again (a new attempt, a new command id) after a failure reply or a timeout. Default none. */
  readonly retry?: RetryOptions | false;
}

export type StepSpec<I, R, Out> = LocalStepSpec<I, R, Out> | CommandStepSpec<I, R, Out>;

/** @internal A validated step with its policies built once. */
export interface CompiledStep {
  readonly name: string;
  readonly kind: 'local' | 'command';
  readonly spec: StepSpec<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly pivot: boolean;
  /** Local steps: the action's policy (timeout inside retry). */
  readonly action: Policy | undefined;
  readonly compensation: Policy;
  /** Command steps: re-sends allowed and the backoff between them. */
  readonly resend: Retry | undefined;
  readonly replyTimeoutMs: number;
  readonly successTypes: ReadonlySet<string>;
  readonly failureTypes: ReadonlySet<string>;
}

const DEFAULT_COMPENSATION_RETRY: RetryOptions = { maxRetries: 3, initialDelayMs: 100 };
const DEFAULT_REPLY_TIMEOUT_MS = 30_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;

export interface SagaOptions {
  /** The whole saga's deadline from its start; past it, the saga compensates. Default none. */
  readonly timeoutMs?: number;
}

/**
 * A saga type: an ordered list of steps, each with an optional compensation. Immutable: `step()`
 * returns a new definition whose result type includes the new step.
 *
 * @example
 * const order = defineSaga<{ orderId: string }>('order')
 *   .step('reserve', { run: (ctx) => stock.reserve(ctx.input.orderId), compensate: (ctx) => stock.release(ctx.result!) })
 *   .step('charge', { command: { event: ChargePayment, payload: (ctx) => ({ orderId: ctx.input.orderId }) },
 *                     reply: { success: PaymentCharged, failure: PaymentDeclined }, timeoutMs: 10_000 })
 *   .step('ship', { run: (ctx) => shipping.ship(ctx.input.orderId), pivot: true });
 */
export class SagaDefinition<I = unknown, R = object> {
  private constructor(
    readonly type: string,
    readonly timeoutMs: number | undefined,
    /** @internal */
    readonly steps: readonly CompiledStep[],
  ) {}

  /** @internal */
  static create<I>(type: string, options: SagaOptions): SagaDefinition<I, object> {
    if (typeof type !== 'string' || !NAME.test(type)) {
      throw new ConfigError(
        'type',
        `saga type must be 1-100 letters, digits or _.:- , got ${JSON.stringify(type)}`,
      );
    }
    for (const key of Object.keys(options)) {
      if (key !== 'timeoutMs') throw new ConfigError(key, 'is not a saga option; known options: timeoutMs');
    }
    return new SagaDefinition<I, object>(type, positive('timeoutMs', options.timeoutMs), []);
  }

  /** Adds a step after the existing ones. */
  step<N extends string, Out>(name: N, spec: StepSpec<I, R, Out>): SagaDefinition<I, R & { [K in N]: Out }> {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new ConfigError(
        'step',
        `step name must be 1-100 letters, digits or _.:- , got ${JSON.stringify(name)}`,
      );
    }
    if (this.steps.some((s) => s.name === name))
      throw new ConfigError('step', `${this.type} already has a step ${name}`);
    const compiled = compileStep(`${this.type}.${name}`, name, spec as StepSpec<unknown, unknown, unknown>);
    if (compiled.pivot && this.steps.some((s) => s.pivot)) {
      throw new ConfigError(`${name}.pivot`, `${this.type} already has a pivot step; a saga has at most one`);
    }
    return new SagaDefinition(this.type, this.timeoutMs, [...this.steps, compiled]);
  }

  /** Step names in order. */
  get stepNames(): string[] {
    return this.steps.map((s) => s.name);
  }
}

/** Starts a saga definition; add steps with `.step(name, spec)`. */
export function defineSaga<I>(type: string, options: SagaOptions = {}): SagaDefinition<I, object> {
  return SagaDefinition.create<I>(type, options);
}

const LOCAL_KEYS = [
  'run',
  'compensate',
  'timeoutMs',
  'retry',
  'pivot',
  'compensationRetry',
  'compensationTimeoutMs',
];
const COMMAND_KEYS = [
  'command',
  'reply',
  'compensate',
  'timeoutMs',
  'retry',
  'pivot',
  'compensationRetry',
  'compensationTimeoutMs',
];

function compileStep(where: string, name: string, spec: StepSpec<unknown, unknown, unknown>): CompiledStep {
  if (typeof spec !== 'object' || spec === null)
    throw new ConfigError(name, 'a step is an object with run or command');
  const isCommand = 'command' in spec;
  if (!isCommand && typeof (spec as LocalStepSpec<unknown, unknown, unknown>).run !== 'function') {
    throw new ConfigError(`${name}.run`, 'a step needs run (an async function) or command (with reply)');
  }
  const known = isCommand ? COMMAND_KEYS : LOCAL_KEYS;
  for (const key of Object.keys(spec)) {
    if (!known.includes(key))
      throw new ConfigError(`${name}.${key}`, `is not a step option; known options: ${known.join(', ')}`);
  }
  if (spec.compensate !== undefined && typeof spec.compensate !== 'function') {
    throw new ConfigError(`${name}.compensate`, 'must be a function');
  }
  const compensation = policy(
    `${where}.compensate`,
    spec.compensationRetry === undefined ? DEFAULT_COMPENSATION_RETRY : spec.compensationRetry,
    positive(`${name}.compensationTimeoutMs`, spec.compensationTimeoutMs),
  );
  if (!isCommand) {
    const local = spec as LocalStepSpec<unknown, unknown, unknown>;
    return {
      name,
      kind: 'local',
      spec,
      pivot: spec.pivot === true,
      action: policy(where, local.retry ?? false, positive(`${name}.timeoutMs`, local.timeoutMs)),
      compensation,
      resend: undefined,
      replyTimeoutMs: 0,
      successTypes: new Set(),
      failureTypes: new Set(),
    };
  }
  const cmd = spec as CommandStepSpec<unknown, unknown, unknown>;
  if (typeof cmd.command?.payload !== 'function' || cmd.command.event === undefined) {
    throw new ConfigError(`${name}.command`, 'needs event (a definition or type) and payload (a function)');
  }
  if (typeof cmd.reply !== 'object' || cmd.reply === null || cmd.reply.success === undefined) {
    throw new ConfigError(`${name}.reply`, 'needs success: the reply event type(s) that complete the step');
  }
  const successTypes = new Set(typesOf(cmd.reply.success));
  const failureTypes = new Set(typesOf(cmd.reply.failure));
  for (const t of failureTypes) {
    if (successTypes.has(t))
      throw new ConfigError(`${name}.reply`, `${t} is listed as both success and failure`);
  }
  return {
    name,
    kind: 'command',
    spec,
    pivot: spec.pivot === true,
    action: undefined,
    compensation,
    resend: cmd.retry ? new Retry({ name: where, maxRetries: 0, ...cmd.retry }) : undefined,
    replyTimeoutMs: positive(`${name}.timeoutMs`, cmd.timeoutMs) ?? DEFAULT_REPLY_TIMEOUT_MS,
    successTypes,
    failureTypes,
  };
}

function typesOf(refs: ReplyRef | readonly ReplyRef[] | undefined): string[] {
  if (refs === undefined) return [];
  const list = Array.isArray(refs) ? (refs as readonly ReplyRef[]) : [refs as ReplyRef];
  return list.map((r) => (typeof r === 'string' ? r : r.type));
}

/** The step's policy: the per-attempt timeout inside the retry loop (built from Herald's resilience policies). */
function policy(name: string, retry: RetryOptions | false, timeoutMs: number | undefined): Policy {
  const parts = [];
  if (retry) parts.push(new Retry({ name, ...retry }));
  if (timeoutMs !== undefined) parts.push(new Timeout(timeoutMs, { name }));
  if (parts.length === 0)
    return { execute: (fn) => Promise.resolve().then(() => fn({ signal: NEVER, attempt: 1 })) };
  return parts.length === 1 ? parts[0]! : wrap(...parts);
}

const NEVER = new AbortController().signal;

function positive(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a number of milliseconds > 0, got ${String(value)}`);
  }
  return value;
}
