import { SagaBusyError, SagaNotFoundError, SagaStateError } from '../saga/errors.js';
import { SagaOperations } from '../saga/operations.js';
import { SAGA_STATUSES, type SagaRecord, type SagaStatus } from '../saga/record.js';
import type { SagaFilter, SagaStore } from '../saga/store.js';
import type { AuditLog } from './audit.js';
import type { Masker } from './masking.js';
import { HttpProblem } from './problem.js';

/** One row of the saga list: what tells sagas apart at a glance (no input, no timeline). */
export interface SagaRow {
  readonly id: string;
  readonly type: string;
  readonly status: SagaStatus;
  /** The step the saga is on (or stopped at), with its status; absent once completed. */
  readonly step?: string;
  readonly stepStatus?: string;
  /** Action plus compensation attempts over every step. */
  readonly attempts: number;
  readonly error?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Sagas per type and status, over the newest `scanned` sagas of the store. */
export interface SagaSummary {
  readonly types: readonly { readonly type: string; readonly counts: Partial<Record<SagaStatus, number>> }[];
  readonly totals: Partial<Record<SagaStatus, number>>;
  readonly scanned: number;
  /** True when the store holds more sagas than the console counts (`SUMMARY_LIMIT`). */
  readonly truncated: boolean;
}

/** How many of the newest sagas the counts cover: a store has no count query, so they are paged. */
export const SUMMARY_LIMIT = 10_000;
/** Counts are reused for this long, whatever the number of viewers (the overview asks every second). */
const SUMMARY_TTL_MS = 3000;

/**
 * The console's saga operations: list and count sagas, show one's timeline, retry a parked saga and
 * abort one, through `SagaOperations` (the same code as `herald saga`), every change audited.
 */
export class SagaConsole {
  private readonly ops: SagaOperations;
  private summaryCache: { at: number; value: Promise<SagaSummary> } | undefined;

  constructor(
    private readonly store: SagaStore,
    private readonly audit: AuditLog,
    private readonly masker: Masker,
  ) {
    this.ops = new SagaOperations(store, { owner: `console:${process.pid}` });
  }

  get storeName(): string {
    return this.store.name;
  }

  async list(
    filter: SagaFilter,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: SagaRow[]; nextCursor?: string }> {
    const result = await this.ops.list(filter, page);
    return {
      items: result.items.map(toRow),
      ...(result.nextCursor !== undefined ? { nextCursor: result.nextCursor } : {}),
    };
  }

  /** Counts per type and status of the newest `SUMMARY_LIMIT` sagas, cached for a few seconds. */
  summary(): Promise<SagaSummary> {
    if (this.summaryCache && Date.now() - this.summaryCache.at < SUMMARY_TTL_MS)
      return this.summaryCache.value;
    const value = this.count();
    value.catch(() => (this.summaryCache = undefined));
    this.summaryCache = { at: Date.now(), value };
    return value;
  }

  private async count(): Promise<SagaSummary> {
    const byType = new Map<string, Partial<Record<SagaStatus, number>>>();
    const totals: Partial<Record<SagaStatus, number>> = {};
    let scanned = 0;
    let cursor: string | undefined;
    do {
      const page = await this.store.list({}, { limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const r of page.items) {
        let c = byType.get(r.type);
        if (!c) byType.set(r.type, (c = {}));
        c[r.status] = (c[r.status] ?? 0) + 1;
        totals[r.status] = (totals[r.status] ?? 0) + 1;
      }
      scanned += page.items.length;
      cursor = page.nextCursor;
    } while (cursor && scanned < SUMMARY_LIMIT);
    return {
      types: [...byType].sort(([a], [b]) => (a < b ? -1 : 1)).map(([type, counts]) => ({ type, counts })),
      totals,
      scanned,
      truncated: cursor !== undefined,
    };
  }

  /** The saga with its steps and timeline; its input masked like dead-letter payloads. */
  async detail(id: string): Promise<Record<string, unknown>> {
    const record = await this.call(() => this.ops.inspect(id));
    return this.view(record);
  }

  async retry(id: string, who: { actor: string; address?: string }): Promise<Record<string, unknown>> {
    const record = await this.call(() => this.ops.retry(id));
    await this.record(who, 'saga-retry', record);
    return this.view(record);
  }

  async abort(
    id: string,
    reason: string | undefined,
    who: { actor: string; address?: string },
  ): Promise<Record<string, unknown>> {
    const record = await this.call(() =>
      this.ops.abort(id, reason ?? `aborted from the console by ${who.actor}`),
    );
    await this.record(who, 'saga-abort', record);
    return this.view(record);
  }

  private view(r: SagaRecord): Record<string, unknown> {
    return {
      ...r,
      input: this.masker.mask(r.input),
      // What the operator can do now, so the page shows only buttons that will work.
      canRetry: r.status === 'failed' || r.status === 'compensation-failed',
      canAbort:
        r.status === 'failed' ||
        r.status === 'compensation-failed' ||
        (r.status === 'running' && !r.pivotPassed),
    };
  }

  private async record(
    who: { actor: string; address?: string },
    action: 'saga-retry' | 'saga-abort',
    r: SagaRecord,
  ): Promise<void> {
    this.summaryCache = undefined;
    await this.audit.record({
      at: Date.now(),
      ...who,
      action,
      selection: { saga: r.id, type: r.type },
      count: 1,
      groups: { [r.type]: 1 },
    });
  }

  /** Saga errors as HTTP problems: unknown id 404, wrong status or busy 409. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SagaNotFoundError) throw new HttpProblem(404, err.message, { code: err.code });
      if (err instanceof SagaStateError || err instanceof SagaBusyError)
        throw new HttpProblem(409, err.message, { code: err.code });
      throw err;
    }
  }
}

/** `type` and `status` query parameters, validated. */
export function parseSagaFilter(type: string | null, status: string | null): SagaFilter {
  if (type !== null && type.length > 200) throw new HttpProblem(400, 'type must be at most 200 characters');
  if (status && !SAGA_STATUSES.includes(status as SagaStatus))
    throw new HttpProblem(400, `status must be one of ${SAGA_STATUSES.join(', ')}`);
  return { ...(type ? { type } : {}), ...(status ? { status: status as SagaStatus } : {}) };
}

function toRow(r: SagaRecord): SagaRow {
  const step = r.status === 'completed' ? undefined : r.steps[r.cursor];
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    ...(step ? { step: step.name, stepStatus: step.status } : {}),
    attempts: r.steps.reduce((n, s) => n + s.attempts + s.compensations, 0),
    ...(r.error ? { error: r.error.step ? `${r.error.step}: ${r.error.message}` : r.error.message } : {}),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}
