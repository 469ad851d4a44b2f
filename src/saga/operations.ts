import { SagaBusyError, SagaNotFoundError, SagaStateError } from './errors.js';
import { addTimeline, cloneRecord, type SagaRecord } from './record.js';
import type { SagaFilter, SagaPage, SagaStore } from './store.js';

/**
 * What an operator does with sagas: list, inspect, retry a parked saga, abort. Works on the store
 * alone (no definitions needed), so the CLI can do it while runners keep going elsewhere: a retried
 * or aborted saga is made due and the next runner that polls the store advances it.
 */
export class SagaOperations {
  private readonly owner: string;

  constructor(
    private readonly store: SagaStore,
    options: { owner?: string; leaseMs?: number } = {},
  ) {
    this.owner = options.owner ?? `operator:${process.pid}`;
    this.leaseMs = options.leaseMs ?? 10_000;
  }

  private readonly leaseMs: number;

  list(filter: SagaFilter = {}, page: { limit?: number; cursor?: string } = {}): Promise<SagaPage> {
    return this.store.list(filter, page);
  }

  /** The saga with its steps and timeline; throws SagaNotFoundError. */
  async inspect(id: string): Promise<SagaRecord> {
    const record = await this.store.get(id);
    if (!record) throw new SagaNotFoundError(id);
    return record;
  }

  /**
   * Resumes a parked saga: `compensation-failed` compensates again from the compensation that
   * failed; `failed` (past its pivot) runs the failed step again. A retried saga has no deadline
   * any more: the operator decided it should go on.
   */
  async retry(id: string): Promise<SagaRecord> {
    return this.change(id, (r) => {
      if (r.status === 'compensation-failed') {
        r.status = 'compensating';
      } else if (r.status === 'failed') {
        r.status = 'running';
        const s = r.steps[r.cursor];
        if (s && s.status === 'failed') s.status = 'pending';
      } else {
        throw new SagaStateError(r.id, r.status, 'only failed and compensation-failed sagas can be retried');
      }
      delete r.deadline;
      r.wakeAt = Date.now();
      addTimeline(r, { event: 'operator.retry' });
    });
  }

  /**
   * Aborts a saga. Before its pivot a running saga compensates what it did (a command awaiting its
   * reply is compensated too); a parked saga is closed as `aborted` without further work.
   */
  async abort(id: string, reason = 'aborted by an operator'): Promise<SagaRecord> {
    return this.change(id, (r) => {
      if (r.status === 'failed' || r.status === 'compensation-failed') {
        r.status = 'aborted';
        r.wakeAt = null;
        addTimeline(r, { event: 'operator.abort', detail: reason });
        return;
      }
      if (r.status !== 'running') {
        throw new SagaStateError(r.id, r.status, 'only running or parked sagas can be aborted');
      }
      if (r.pivotPassed) {
        throw new SagaStateError(r.id, r.status, 'it is past its pivot step and can only go forward');
      }
      let cursor = r.cursor - 1;
      if (r.waiting) {
        if (r.waiting.sent) {
          r.steps[r.waiting.step]!.status = 'done';
          cursor = r.waiting.step;
        } else r.steps[r.waiting.step]!.status = 'failed';
        delete r.waiting;
      }
      r.status = 'compensating';
      r.cursor = cursor;
      r.error = { message: reason, code: 'HERALD_SAGA_ABORTED' };
      r.wakeAt = Date.now();
      addTimeline(r, { event: 'operator.abort', detail: reason });
    });
  }

  private async change(id: string, mutate: (r: SagaRecord) => void): Promise<SagaRecord> {
    const record = await this.store.acquire(id, this.owner, this.leaseMs);
    if (!record) {
      const current = await this.store.get(id);
      if (!current) throw new SagaNotFoundError(id);
      throw new SagaBusyError(id, current.lease?.owner);
    }
    try {
      const next = cloneRecord(record);
      mutate(next);
      next.updatedAt = Date.now();
      await this.store.commit(next, this.owner, { leaseMs: 0 });
      return next;
    } catch (err) {
      await this.store.release(id, this.owner);
      throw err;
    }
  }
}
