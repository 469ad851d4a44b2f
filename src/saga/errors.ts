import { HeraldError } from '../core/errors.js';

/** The saga's lease was taken over by another instance (or released): this instance must stop advancing it. */
export class SagaLeaseLostError extends HeraldError {
  constructor(
    readonly sagaId: string,
    readonly owner: string,
  ) {
    super(
      'HERALD_SAGA_LEASE_LOST',
      `saga ${sagaId} is no longer leased to ${owner} (another instance took it over after the lease expired); ` +
        'this instance stops advancing it',
    );
  }
}

/** Another instance holds the saga's lease right now; try again once it is released or expires. */
export class SagaBusyError extends HeraldError {
  constructor(
    readonly sagaId: string,
    readonly holder: string | undefined,
  ) {
    super(
      'HERALD_SAGA_BUSY',
      `saga ${sagaId} is being advanced by ${holder ?? 'another instance'}; try again in a moment`,
    );
  }
}

/** No saga with this id in the store. */
export class SagaNotFoundError extends HeraldError {
  constructor(readonly sagaId: string) {
    super(
      'HERALD_SAGA_NOT_FOUND',
      `no saga with id ${JSON.stringify(sagaId)}; list them with \`herald saga list\``,
    );
  }
}

/** An operation does not apply to the saga in its current status (e.g. retry of a completed saga). */
export class SagaStateError extends HeraldError {
  constructor(
    readonly sagaId: string,
    readonly status: string,
    message: string,
  ) {
    super('HERALD_SAGA_STATE', `saga ${sagaId} is ${status}: ${message}`);
  }
}

/** The saga ran past its `timeoutMs`: it compensates (or parks as `failed` after its pivot). */
export class SagaTimeoutError extends HeraldError {
  constructor(readonly timeoutMs: number) {
    super('HERALD_SAGA_TIMEOUT', `saga did not finish within ${timeoutMs} ms`);
  }
}

/** A command step got no reply within its `timeoutMs`. */
export class SagaReplyTimeoutError extends HeraldError {
  constructor(
    readonly step: string,
    readonly timeoutMs: number,
  ) {
    super('HERALD_SAGA_REPLY_TIMEOUT', `step ${step}: no reply within ${timeoutMs} ms`);
  }
}

/** A command step's reply reported failure. */
export class SagaStepRejectedError extends HeraldError {
  constructor(
    readonly step: string,
    readonly replyType: string,
    reason: string,
  ) {
    super('HERALD_SAGA_STEP_REJECTED', `step ${step} was rejected (${replyType}): ${reason}`);
  }
}

/** The saga type is not registered with this runner. */
export class UnknownSagaTypeError extends HeraldError {
  constructor(
    readonly type: string,
    known: readonly string[],
  ) {
    super(
      'HERALD_SAGA_UNKNOWN_TYPE',
      `saga type ${JSON.stringify(type)} is not registered with this runner; known: ${known.join(', ') || '(none)'}`,
    );
  }
}

/** A step's effect threw inside the store transaction: nothing of the step's completion was written. */
export class SagaEffectError extends HeraldError {
  constructor(
    readonly step: string,
    cause: unknown,
  ) {
    super(
      'HERALD_SAGA_EFFECT_FAILED',
      `step ${step}: its effect failed inside the store transaction (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
  }
}
