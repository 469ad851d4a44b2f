/**
 * The persisted state of one saga. Everything a runner needs to resume it lives here, so any
 * instance can pick a saga up from its store after a crash.
 */

/**
 * `running`: moving forward (possibly waiting for a reply). `compensating`: undoing completed steps
 * in reverse. `completed` / `compensated` / `aborted`: final. `failed` (a step after the pivot gave
 * up) and `compensation-failed` (a compensation gave up) are parked for an operator: `retry` resumes
 * them, `abort` closes them.
 */
export type SagaStatus =
  'running' | 'compensating' | 'completed' | 'compensated' | 'failed' | 'compensation-failed' | 'aborted';

export const SAGA_STATUSES: readonly SagaStatus[] = [
  'running',
  'compensating',
  'completed',
  'compensated',
  'failed',
  'compensation-failed',
  'aborted',
];

/** No runner will touch a saga in these statuses again. */
export const FINAL_STATUSES: ReadonlySet<SagaStatus> = new Set(['completed', 'compensated', 'aborted']);
/** Waiting for an operator. */
export const PARKED_STATUSES: ReadonlySet<SagaStatus> = new Set(['failed', 'compensation-failed']);

export type StepStatus =
  | 'pending'
  | 'running'
  | 'waiting'
  | 'done'
  | 'failed'
  | 'compensating'
  | 'compensated'
  | 'compensation-failed';

export interface StepState {
  readonly name: string;
  status: StepStatus;
  /** Action attempts started (across processes). */
  attempts: number;
  /** Compensation attempts started (across processes). */
  compensations: number;
  result?: unknown;
  error?: string;
  startedAt?: number;
  endedAt?: number;
}

/** A command step whose command is (being) sent and whose reply is awaited. */
export interface SagaWaiting {
  readonly step: number;
  /** The command's event id; a reply's `causationId` must name it. */
  readonly commandId: string;
  /** False until the publish returned: a runner resuming the saga sends the command again (same id). */
  sent: boolean;
  /** Reply deadline (epoch ms). */
  until: number;
}

export interface TimelineEntry {
  readonly at: number;
  readonly event: string;
  readonly step?: string;
  readonly detail?: string;
}

export interface SagaRecord {
  readonly id: string;
  readonly type: string;
  status: SagaStatus;
  readonly input: unknown;
  /** Forward: the step to run next. Compensating: the step being (or next to be) compensated. */
  cursor: number;
  steps: StepState[];
  /** Set once the pivot step completed: from then on the saga only goes forward. */
  pivotPassed: boolean;
  waiting?: SagaWaiting;
  /** The failure that made the saga compensate or park. */
  error?: { readonly step?: string; readonly message: string; readonly code?: string };
  /** Saga deadline (epoch ms), from the definition's `timeoutMs`. */
  deadline?: number;
  /** When a runner should next look at the saga (epoch ms); null when only a reply or an operator can move it. */
  wakeAt: number | null;
  /** Optimistic-concurrency version: every commit increments it. */
  version: number;
  /** Current lease, as read from the store. */
  lease?: { readonly owner: string; readonly until: number };
  readonly createdAt: number;
  updatedAt: number;
  /** Caller-supplied strings (e.g. `traceparent`), kept for observers. */
  readonly metadata: Record<string, string>;
  timeline: TimelineEntry[];
}

/** Longest timeline kept per saga; older entries are dropped (the first one, `started`, stays). */
export const TIMELINE_LIMIT = 200;

export function addTimeline(record: SagaRecord, entry: Omit<TimelineEntry, 'at'>, now = Date.now()): void {
  record.timeline.push({ at: now, ...entry });
  if (record.timeline.length > TIMELINE_LIMIT)
    record.timeline.splice(1, record.timeline.length - TIMELINE_LIMIT);
}

/** A deep copy, so a store never shares mutable state with its caller. */
export function cloneRecord(record: SagaRecord): SagaRecord {
  return structuredClone(record);
}

/** What a store keeps besides the lease: the record without its `lease` field, as JSON. */
export function serializeRecord(record: SagaRecord): string {
  const { lease: _lease, ...rest } = record;
  return JSON.stringify(rest);
}

export function deserializeRecord(json: string, lease?: { owner: string; until: number }): SagaRecord {
  const record = JSON.parse(json) as SagaRecord;
  if (lease) record.lease = lease;
  return record;
}
