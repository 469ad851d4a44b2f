import { isBinaryMessage, jsonEnvelopeOf, withJsonPayload } from '../core/codec/wire.js';
import { REPLAY_GROUP_HEADER } from '../core/consumer/consumer.js';
import type { DeadLetterQueue } from '../core/dead-letters.js';
import { SchemaValidationError, toError } from '../core/errors.js';
import type { EventDefinition } from '../core/event.js';
import type { Herald } from '../core/herald.js';
import type {
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterKey,
  DeadLetterReason,
  DeadLetterSearch,
  FailureCounts,
} from '../store/dead-letter-store.js';
import { summarizeDeadLetters, summarizeEntry } from '../store/dead-letter-summary.js';
import type { GroupStats, Transport } from '../transport/transport.js';
import { AuditLog, type AuditRecord } from './audit.js';
import {
  DeadLetterIndex,
  groupsFromCounts,
  indexed,
  storeCanGroup,
  storeFilter,
  type ConsoleFilter,
  type FailureGroup,
  type IndexedLetter,
} from './dead-letter-index.js';
import { LiveMetrics, type FlowNumbers } from './live-metrics.js';
import { Masker } from './masking.js';
import { errorFingerprint } from '../store/dead-letter-fingerprint.js';
import { HttpProblem } from './problem.js';
import { SagaConsole } from './sagas.js';
import type { SagaStore } from '../saga/store.js';

/** Health probes as `herald/health`'s HealthProbes has them (structural, so any source fits). */
export interface ProbesLike {
  health(): Promise<{ status: number; body: unknown }>;
  ready(): Promise<{ status: number; body: unknown }>;
}

export interface ConsoleOptions {
  /** A Herald instance: its DLQ, transport, consumers and live numbers. */
  readonly herald?: Herald;
  /** More Herald instances in the same process whose live numbers and consumers to show. */
  readonly observe?: readonly Herald[];
  /** Without `herald`: the DLQ to administer. */
  readonly deadLetters?: DeadLetterQueue;
  /** Without `herald`: the transport replays publish to and queue depths come from. */
  readonly transport?: Transport;
  /** Topic/group pairs to show even before anything happened on them. */
  readonly flows?: readonly { readonly topic: string; readonly group: string }[];
  /** Health and readiness with each check. */
  readonly probes?: ProbesLike;
  /** Circuit breakers by name (anything with a `state`), shown on the overview. */
  readonly breakers?: Readonly<Record<string, { readonly state: string }>>;
  /** A degradation manager (anything with a `level`). */
  readonly degradation?: { readonly level: string };
  /** Event definitions: an edited payload is validated against its event's schema. */
  readonly events?: readonly EventDefinition[];
  /** Payload fields to mask in views and exports (`email`, `customer.phone`). */
  readonly mask?: readonly string[];
  /** Trace UI link, `{traceId}` replaced, e.g. `http://localhost:16686/trace/{traceId}`. */
  readonly traceUrl?: string;
  /** Bearer token for mutations; default: a random one (read it from `consoleHandler(...).token`). */
  readonly token?: string;
  /** Refuse every mutation. */
  readonly readOnly?: boolean;
  /** Also append the audit log to this JSON-lines file. */
  readonly auditFile?: string;
  /** Shown in the page title. */
  readonly title?: string;
  /** A saga store: the Sagas view lists its sagas and retries or aborts them. */
  readonly sagas?: SagaStore;
}

/** A replay or purge target: entry ids, or everything matching a filter (a failure group, a time range...). */
export type Selection = { readonly ids: readonly string[] } | { readonly filter: ConsoleFilter };

/** What a replay or purge would touch. */
export interface DryRun {
  readonly count: number;
  readonly groups: Record<string, number>;
  readonly topics: Record<string, number>;
  readonly failureGroups: Record<string, number>;
  /** Selected ids that are not (or no longer) in the DLQ. */
  readonly notFound: number;
}

/** One row of the overview: a consumer group on a topic. */
export interface FlowRow extends FlowNumbers {
  readonly topic: string;
  readonly group: string;
  readonly lag?: number;
  readonly inFlight?: number;
  /** Messages waiting for their retry. */
  readonly retrying?: number;
  /** Messages published for a later time, not yet due (where the transport reports it). */
  readonly scheduled?: number;
  readonly deadLetters: number;
}

export interface Overview {
  readonly time: number;
  readonly title: string;
  readonly readOnly: boolean;
  readonly transport: string;
  readonly flows: readonly FlowRow[];
  readonly totals: { rateIn: number; rateOut: number; failRate: number; deadLetters: number };
  readonly health?: { status: number; body: unknown };
  readonly ready?: { status: number; body: unknown };
  readonly breakers?: readonly { name: string; state: string }[];
  readonly degradation?: string;
  /** Sagas per status (of the newest `SUMMARY_LIMIT`), when the console has a saga store. */
  readonly sagas?: Partial<Record<string, number>>;
}

export { HttpProblem };

const REPLAY_CHUNK = 500;
/** Entries read per store call when a replay, purge, dry run or export walks a selection. */
const STORE_PAGE = 1000;

/** What a replay or purge needs of each selected entry. */
interface Picked {
  readonly id: string;
  readonly group: string;
}

/** The console's operations, without HTTP: what the admin API calls. */
export class ConsoleService {
  readonly dlq: DeadLetterQueue;
  readonly transport: Transport;
  readonly index: DeadLetterIndex;
  readonly audit: AuditLog;
  readonly masker: Masker;
  readonly live = new LiveMetrics();
  /** Present when the console was given a saga store. */
  readonly sagas: SagaConsole | undefined;
  private readonly heralds: readonly Herald[];
  private readonly events = new Map<string, EventDefinition>();
  private readonly detach: (() => void)[] = [];
  private statsCache: { at: number; value: Promise<Map<string, GroupStats | undefined>> } | undefined;

  constructor(readonly options: ConsoleOptions) {
    const dlq = options.herald?.deadLetters ?? options.deadLetters;
    const transport = options.herald?.transport ?? options.transport;
    if (!dlq || !transport)
      throw new TypeError('consoleHandler needs { herald } or { deadLetters, transport }');
    this.dlq = dlq;
    this.transport = transport;
    this.index = new DeadLetterIndex(dlq.store);
    this.audit = new AuditLog(options.auditFile ? { file: options.auditFile } : {});
    this.masker = new Masker(options.mask);
    this.sagas = options.sagas ? new SagaConsole(options.sagas, this.audit, this.masker) : undefined;
    this.heralds = [...(options.herald ? [options.herald] : []), ...(options.observe ?? [])];
    for (const h of new Set(this.heralds)) this.detach.push(h.observe(this.live.observer));
    for (const e of options.events ?? []) this.events.set(e.type, e);
    // Pages, dry runs, replays and purges by store fields go to the store (ADR 0975), and so do
    // searches and bulk actions by a search when it has `search` and `searchKeys` (SQLite, Redis; ADR
    // 0976); the index serves searches on the other stores. A store that counts failure groups itself
    // also serves the overview and groups, so the index is built on the first such request, if ever.
    // Otherwise the overview needs it: build it now, so the first view does not wait for the scan.
    if (typeof dlq.store.failureCounts !== 'function') this.index.fresh().catch(() => undefined);
  }

  close(): void {
    for (const d of this.detach.splice(0)) d();
  }

  // ---- overview -------------------------------------------------------------------------------

  /** Dead letters per topic and group: from the store's counts when it has them, else from the index. */
  private async deadLetterPairs(): Promise<Map<string, number>> {
    const store = this.dlq.store;
    if (typeof store.failureCounts !== 'function') {
      await this.index.fresh().catch(() => undefined);
      return this.index.pairs();
    }
    const out = new Map<string, number>();
    for (const c of (await store.failureCounts()).counts) {
      const k = `${c.topic}\u0000${c.group}`;
      out.set(k, (out.get(k) ?? 0) + c.count);
    }
    return out;
  }

  private pairs(dl: Map<string, number>): { topic: string; group: string }[] {
    const keys = new Set<string>();
    for (const f of this.options.flows ?? []) keys.add(`${f.topic}\u0000${f.group}`);
    for (const h of this.heralds)
      for (const c of h.subscriptions) for (const t of c.topics) keys.add(`${t}\u0000${c.group}`);
    for (const [t, groups] of this.live.groupsByTopic) for (const g of groups) keys.add(`${t}\u0000${g}`);
    for (const k of dl.keys()) keys.add(k);
    return [...keys].sort().map((k) => {
      const [topic, group] = k.split('\u0000') as [string, string];
      return { topic, group };
    });
  }

  /** Queue depths, at most once a second whatever the number of viewers. */
  private stats(pairs: { topic: string; group: string }[]): Promise<Map<string, GroupStats | undefined>> {
    if (this.statsCache && Date.now() - this.statsCache.at < 900) return this.statsCache.value;
    const value = (async () => {
      const out = new Map<string, GroupStats | undefined>();
      const stats = this.transport.stats?.bind(this.transport);
      if (!stats) return out;
      await Promise.all(
        pairs.map(async ({ topic, group }) => {
          out.set(
            `${topic}\u0000${group}`,
            await withTimeout(stats(topic, group), 2000).catch(() => undefined),
          );
        }),
      );
      return out;
    })();
    this.statsCache = { at: Date.now(), value };
    return value;
  }

  async overview(): Promise<Overview> {
    const dl = await this.deadLetterPairs().catch(() => new Map<string, number>());
    const pairs = this.pairs(dl);
    const [stats, health, ready, sagas] = await Promise.all([
      this.stats(pairs),
      this.options.probes
        ?.health()
        .catch((e: unknown) => ({ status: 503, body: { error: toError(e).message } })),
      this.options.probes
        ?.ready()
        .catch((e: unknown) => ({ status: 503, body: { error: toError(e).message } })),
      this.sagas?.summary().catch(() => undefined),
    ]);
    const now = Date.now();
    const flows: FlowRow[] = pairs.map(({ topic, group }) => {
      const key = `${topic}\u0000${group}`;
      const s = stats.get(key);
      return {
        topic,
        group,
        ...this.live.numbers(topic, group, now),
        ...(s ? { lag: s.lag, inFlight: s.inFlight, retrying: s.delayed } : {}),
        ...(s?.scheduled !== undefined ? { scheduled: s.scheduled } : {}),
        deadLetters: dl.get(key) ?? 0,
      };
    });
    const topicsIn = new Map(flows.map((f) => [f.topic, f.rateIn]));
    const breakers = this.options.breakers;
    return {
      time: now,
      title: this.options.title ?? 'Herald',
      readOnly: this.options.readOnly === true,
      transport: this.transport.name,
      flows,
      totals: {
        rateIn: round([...topicsIn.values()].reduce((a, b) => a + b, 0)),
        rateOut: round(flows.reduce((a, f) => a + f.rateOut, 0)),
        failRate: round(flows.reduce((a, f) => a + f.failRate, 0)),
        deadLetters: [...dl.values()].reduce((a, b) => a + b, 0),
      },
      ...(health ? { health } : {}),
      ...(ready ? { ready } : {}),
      ...(breakers
        ? { breakers: Object.entries(breakers).map(([name, b]) => ({ name, state: String(b.state) })) }
        : {}),
      ...(this.options.degradation ? { degradation: String(this.options.degradation.level) } : {}),
      ...(sagas ? { sagas: sagas.totals } : {}),
    };
  }

  // ---- dead letters ---------------------------------------------------------------------------

  /**
   * One page of dead letters and how many match. A filter of store fields (group, topic, type,
   * handler, reason, time, fingerprint) is one keyset page and one count from the store (ADR 0975);
   * free text, error text, aggregate and event ids by the store's `search` when it has one (SQLite,
   * Redis; ADR 0976), else by the index, built on first use.
   */
  async list(
    filter: ConsoleFilter,
    page: { limit?: number; cursor?: string; newestFirst?: boolean },
  ): Promise<{ items: IndexedLetter[]; total: number; nextCursor?: string }> {
    const store = this.dlq.store;
    const request = {
      limit: Math.min(Math.max(1, Math.floor(page.limit ?? 50)), 1000),
      ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
      order: page.newestFirst ? ('newest' as const) : ('oldest' as const),
    };
    const f = storeFilter(filter);
    if (!f && store.search) {
      const found = await store.search(toSearch(filter), request);
      return {
        items: found.items.map(indexed),
        total: found.total,
        ...(found.nextCursor !== undefined ? { nextCursor: found.nextCursor } : {}),
      };
    }
    if (!f) {
      await this.index.fresh();
      return this.index.page(filter, page);
    }
    const [found, total] = await Promise.all([summarizeDeadLetters(store, f, request), store.count(f)]);
    return {
      items: found.items.map(indexed),
      total,
      ...(found.nextCursor !== undefined ? { nextCursor: found.nextCursor } : {}),
    };
  }

  async groups(filter: ConsoleFilter): Promise<FailureGroup[]> {
    const store = this.dlq.store;
    if (storeCanGroup(store, filter) && store.failureCounts)
      return groupsFromCounts(await store.failureCounts(filter));
    if (store.searchKeys) return this.groupsOfSearch(await store.searchKeys(toSearch(filter)));
    await this.index.fresh();
    return this.index.groups(filter);
  }

  /**
   * Failure groups of a search's matches: counted from their keys, each group's sample read from
   * its newest entry (the greatest (time, id), as the index picks it), one read per group.
   */
  private async groupsOfSearch(keys: readonly DeadLetterKey[]): Promise<FailureGroup[]> {
    const counts = new Map<string, Mutable<FailureCounts['counts'][number]>>();
    const newest = new Map<string, string>();
    for (const k of keys) {
      const place = JSON.stringify([k.fingerprint, k.topic, k.group, k.eventType ?? null, k.reason]);
      const c = counts.get(place);
      // Keys come oldest first: the last seen of a fingerprint is its newest entry.
      newest.set(k.fingerprint, k.id);
      if (c) {
        c.count++;
        c.lastSeen = k.deadLetteredAt;
        continue;
      }
      counts.set(place, {
        fingerprint: k.fingerprint,
        topic: k.topic,
        group: k.group,
        ...(k.eventType !== undefined ? { eventType: k.eventType } : {}),
        reason: k.reason,
        count: 1,
        firstSeen: k.deadLetteredAt,
        lastSeen: k.deadLetteredAt,
      });
    }
    const samples: FailureCounts['samples'][number][] = [];
    const pick = [...newest];
    for (let i = 0; i < pick.length; i += 100) {
      const chunk = pick.slice(i, i + 100);
      const entries = await Promise.all(chunk.map(([, id]) => this.dlq.store.get(id)));
      entries.forEach((e, j) => {
        if (!e) return; // removed meanwhile: the group shows without a sample
        const s = summarizeEntry(e);
        samples.push({
          fingerprint: chunk[j]![0],
          errorName: s.errorName,
          message: s.errorMessage,
          ...(s.stackTop !== undefined ? { stackTop: s.stackTop } : {}),
        });
      });
    }
    return groupsFromCounts({ counts: [...counts.values()], samples });
  }

  /** An entry as the console shows it: body decoded, masked fields masked, trace link. */
  async entry(id: string): Promise<Record<string, unknown>> {
    const entry = await this.dlq.get(id);
    if (!entry) {
      this.index.forget([id]);
      throw new HttpProblem(404, `no dead letter with id ${JSON.stringify(id)}`);
    }
    return this.view(entry);
  }

  view(entry: DeadLetterEntry): Record<string, unknown> {
    const { body, ...message } = entry.message;
    const decoded = decodeBody(entry);
    const traceId = /^[\da-f]{2}-([\da-f]{32})-/.exec(message.headers['traceparent'] ?? '')?.[1];
    const failure = errorFingerprint(entry.error);
    return {
      ...entry,
      message: {
        ...message,
        headers: this.masker.mask(message.headers),
        ...(decoded !== undefined
          ? { body: this.masker.mask(decoded), bodyEncoding: 'json' }
          : this.masker.enabled
            ? {
                body: `(${body.byteLength} bytes, not JSON: hidden while masking is on)`,
                bodyEncoding: 'hidden',
              }
            : { body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' }),
      },
      fingerprint: failure,
      ...(traceId ? { traceId } : {}),
      ...(traceId && this.options.traceUrl
        ? { traceUrl: this.options.traceUrl.replace('{traceId}', traceId) }
        : {}),
      editable: decoded !== undefined && isEnvelope(decoded),
      schemaKnown: entry.eventType !== undefined && this.events.get(entry.eventType)?.schema !== undefined,
    };
  }

  /**
   * The selected entries' ids and groups: by id from the store, by a filter of store fields by
   * paging through the store, by a search from the store's `searchKeys` (one scan), otherwise from
   * the index.
   */
  private async selected(selection: Selection): Promise<{ letters: Picked[]; notFound: number }> {
    if ('ids' in selection) {
      const letters: Picked[] = [];
      let notFound = 0;
      for await (const entry of this.byId(selection.ids)) {
        if (entry) letters.push({ id: entry.id, group: entry.group });
        else notFound++;
      }
      return { letters, notFound };
    }
    const f = storeFilter(selection.filter);
    if (f) {
      const letters: Picked[] = [];
      for await (const l of this.walk(f)) letters.push({ id: l.id, group: l.group });
      return { letters, notFound: 0 };
    }
    const searchKeys = this.dlq.store.searchKeys?.bind(this.dlq.store);
    if (searchKeys) {
      const keys = await searchKeys(toSearch(selection.filter));
      return { letters: keys.map((k) => ({ id: k.id, group: k.group })), notFound: 0 };
    }
    await this.index.fresh(true);
    return { letters: this.index.select(selection.filter), notFound: 0 };
  }

  /** The entries with these ids (each id once), `undefined` for those not found, 100 reads at a time. */
  private async *byId(ids: readonly string[]): AsyncGenerator<DeadLetterEntry | undefined> {
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 100)
      yield* await Promise.all(unique.slice(i, i + 100).map((id) => this.dlq.store.get(id)));
  }

  /** Every summary matching a store filter, oldest first, a page at a time. */
  private async *walk(filter: DeadLetterFilter): AsyncGenerator<IndexedLetter> {
    let cursor: string | undefined;
    do {
      const page = await summarizeDeadLetters(this.dlq.store, filter, {
        limit: STORE_PAGE,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      for (const s of page.items) yield indexed(s);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }

  /**
   * What a replay or purge would touch. A filter of store fields on a store with `failureCounts` is
   * answered by it without reading an entry, a search by the store's `searchKeys`; ids are read
   * from the store.
   */
  async dryRun(selection: Selection): Promise<DryRun> {
    const groups: Record<string, number> = {};
    const topics: Record<string, number> = {};
    const failureGroups: Record<string, number> = {};
    let count = 0;
    const add = (l: { group: string; topic: string; fingerprint: string }, n = 1): void => {
      count += n;
      groups[l.group] = (groups[l.group] ?? 0) + n;
      topics[l.topic] = (topics[l.topic] ?? 0) + n;
      failureGroups[l.fingerprint] = (failureGroups[l.fingerprint] ?? 0) + n;
    };
    const store = this.dlq.store;
    if ('ids' in selection) {
      let notFound = 0;
      for await (const e of this.byId(selection.ids)) {
        if (e) add({ group: e.group, topic: e.topic, fingerprint: errorFingerprint(e.error) });
        else notFound++;
      }
      return { count, groups, topics, failureGroups, notFound };
    }
    const f = storeFilter(selection.filter);
    if (f && store.failureCounts) {
      for (const c of (await store.failureCounts(f)).counts) add(c, c.count);
    } else if (f) {
      for await (const l of this.walk(f)) add(l);
    } else if (store.searchKeys) {
      for (const k of await store.searchKeys(toSearch(selection.filter))) add(k);
    } else {
      await this.index.fresh(true);
      for (const l of this.index.select(selection.filter)) add(l);
    }
    return { count, groups, topics, failureGroups, notFound: 0 };
  }

  async replay(
    selection: Selection,
    who: Who,
  ): Promise<{ replayed: number; failed: number; notFound: number }> {
    const { letters, notFound } = await this.selected(selection);
    let replayed = 0;
    const failed: string[] = [];
    for (let i = 0; i < letters.length; i += REPLAY_CHUNK) {
      const ids = letters.slice(i, i + REPLAY_CHUNK).map((l) => l.id);
      const result = await this.dlq.replay(ids);
      replayed += result.replayed;
      const failedIds = new Set(result.failed.map((f) => f.id));
      failed.push(...failedIds);
      this.index.forget(ids.filter((id) => !failedIds.has(id)));
    }
    await this.record(who, 'replay', selection, replayed, letters, failed.length);
    return { replayed, failed: failed.length, notFound };
  }

  async purge(selection: Selection, expect: number, who: Who): Promise<{ purged: number }> {
    const { letters } = await this.selected(selection);
    if (letters.length !== expect)
      throw new HttpProblem(
        409,
        `the selection now holds ${letters.length} entries, not ${expect}: check it again`,
        {
          count: letters.length,
        },
      );
    const ids = letters.map((l) => l.id);
    let purged = 0;
    for (let i = 0; i < ids.length; i += REPLAY_CHUNK)
      purged += await this.dlq.store.remove(ids.slice(i, i + REPLAY_CHUNK));
    this.index.forget(ids);
    await this.record(who, 'purge', selection, purged, letters);
    return { purged };
  }

  /** Replaces the event's payload, validates it when the event's schema is known, and replays it. */
  async replayEdited(id: string, payload: unknown, who: Who): Promise<{ replayed: 1; validated: boolean }> {
    const entry = await this.dlq.get(id);
    if (!entry) throw new HttpProblem(404, `no dead letter with id ${JSON.stringify(id)}`);
    const envelope = decodeBody(entry);
    if (!isEnvelope(envelope))
      throw new HttpProblem(422, 'only JSON-coded events can be edited; this message body is not one');
    const restored = this.masker.unmask(payload, envelope['payload'], []);
    const definition = entry.eventType !== undefined ? this.events.get(entry.eventType) : undefined;
    let validated = false;
    let value = restored;
    if (definition?.schema) {
      try {
        value = await definition.parse(restored);
        validated = true;
      } catch (err) {
        if (err instanceof SchemaValidationError)
          throw new HttpProblem(422, err.message, { issues: err.issues });
        throw err;
      }
    }
    await this.transport.publish(entry.topic, [
      withJsonPayload(entry.message, value, { [REPLAY_GROUP_HEADER]: entry.group }),
    ]);
    await this.dlq.store.remove([id]);
    this.index.forget([id]);
    await this.audit.record({
      at: Date.now(),
      ...who,
      action: 'replay-edited',
      selection: { ids: [id] },
      count: 1,
      groups: { [entry.group]: 1 },
    });
    return { replayed: 1, validated };
  }

  /** Matching entries as masked JSON lines, oldest first. */
  async *export(filter: ConsoleFilter): AsyncGenerator<string> {
    const f = storeFilter(filter);
    if (f) {
      let cursor: string | undefined;
      do {
        const page = await this.dlq.store.list(f, {
          limit: 100,
          ...(cursor !== undefined ? { cursor } : {}),
        });
        for (const e of page.items) yield `${JSON.stringify(this.view(e))}\n`;
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return;
    }
    const store = this.dlq.store;
    let letters: readonly { readonly id: string }[];
    if (store.searchKeys) letters = await store.searchKeys(toSearch(filter));
    else {
      await this.index.fresh(true);
      letters = this.index.select(filter);
    }
    for (let i = 0; i < letters.length; i += 100) {
      const entries = await Promise.all(letters.slice(i, i + 100).map((l) => this.dlq.get(l.id)));
      for (const e of entries) if (e) yield `${JSON.stringify(this.view(e))}\n`;
    }
  }

  private async record(
    who: Who,
    action: AuditRecord['action'],
    selection: Selection,
    count: number,
    letters: readonly Picked[],
    failed = 0,
  ): Promise<void> {
    const groups: Record<string, number> = {};
    for (const l of letters) groups[l.group] = (groups[l.group] ?? 0) + 1;
    await this.audit.record({
      at: Date.now(),
      ...who,
      action,
      selection:
        'ids' in selection ? { ids: selection.ids.slice(0, 20), total: selection.ids.length } : selection,
      count,
      ...(failed > 0 ? { failed } : {}),
      groups,
    });
  }
}

export interface Who {
  readonly actor: string;
  readonly address?: string;
}

export const REASONS: readonly DeadLetterReason[] = ['max-attempts', 'decode', 'schema', 'permanent'];

/** The console's filter as a store search: its free text `q` is the store's `text`. */
function toSearch(filter: ConsoleFilter): DeadLetterSearch {
  const { q, ...rest } = filter;
  return { ...rest, ...(q !== undefined ? { text: q } : {}) };
}

function decodeBody(entry: DeadLetterEntry): unknown {
  const type = entry.message.headers['content-type'];
  if (type !== undefined && type !== 'application/json') return undefined;
  // A binary-mode event (ADR 0010) shows as its whole envelope: headers and payload together.
  if (isBinaryMessage(entry.message.headers)) return jsonEnvelopeOf(entry.message) ?? parseJson(entry);
  return parseJson(entry);
}

function parseJson(entry: DeadLetterEntry): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(entry.message.body)) as unknown;
  } catch {
    return undefined;
  }
}

function isEnvelope(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && 'payload' in v && 'type' in v;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
