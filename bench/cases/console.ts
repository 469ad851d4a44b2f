/**
 * The console's dead-letter views on 100,000 entries, per backend (SQLite file, Redis on 6379).
 * First what a cold console answers from the store alone (ADR 0975: list pages, filtered pages,
 * a failure group's page, the next page by cursor, a dry run; ADR 0976: searches, dry runs and
 * failure groups by a search), checking that no index was built; then the index's first build
 * (what every one of those paid before, and what stores without `search` still pay once), its
 * refresh and the queries it answers; then the store's failure counts (ADR 0973) and the raw store
 * calls for scale. `dropSearch` removes the Redis search records, so the first search after an
 * upgrade is measured too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { backends, type OpenedBackend } from '../../src/backends/index.js';
import { DeadLetterIndex } from '../../src/console/index.js';
import { groupsFromCounts } from '../../src/console/dead-letter-index.js';
import { ConsoleService } from '../../src/console/service.js';
import { DeadLetterAdmin } from '../../src/core/dead-letters.js';
import { errorFingerprint } from '../../src/store/dead-letter-fingerprint.js';
import type { DeadLetterEntry, DeadLetterStore } from '../../src/store/dead-letter-store.js';

const N = Number(process.env['CONSOLE_BENCH_N'] ?? 100_000);
const GROUPS = ['billing', 'notifications', 'search-indexer', 'analytics', 'audit-log'];
const TYPES = ['order.placed', 'order.paid', 'invoice.requested', 'user.signed-up'];
const ERRORS = Array.from({ length: 24 }, (_, k) => ({
  name: k % 3 === 0 ? 'TypeError' : 'Error',
  message: (i: number) =>
    k % 3 === 0
      ? `Cannot read properties of undefined (reading 'field${k}')`
      : `Upstream ${k} returned 503 for request req-${i} after ${i % 7} ms`,
  stack: (msg: string) =>
    `Error: ${msg}\n    at handler${k} (/app/src/handlers/h${k}.ts:${40 + k}:13)\n${'    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n'.repeat(6)}`,
}));

function entry(i: number, base: number): DeadLetterEntry {
  const err = ERRORS[i % ERRORS.length]!;
  const group = GROUPS[i % GROUPS.length]!;
  const message = err.message(i);
  const id = `0196f3c2-${String(i).padStart(12, '0')}`;
  return {
    id: `${group}:${id}`,
    reason: i % 10 === 0 ? 'schema' : 'max-attempts',
    message: {
      id,
      key: `customer-${i % 1000}`,
      headers: { 'content-type': 'application/json', 'event-type': TYPES[i % TYPES.length]! },
      body: new TextEncoder().encode(
        JSON.stringify({
          id,
          type: TYPES[i % TYPES.length],
          payload: { orderId: `o-${i}`, amount: i % 500, note: 'x'.repeat(200) },
        }),
      ),
    },
    topic: `${TYPES[i % TYPES.length]!.split('.')[0]}.events`,
    group,
    handler: group,
    eventType: TYPES[i % TYPES.length]!,
    error: { name: err.name, message, stack: err.stack(message) },
    attempts: 4,
    firstFailedAt: base + i * 10 - 500,
    lastFailedAt: base + i * 10 - 10,
    deadLetteredAt: base + i * 10,
  };
}

async function fill(store: DeadLetterStore, n: number): Promise<number> {
  const t = performance.now();
  const base = Date.now() - n * 10 - 60_000;
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => store.add(entry(i + k, base))));
  }
  return performance.now() - t;
}

/** Median of `runs` timings of `fn`, in ms. */
async function time(fn: () => unknown, runs = 5): Promise<number> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  out.sort((a, b) => a - b);
  return out[Math.floor(out.length / 2)]!;
}

const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v.toFixed(0));

/**
 * `dropCounts` deletes the store's failure counts (keeping the entries), as a DLQ written by a
 * Herald without them looks: the next `failureCounts` indexes every entry once.
 */
async function measure(
  name: string,
  opened: OpenedBackend,
  dropCounts?: () => Promise<void>,
  dropSearch?: () => Promise<void>,
): Promise<string[]> {
  const store = opened.stores.deadLetters!;
  await store.purge();
  const fillMs = await fill(store, N);
  const rows: [string, number][] = [];
  // A console started per run, so nothing it learnt in one run (an index) helps the next.
  const cold = async (fn: (c: ConsoleService) => Promise<unknown>): Promise<number> =>
    time(async () => {
      const c = new ConsoleService({
        deadLetters: new DeadLetterAdmin(store, opened.transport),
        transport: opened.transport,
      });
      try {
        await fn(c);
        if (c.index.size !== 0) throw new Error('the console built its index');
      } finally {
        c.close();
      }
    });
  const newest = { limit: 100, newestFirst: true };
  const fp = errorFingerprint(entry(7, 0).error);
  const opener = new ConsoleService({
    deadLetters: new DeadLetterAdmin(store, opened.transport),
    transport: opened.transport,
  });
  const page2 = (await opener.list({}, newest)).nextCursor!;
  opener.close();
  rows.push(
    [
      'console: first list page, newest 100, with total (cold console)',
      await cold((c) => c.list({}, newest)),
    ],
    ['console: page filtered by group (cold)', await cold((c) => c.list({ group: 'billing' }, newest))],
    [
      'console: page filtered by group + reason (cold)',
      await cold((c) => c.list({ group: 'billing', reason: 'schema' }, newest)),
    ],
    [
      'console: failure group page (fingerprint) (cold)',
      await cold((c) => c.list({ fingerprint: fp }, newest)),
    ],
    ['console: next page via cursor (cold)', await cold((c) => c.list({}, { ...newest, cursor: page2 }))],
    [
      'console: time range page, last 10% (cold)',
      await cold((c) => c.list({ since: Date.now() - 60_000 - N }, newest)),
    ],
    [
      'console: dry run of a failure group (cold)',
      await cold((c) => c.dryRun({ filter: { fingerprint: fp } })),
    ],
    [
      'console: dry run of a consumer group (cold)',
      await cold((c) => c.dryRun({ filter: { group: 'analytics' } })),
    ],
  );
  if (typeof store.search === 'function')
    rows.push(
      [
        'console: free-text search q, one aggregate id (cold, store search)',
        await cold((c) => c.list({ q: 'customer-977' }, newest)),
      ],
      [
        'console: error text "returned 503" (cold, store search)',
        await cold((c) => c.list({ errorText: 'returned 503' }, newest)),
      ],
      [
        'console: aggregate id + group (cold, store search)',
        await cold((c) => c.list({ aggregateId: 'customer-977', group: 'billing' }, newest)),
      ],
      [
        'console: aggregate id (cold, store search)',
        await cold((c) => c.list({ aggregateId: 'customer-977' }, newest)),
      ],
      [
        'console: event id (cold, store search)',
        await cold((c) => c.list({ eventId: entry(4242, 0).message.id }, newest)),
      ],
      [
        'console: error text + group, next page via cursor (cold, store search)',
        await cold(async (c) => {
          const first = await c.list({ errorText: 'returned 503', group: 'billing' }, newest);
          await c.list(
            { errorText: 'returned 503', group: 'billing' },
            { ...newest, cursor: first.nextCursor! },
          );
        }),
      ],
      [
        'console: dry run by error text (cold, store searchKeys)',
        await cold((c) => c.dryRun({ filter: { errorText: 'returned 503' } })),
      ],
      [
        'console: dry run by aggregate id (cold, store searchKeys)',
        await cold((c) => c.dryRun({ filter: { aggregateId: 'customer-977' } })),
      ],
      [
        'console: failure groups of a search q (cold, store searchKeys)',
        await cold((c) => c.groups({ q: 'customer-977' })),
      ],
    );
  if (typeof store.search === 'function' && dropSearch) {
    await dropSearch();
    rows.push([
      `console: first search after upgrade (writes ${N.toLocaleString('en-US')} search records)`,
      await time(async () => {
        const c = new ConsoleService({
          deadLetters: new DeadLetterAdmin(store, opened.transport),
          transport: opened.transport,
        });
        await c.list({ q: 'customer-977' }, newest);
        c.close();
      }, 1),
    ]);
  }
  const index = new DeadLetterIndex(store, { staleMs: 0 });
  const build = await time(() => new DeadLetterIndex(store).fresh(), 1);
  await index.fresh();
  rows.push(
    [
      'index: first build (before: every list page, dry run and search of a cold console; now stores without search only)',
      build,
    ],
    ['index: refresh, nothing new', await time(() => index.fresh(true))],
  );
  let extra = N;
  const base = Date.now();
  rows.push([
    'index: refresh after 1 new entry',
    await time(async () => {
      await store.add(entry(extra++, base));
      await index.fresh(true);
    }),
  ]);
  const biggest = index.groups({})[0]!.fingerprint;
  rows.push(
    ['list: newest page of 100', await time(() => index.page({}, { limit: 100, newestFirst: true }))],
    [
      'list: filter group + reason',
      await time(() => index.page({ group: 'billing', reason: 'schema' }, { limit: 100 })),
    ],
    ['list: filter error text', await time(() => index.page({ errorText: 'returned 503' }, { limit: 100 }))],
    [
      'list: search q (one aggregate id)',
      await time(() => index.page({ q: 'customer-977' }, { limit: 100 })),
    ],
    [
      'list: aggregate id',
      await time(() => index.page({ aggregateId: 'customer-977' }, { limit: 100, newestFirst: true })),
    ],
    [
      'list: event id',
      await time(() => index.page({ eventId: entry(4242, 0).message.id }, { limit: 100, newestFirst: true })),
    ],
    ['dry run: by error text', await time(() => index.select({ errorText: 'returned 503' }))],
    [
      'list: time range (last 10%)',
      await time(() => index.page({ since: base - N, until: base }, { limit: 100 })),
    ],
    ['groups: all 100,000 by fingerprint', await time(() => index.groups({}))],
    ['groups: one consumer group', await time(() => index.groups({ group: 'analytics' }))],
    ['dry run: one failure group', await time(() => index.select({ fingerprint: biggest }))],
  );
  const counts = store.failureCounts?.bind(store);
  if (counts) {
    // What the console does on a store that counts failure groups itself: no index at all.
    const first = await time(async () => groupsFromCounts(await counts()), 1);
    rows.push(
      ['store-side groups: first call after start', first],
      [
        'store-side groups: all 100,000 by fingerprint',
        await time(async () => groupsFromCounts(await counts())),
      ],
      [
        'store-side groups: one consumer group',
        await time(async () => groupsFromCounts(await counts({ group: 'analytics' }))),
      ],
      ['store-side overview: dead letters per topic/group', await time(() => counts())],
    );
    if (dropCounts) {
      await dropCounts();
      rows.push([
        `store-side groups: first call after upgrade (indexes ${N.toLocaleString('en-US')} entries)`,
        await time(async () => groupsFromCounts(await counts()), 1),
      ]);
    }
  }
  rows.push(
    ['store: count()', await time(() => store.count())],
    ['store: count() of a group', await time(() => store.count({ group: 'billing' }))],
    ['store: failureCounts() of a group, summed', await time(() => counts?.({ group: 'billing' }) ?? 0)],
    ['store: list() first page of 100', await time(() => store.list(undefined, { limit: 100 }))],
    ['store: list() filtered (group)', await time(() => store.list({ group: 'billing' }, { limit: 100 }))],
  );
  const groups = index.groups({}).length;
  await store.purge();
  return [
    `### ${name}`,
    '',
    `${N.toLocaleString('en-US')} dead letters (${GROUPS.length} groups, ${TYPES.length} event types, ${groups} failure groups, ~1 KB entries with stacks), filled in ${(fillMs / 1000).toFixed(1)} s. Median of 5 unless marked cold.`,
    '',
    '| operation | ms |',
    '| --- | ---: |',
    ...rows.map(([k, v]) => `| ${k} | ${ms(v)} |`),
    '',
  ];
}

export async function run(): Promise<string> {
  const out: string[] = [
    '## Console: dead letters at 100,000 entries',
    '',
    'Command: `npm run bench -- console`. The `console:` rows are what a console started for that',
    'one request answers (ADR 0975): list pages of store fields are a keyset page and a count from',
    "the store (newest first, as the UI asks), dry runs the store's failure counts; each row checks",
    'that no index was built. The `index:` rows are the in-memory index of summaries that answered',
    'every page and dry run before (ADR 0970) and answered searches (free text, error text, ids)',
    'on Redis until ADR 0976; it is now built only for stores without `search` (memory, NATS,',
    'PostgreSQL). SQLite searches in SQL, Redis in Lua over per-entry search records: the "store',
    'search" rows; dry runs and failure groups by a search use `searchKeys`. A store with',
    '`failureCounts` (ADR 0973) answers failure groups and the overview itself: the "store-side" rows.',
    '',
    `Load average at the start of the run: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} (1/5/15 min) on ${os.cpus().length} cores.`,
    '',
  ];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-console-bench-'));
  try {
    const sqlite = await backends.open(`sqlite://${path.join(dir, 'dlq.db')}`, { mustExist: false });
    try {
      out.push(...(await measure('SQLite', sqlite)));
    } finally {
      await sqlite.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const namespace = `bench-console-${randomBytes(3).toString('hex')}`;
  const redis = await backends.open('redis://127.0.0.1:6379', { namespace });
  const raw = new Redis('redis://127.0.0.1:6379');
  try {
    out.push(
      ...(await measure(
        'Redis',
        redis,
        async () => {
          // The keys of the failure counts (src/adapters/redis/stores/dead-letter-failures.ts).
          const base = `{${namespace}:dlq}`;
          const dims = await raw.hkeys(`${base}:fr`);
          await raw.unlink(`${base}:d`, `${base}:fr`, ...dims.map((d) => `${base}:f:${d}`));
        },
        async () => {
          // The search records and id zsets (src/adapters/redis/stores/dead-letter-search.ts).
          const base = `{${namespace}:dlq}`;
          await raw.unlink(`${base}:s`, `${base}:ia`, `${base}:ii`);
        },
      )),
    );
  } finally {
    raw.disconnect();
    await redis.close();
  }
  return out.join('\n');
}
