/*
 * The console page: plain DOM, no framework. Everything it shows comes from the admin JSON API
 * (docs/console.md); the overview is pushed by server-sent events once a second.
 */
import uPlot from 'uplot';

// ---- tiny DOM helpers ---------------------------------------------------------------------------

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

function h(tag: string, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
  return el;
}

const $ = (id: string): HTMLElement => document.getElementById(id)!;

function time(ms: number): string {
  const d = new Date(ms);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function num(n: number | undefined, digits = 1): string {
  if (n === undefined || n === null) return '—';
  return Number.isInteger(n) ? n.toLocaleString() : n.toFixed(digits);
}

function counts(rec: Record<string, number>): string {
  return Object.entries(rec)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} (${v})`)
    .join(', ');
}

function toast(text: string, bad = false): void {
  const t = $('toast');
  t.textContent = text;
  t.className = bad ? 'show bad' : 'show';
  setTimeout(() => (t.className = ''), 4000);
}

// ---- API -----------------------------------------------------------------------------------------

const TOKEN_KEY = 'herald-console-token';
const ACTOR_KEY = 'herald-console-actor';
let session: {
  title: string;
  readOnly: boolean;
  masking: boolean;
  traceUrl: string | null;
  sagas?: boolean;
} = {
  title: 'Herald',
  readOnly: false,
  masking: false,
  traceUrl: null,
};

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

async function api<T>(path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const t = token();
  if (t) headers['authorization'] = `Bearer ${t}`;
  const actor = localStorage.getItem(ACTOR_KEY);
  if (actor) headers['x-herald-actor'] = actor;
  const res = await fetch(`api/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json().catch(() => ({}))) as { error?: string; details?: unknown };
  if (!res.ok) throw new ApiError(res.status, json.error ?? `HTTP ${res.status}`, json.details);
  return json as T;
}

function query(filter: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---- types from the API --------------------------------------------------------------------------

interface FlowRow {
  topic: string;
  group: string;
  rateIn: number;
  rateOut: number;
  failRate: number;
  retryRate: number;
  deadLetterRate: number;
  p50?: number;
  p95?: number;
  p99?: number;
  lag?: number;
  inFlight?: number;
  retrying?: number;
  scheduled?: number;
  deadLetters: number;
}
interface CheckResult {
  name: string;
  status: string;
  critical: boolean;
  latencyMs: number;
  error?: string;
}
interface Overview {
  time: number;
  title: string;
  readOnly: boolean;
  transport: string;
  flows: FlowRow[];
  totals: { rateIn: number; rateOut: number; failRate: number; deadLetters: number };
  health?: { status: number; body: { status?: string; phase?: string; checks?: CheckResult[] } };
  ready?: { status: number; body: { ready?: boolean; reason?: string } & Record<string, unknown> };
  breakers?: { name: string; state: string }[];
  degradation?: string;
  sagas?: Partial<Record<SagaStatus, number>>;
}
interface Letter {
  id: string;
  group: string;
  topic: string;
  handler: string;
  eventType?: string;
  eventId: string;
  aggregateId?: string;
  reason: string;
  errorName: string;
  errorMessage: string;
  attempts: number;
  deadLetteredAt: number;
  fingerprint: string;
}
interface FailureGroup {
  fingerprint: string;
  errorName: string;
  sample: string;
  stackTop?: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  groups: Record<string, number>;
  eventTypes: Record<string, number>;
  reasons: Record<string, number>;
}
interface DryRun {
  count: number;
  groups: Record<string, number>;
  topics: Record<string, number>;
  failureGroups: Record<string, number>;
  notFound: number;
}
type SagaStatus =
  'running' | 'compensating' | 'completed' | 'compensated' | 'failed' | 'compensation-failed' | 'aborted';
const SAGA_STATUSES: SagaStatus[] = [
  'running',
  'compensating',
  'completed',
  'compensated',
  'failed',
  'compensation-failed',
  'aborted',
];
interface SagaRow {
  id: string;
  type: string;
  status: SagaStatus;
  step?: string;
  stepStatus?: string;
  attempts: number;
  error?: string;
  createdAt: number;
  updatedAt: number;
}
interface SagaDetail {
  id: string;
  type: string;
  status: SagaStatus;
  input: unknown;
  cursor: number;
  pivotPassed: boolean;
  steps: {
    name: string;
    status: string;
    attempts: number;
    compensations: number;
    result?: unknown;
    error?: string;
    startedAt?: number;
    endedAt?: number;
  }[];
  waiting?: { step: number; commandId: string; sent: boolean; until: number };
  error?: { step?: string; message: string; code?: string };
  deadline?: number;
  lease?: { owner: string; until: number };
  createdAt: number;
  updatedAt: number;
  timeline: { at: number; event: string; step?: string; detail?: string }[];
  canRetry: boolean;
  canAbort: boolean;
}
type Selection = { ids: string[] } | { filter: Record<string, string | number> };

// ---- auth ----------------------------------------------------------------------------------------

function renderAuth(): void {
  const b = $('auth');
  if (session.readOnly) {
    b.textContent = 'Read-only';
    b.setAttribute('disabled', '');
    b.className = 'ghost badge';
  } else if (token()) {
    b.textContent = `Unlocked${localStorage.getItem(ACTOR_KEY) ? ` · ${localStorage.getItem(ACTOR_KEY)}` : ''}`;
    b.className = 'ghost ok';
  } else {
    b.textContent = 'Unlock actions';
    b.className = 'ghost';
  }
}

function askToken(): void {
  const input = h('input', {
    type: 'password',
    placeholder: 'console token',
    'data-test': 'token-input',
  }) as HTMLInputElement;
  const actor = h('input', {
    type: 'text',
    placeholder: 'your name (for the audit log)',
    value: localStorage.getItem(ACTOR_KEY) ?? '',
  }) as HTMLInputElement;
  modal(
    'Unlock replays and purges',
    [
      h('p', {}, 'Paste the token printed when the console started (or open the URL it printed).'),
      input,
      actor,
    ],
    'Unlock',
    async () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      if (actor.value.trim()) localStorage.setItem(ACTOR_KEY, actor.value.trim());
      try {
        await api('session', {});
        toast('Unlocked');
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        throw e;
      }
      renderAuth();
    },
  );
}

/** Runs `fn` once the page holds a token, asking for it first when needed. */
function needToken(fn: () => void): void {
  if (session.readOnly) return toast('The console is read-only', true);
  if (token()) return fn();
  askToken();
}

// ---- modal ---------------------------------------------------------------------------------------

function modal(
  title: string,
  body: Child[],
  confirm: string | null,
  onConfirm?: () => Promise<void>,
  danger = false,
): void {
  const d = $('dialog') as HTMLDialogElement;
  const error = h('p', { class: 'error' });
  const ok =
    confirm &&
    h(
      'button',
      {
        class: danger ? 'danger' : 'primary',
        'data-test': 'confirm',
        onclick: () => {
          (ok as HTMLButtonElement).disabled = true;
          Promise.resolve(onConfirm?.())
            .then(() => d.close())
            .catch((e: Error) => {
              error.textContent = e.message;
              (ok as HTMLButtonElement).disabled = false;
            });
        },
      },
      confirm,
    );
  d.replaceChildren(
    h('h2', {}, title),
    ...body
      .filter((b): b is Node | string => b !== null && b !== undefined && b !== false)
      .map((b) => (typeof b === 'object' ? b : h('p', {}, String(b)))),
    error,
    h('div', { class: 'actions' }, h('button', { class: 'ghost', onclick: () => d.close() }, 'Cancel'), ok),
  );
  d.showModal();
}

function dryRunText(r: DryRun): Node {
  return h(
    'div',
    { class: 'dryrun', 'data-test': 'dry-run' },
    h('p', {}, h('strong', {}, `${r.count.toLocaleString()} `), r.count === 1 ? 'entry' : 'entries'),
    r.count > 0 && h('p', {}, 'Consumer groups: ', counts(r.groups)),
    r.count > 0 && h('p', {}, 'Topics: ', counts(r.topics)),
    r.count > 0 && h('p', {}, 'Failure groups: ', String(Object.keys(r.failureGroups).length)),
    r.notFound > 0 && h('p', { class: 'muted' }, `${r.notFound} selected ids are no longer in the DLQ`),
  );
}

/** Dry run first; the confirm button then does the real thing. */
async function replayFlow(selection: Selection, what: string, after: () => void): Promise<void> {
  needToken(() => {
    void (async () => {
      const r = await api<DryRun>('dead-letters/dry-run', selection);
      modal(
        `Replay ${what}`,
        [
          h('p', {}, 'Dry run: a replay would republish'),
          dryRunText(r),
          h(
            'p',
            { class: 'muted' },
            'Each message goes back to its topic for the group that dead-lettered it only.',
          ),
        ],
        r.count > 0 ? `Replay ${r.count.toLocaleString()}` : null,
        async () => {
          const res = await api<{ replayed: number; failed: number }>('dead-letters/replay', selection);
          toast(`Replayed ${res.replayed}${res.failed ? `, ${res.failed} failed` : ''}`, res.failed > 0);
          after();
        },
      );
    })().catch((e: Error) => toast(e.message, true));
  });
}

async function purgeFlow(selection: Selection, what: string, after: () => void): Promise<void> {
  needToken(() => {
    void (async () => {
      const r = await api<DryRun>('dead-letters/dry-run', selection);
      const confirmInput = h('input', {
        type: 'text',
        placeholder: `type ${r.count} to confirm`,
        'data-test': 'purge-confirm',
      }) as HTMLInputElement;
      modal(
        `Purge ${what}`,
        [h('p', {}, 'This deletes, for good:'), dryRunText(r), confirmInput],
        r.count > 0 ? `Delete ${r.count.toLocaleString()}` : null,
        async () => {
          if (confirmInput.value.trim() !== String(r.count)) throw new Error(`type ${r.count} to confirm`);
          const res = await api<{ purged: number }>('dead-letters/purge', { ...selection, expect: r.count });
          toast(`Purged ${res.purged}`);
          after();
        },
        true,
      );
    })().catch((e: Error) => toast(e.message, true));
  });
}

// ---- overview ------------------------------------------------------------------------------------

const HISTORY = 300;
const history: { t: number[]; in: number[]; out: number[]; fail: number[]; p95: number[] } = {
  t: [],
  in: [],
  out: [],
  fail: [],
  p95: [],
};
let latest: Overview | undefined;
let chart: uPlot | undefined;
let latencyChart: uPlot | undefined;

function pushHistory(o: Overview): void {
  history.t.push(o.time / 1000);
  history.in.push(o.totals.rateIn);
  history.out.push(o.totals.rateOut);
  history.fail.push(o.totals.failRate);
  const p95s = o.flows.map((f) => f.p95).filter((v): v is number => v !== undefined);
  history.p95.push(p95s.length ? Math.max(...p95s) : NaN);
  for (const k of ['t', 'in', 'out', 'fail', 'p95'] as const)
    if (history[k].length > HISTORY) history[k].shift();
}

function statusClass(s: string | undefined): string {
  return s === 'healthy' || s === 'closed' || s === 'normal'
    ? 'ok'
    : s === 'degraded' || s === 'half-open' || s === 'partial'
      ? 'warn'
      : 'bad';
}

function renderOverview(main: HTMLElement): void {
  const o = latest;
  if (!o) {
    main.replaceChildren(h('p', { class: 'muted' }, 'Waiting for the first numbers…'));
    return;
  }
  const kpi = (label: string, value: string, cls = '', test?: string): HTMLElement =>
    h(
      'div',
      { class: `kpi ${cls}`, ...(test ? { 'data-test': test } : {}) },
      h('span', { class: 'label' }, label),
      h('span', { class: 'value' }, value),
    );
  const healthStatus = o.health?.body.status;
  const width = Math.max(320, Math.min(1200, main.clientWidth - 40));
  const chartBox = h('div', { class: 'chart' });
  const latBox = h('div', { class: 'chart' });
  const checks = o.health?.body.checks ?? [];
  main.replaceChildren(
    h(
      'section',
      { class: 'kpis' },
      kpi('Published /s', num(o.totals.rateIn)),
      kpi('Handled /s', num(o.totals.rateOut)),
      kpi('Failures /s', num(o.totals.failRate), o.totals.failRate > 0 ? 'warn' : ''),
      kpi('Dead letters', num(o.totals.deadLetters), o.totals.deadLetters > 0 ? 'bad' : 'ok', 'dlq-total'),
      kpi('Health', healthStatus ?? 'not reported', healthStatus ? statusClass(healthStatus) : ''),
      kpi(
        'Ready',
        o.ready ? (o.ready.status === 200 ? 'ready' : 'not ready') : 'not reported',
        o.ready ? (o.ready.status === 200 ? 'ok' : 'bad') : '',
      ),
      o.sagas && sagaKpi(o.sagas),
    ),
    h(
      'section',
      { class: 'charts' },
      h('div', { class: 'card' }, h('h3', {}, 'Throughput (events/s)'), chartBox),
      h('div', { class: 'card' }, h('h3', {}, 'Handling latency p95 (ms, worst group)'), latBox),
    ),
    h(
      'section',
      { class: 'card' },
      h('h3', {}, `Topics and consumer groups · ${o.transport}`),
      h(
        'table',
        { class: 'grid', 'data-test': 'flows' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...[
              'Topic',
              'Group',
              'In /s',
              'Out /s',
              'Fail /s',
              'p50',
              'p95',
              'p99',
              'Lag',
              'In flight',
              'Retrying',
              'Scheduled',
              'Dead letters',
            ].map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          o.flows.length === 0
            ? h('tr', {}, h('td', { colspan: 13, class: 'muted' }, 'No topics yet.'))
            : o.flows.map((f) =>
                h(
                  'tr',
                  {},
                  h('td', {}, f.topic),
                  h('td', {}, f.group),
                  h('td', { class: 'n' }, num(f.rateIn)),
                  h('td', { class: 'n' }, num(f.rateOut)),
                  h('td', { class: `n ${f.failRate > 0 ? 'warn' : ''}` }, num(f.failRate)),
                  h('td', { class: 'n' }, num(f.p50, 2)),
                  h('td', { class: 'n' }, num(f.p95, 2)),
                  h('td', { class: 'n' }, num(f.p99, 2)),
                  h('td', { class: 'n' }, num(f.lag)),
                  h('td', { class: 'n' }, num(f.inFlight)),
                  h('td', { class: 'n' }, num(f.retrying)),
                  h('td', { class: 'n' }, num(f.scheduled)),
                  h(
                    'td',
                    { class: `n ${f.deadLetters > 0 ? 'bad' : ''}` },
                    f.deadLetters > 0
                      ? h(
                          'a',
                          {
                            href: `#/dead-letters?group=${encodeURIComponent(f.group)}&topic=${encodeURIComponent(f.topic)}`,
                          },
                          num(f.deadLetters),
                        )
                      : '0',
                  ),
                ),
              ),
        ),
      ),
    ),
    h(
      'section',
      { class: 'cols' },
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Health checks'),
        checks.length === 0
          ? h(
              'p',
              { class: 'muted' },
              o.health ? 'No checks registered.' : 'This process reports no health probes.',
            )
          : h(
              'ul',
              { class: 'checks' },
              checks.map((c) =>
                h(
                  'li',
                  {},
                  h('span', { class: `dot ${statusClass(c.status)}` }),
                  h('strong', {}, c.name),
                  ` ${c.status}`,
                  c.critical ? '' : ' (non-critical)',
                  ` · ${c.latencyMs} ms`,
                  c.error ? h('div', { class: 'muted' }, c.error) : null,
                ),
              ),
            ),
        o.health?.body.phase ? h('p', { class: 'muted' }, `Lifecycle: ${o.health.body.phase}`) : null,
      ),
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Resilience'),
        o.degradation
          ? h(
              'p',
              {},
              'Degradation level: ',
              h('span', { class: `tag ${statusClass(o.degradation)}` }, o.degradation),
            )
          : null,
        o.breakers && o.breakers.length > 0
          ? h(
              'ul',
              { class: 'checks' },
              o.breakers.map((b) =>
                h(
                  'li',
                  {},
                  h('span', { class: `dot ${statusClass(b.state)}` }),
                  h('strong', {}, b.name),
                  ` ${b.state}`,
                ),
              ),
            )
          : h(
              'p',
              { class: 'muted' },
              o.degradation ? '' : 'No circuit breakers or degradation manager attached.',
            ),
      ),
    ),
  );
  const series = (label: string, stroke: string): uPlot.Series => ({ label, stroke, width: 2 });
  chart?.destroy();
  latencyChart?.destroy();
  chart = new uPlot(
    {
      width: Math.floor(width / 2) - 20,
      height: 200,
      series: [{}, series('in', '#3b82f6'), series('out', '#10b981'), series('fail', '#ef4444')],
      axes: [{}, { size: 50 }],
    },
    [history.t, history.in, history.out, history.fail],
    chartBox,
  );
  latencyChart = new uPlot(
    {
      width: Math.floor(width / 2) - 20,
      height: 200,
      series: [{}, series('p95 ms', '#a855f7')],
      axes: [{}, { size: 50 }],
    },
    [history.t, history.p95],
    latBox,
  );
}

function updateCharts(): void {
  chart?.setData([history.t, history.in, history.out, history.fail]);
  latencyChart?.setData([history.t, history.p95]);
}

// ---- failure groups ------------------------------------------------------------------------------

async function renderGroups(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const filter = Object.fromEntries(params.entries());
  const { groups } = await api<{ groups: FailureGroup[] }>(`dead-letters/groups${query(filter)}`);
  const reload = (): void => void route();
  main.replaceChildren(
    h(
      'section',
      { class: 'card' },
      h(
        'h3',
        {},
        `Failure groups · ${groups.reduce((n, g) => n + g.count, 0).toLocaleString()} dead letters in ${groups.length} groups`,
      ),
      h(
        'p',
        { class: 'muted' },
        'Dead letters that failed the same way (error name, message without ids and numbers, top stack frame).',
      ),
      groups.length === 0
        ? h('p', { class: 'empty', 'data-test': 'no-groups' }, 'No dead letters. 🎉')
        : h(
            'div',
            { class: 'groups' },
            groups.map((g) =>
              h(
                'article',
                { class: 'group', 'data-test': 'failure-group', 'data-fingerprint': g.fingerprint },
                h('div', { class: 'count' }, g.count.toLocaleString()),
                h(
                  'div',
                  { class: 'body' },
                  h('div', { class: 'err' }, h('strong', {}, g.errorName), ': ', g.sample),
                  g.stackTop ? h('code', { class: 'stack' }, g.stackTop) : null,
                  h(
                    'div',
                    { class: 'meta' },
                    `first ${ago(g.firstSeen)} · last ${ago(g.lastSeen)} · groups: ${counts(g.groups)} · types: ${counts(g.eventTypes)} · reasons: ${counts(g.reasons)}`,
                  ),
                ),
                h(
                  'div',
                  { class: 'buttons' },
                  h(
                    'a',
                    { class: 'button ghost', href: `#/dead-letters?fingerprint=${g.fingerprint}` },
                    'Entries',
                  ),
                  h(
                    'button',
                    {
                      class: 'primary',
                      'data-test': 'replay-group',
                      onclick: () =>
                        void replayFlow(
                          { filter: { fingerprint: g.fingerprint } },
                          `failure group (${g.count})`,
                          reload,
                        ),
                    },
                    'Replay group',
                  ),
                  h(
                    'button',
                    {
                      class: 'ghost danger-text',
                      onclick: () =>
                        void purgeFlow({ filter: { fingerprint: g.fingerprint } }, 'failure group', reload),
                    },
                    'Purge',
                  ),
                ),
              ),
            ),
          ),
    ),
  );
}

// ---- dead letters --------------------------------------------------------------------------------

const FILTER_INPUTS: [string, string, string][] = [
  ['q', 'Search', 'ids, type, group, error…'],
  ['group', 'Consumer group', ''],
  ['topic', 'Topic', ''],
  ['eventType', 'Event type', ''],
  ['errorText', 'Error text', ''],
  ['aggregateId', 'Aggregate id', ''],
  ['eventId', 'Event id', ''],
  ['fingerprint', 'Failure group', ''],
];

async function renderDeadLetters(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const filter: Record<string, string> = {};
  for (const [k, v] of params.entries()) if (v) filter[k] = v;
  const form = h('form', { class: 'filters', 'data-test': 'filters' }) as HTMLFormElement;
  for (const [name, label, placeholder] of FILTER_INPUTS)
    form.append(h('label', {}, label, h('input', { name, value: filter[name] ?? '', placeholder })));
  const reason = h(
    'select',
    { name: 'reason' },
    ...['', 'max-attempts', 'decode', 'schema', 'permanent'].map((r) =>
      h('option', { value: r, ...(filter['reason'] === r ? { selected: true } : {}) }, r || 'any'),
    ),
  );
  const local = (ms: string | undefined): string =>
    ms ? new Date(Number(ms) - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16) : '';
  form.append(
    h('label', {}, 'Reason', reason),
    h(
      'label',
      {},
      'From',
      h('input', { type: 'datetime-local', name: 'since', value: local(filter['since']) }),
    ),
    h(
      'label',
      {},
      'Until',
      h('input', { type: 'datetime-local', name: 'until', value: local(filter['until']) }),
    ),
    h(
      'div',
      { class: 'formbuttons' },
      h('button', { class: 'primary', type: 'submit' }, 'Apply'),
      h('a', { class: 'button ghost', href: '#/dead-letters' }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) {
      const s = String(v).trim();
      if (!s) continue;
      q.set(k, k === 'since' || k === 'until' ? String(new Date(s).getTime()) : s);
    }
    location.hash = `#/dead-letters${q.toString() ? `?${q}` : ''}`;
  });

  const selected = new Set<string>();
  const tbody = h('tbody');
  const summary = h('span', { 'data-test': 'dl-count' });
  const more = h('button', { class: 'ghost' }, 'Load more') as HTMLButtonElement;
  const selCount = h('span', { class: 'muted' });
  let cursor: string | undefined;
  const reload = (): void => void route();
  const load = async (): Promise<void> => {
    const page = await api<{ items: Letter[]; total: number; nextCursor?: string }>(
      `dead-letters${query({ ...filter, order: 'newest', limit: 100, cursor })}`,
    );
    summary.textContent = `${page.total.toLocaleString()} matching`;
    for (const l of page.items) {
      const box = h('input', {
        type: 'checkbox',
        onclick: (e: Event) => e.stopPropagation(),
        onchange: (e: Event) => {
          if ((e.target as HTMLInputElement).checked) selected.add(l.id);
          else selected.delete(l.id);
          selCount.textContent = selected.size ? `${selected.size} selected` : '';
        },
      });
      tbody.append(
        h(
          'tr',
          { class: 'clickable', 'data-test': 'dl-row', onclick: () => void showEntry(l.id, reload) },
          h('td', {}, box),
          h('td', { title: time(l.deadLetteredAt) }, ago(l.deadLetteredAt)),
          h('td', {}, l.group),
          h('td', {}, l.eventType ?? '?'),
          h('td', {}, h('span', { class: 'tag' }, l.reason)),
          h('td', { class: 'err' }, `${l.errorName}: ${l.errorMessage}`),
          h('td', { class: 'n' }, l.attempts),
          h('td', { class: 'mono' }, l.aggregateId ?? ''),
        ),
      );
    }
    if (page.items.length === 0 && !cursor)
      tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No dead letters match.')));
    cursor = page.nextCursor;
    more.style.display = cursor ? '' : 'none';
  };
  more.onclick = () => void load().catch((e: Error) => toast(e.message, true));
  const hasFilter = Object.keys(filter).length > 0;
  main.replaceChildren(
    h('section', { class: 'card' }, form),
    h(
      'section',
      { class: 'card' },
      h(
        'div',
        { class: 'toolbar' },
        summary,
        selCount,
        h('span', { class: 'spacer' }),
        h(
          'button',
          {
            class: 'ghost',
            onclick: () =>
              selected.size
                ? void replayFlow({ ids: [...selected] }, `${selected.size} selected`, reload)
                : toast('Select entries first', true),
          },
          'Replay selected',
        ),
        h(
          'button',
          {
            class: 'primary',
            'data-test': 'replay-matching',
            onclick: () =>
              void replayFlow({ filter }, hasFilter ? 'every matching entry' : 'the whole DLQ', reload),
          },
          'Replay all matching',
        ),
        h(
          'button',
          {
            class: 'ghost danger-text',
            onclick: () =>
              void purgeFlow(
                selected.size ? { ids: [...selected] } : { filter },
                selected.size ? `${selected.size} selected` : 'every matching entry',
                reload,
              ),
          },
          selected.size ? 'Purge selected' : 'Purge matching',
        ),
        h(
          'a',
          {
            class: 'button ghost',
            href: `api/dead-letters/export${query(filter)}`,
            download: 'dead-letters.ndjson',
          },
          'Export',
        ),
      ),
      h(
        'table',
        { class: 'grid', 'data-test': 'dead-letters' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['', 'When', 'Group', 'Type', 'Reason', 'Error', 'Attempts', 'Aggregate'].map((c) =>
              h('th', {}, c),
            ),
          ),
        ),
        tbody,
      ),
      more,
    ),
  );
  await load();
}

async function showEntry(id: string, after: () => void): Promise<void> {
  const e = await api<
    Record<string, unknown> & {
      id: string;
      group: string;
      topic: string;
      handler: string;
      reason: string;
      attempts: number;
      eventType?: string;
      deadLetteredAt: number;
      firstFailedAt: number;
      error: { name: string; message: string; stack?: string };
      message: {
        id: string;
        key?: string;
        headers: Record<string, string>;
        body: unknown;
        bodyEncoding: string;
      };
      traceId?: string;
      traceUrl?: string;
      fingerprint?: string;
      editable: boolean;
      schemaKnown: boolean;
    }
  >(`dead-letters/${encodeURIComponent(id)}`);
  const payload = (e.message.body as { payload?: unknown } | null)?.payload;
  const row = (k: string, v: Child): HTMLElement => h('tr', {}, h('th', {}, k), h('td', {}, v));
  const d = $('dialog') as HTMLDialogElement;
  const editor = h('textarea', {
    class: 'editor',
    rows: 12,
    'data-test': 'payload-editor',
  }) as HTMLTextAreaElement;
  editor.value = JSON.stringify(payload, null, 2);
  const error = h('p', { class: 'error' });
  d.replaceChildren(
    h('h2', {}, e.eventType ?? 'Dead letter', ' ', h('span', { class: 'tag' }, e.reason)),
    h(
      'table',
      { class: 'kv' },
      row('Entry id', h('code', {}, e.id)),
      row('Event id', h('code', {}, e.message.id)),
      row('Aggregate id', e.message.key ?? '—'),
      row('Topic / group', `${e.topic} / ${e.group}`),
      row('Handler', e.handler),
      row('Attempts', e.attempts),
      row('First failed', time(e.firstFailedAt)),
      row('Dead-lettered', time(e.deadLetteredAt)),
      row(
        'Trace',
        e.traceId
          ? e.traceUrl
            ? h('a', { href: e.traceUrl, target: '_blank', rel: 'noopener' }, e.traceId)
            : h('code', {}, e.traceId)
          : '—',
      ),
      row(
        'Failure group',
        e.fingerprint
          ? h(
              'a',
              { href: `#/dead-letters?fingerprint=${e.fingerprint}`, onclick: () => d.close() },
              e.fingerprint,
            )
          : '—',
      ),
    ),
    h('h3', {}, 'Error'),
    h('pre', { class: 'error-box' }, `${e.error.name}: ${e.error.message}`),
    e.error.stack ? h('details', {}, h('summary', {}, 'Stack'), h('pre', {}, e.error.stack)) : '',
    h('h3', {}, 'Headers'),
    h('pre', {}, JSON.stringify(e.message.headers, null, 2)),
    h(
      'h3',
      {},
      e.editable
        ? `Payload${e.schemaKnown ? ' (validated against the event schema on replay)' : ''}`
        : 'Body',
    ),
    e.editable && !session.readOnly
      ? editor
      : h('pre', {}, JSON.stringify(e.editable ? payload : e.message.body, null, 2)),
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { class: 'ghost', onclick: () => d.close() }, 'Close'),
      !session.readOnly &&
        h(
          'button',
          {
            class: 'ghost danger-text',
            onclick: () => {
              d.close();
              void purgeFlow({ ids: [e.id] }, 'this entry', after);
            },
          },
          'Purge',
        ),
      !session.readOnly &&
        e.editable &&
        h(
          'button',
          {
            class: 'ghost',
            'data-test': 'replay-edited',
            onclick: () =>
              needToken(() => {
                let parsed: unknown;
                try {
                  parsed = JSON.parse(editor.value);
                } catch {
                  error.textContent = 'The payload is not valid JSON';
                  return;
                }
                api<{ validated: boolean }>(`dead-letters/${encodeURIComponent(e.id)}/replay-edited`, {
                  payload: parsed,
                })
                  .then((r) => {
                    d.close();
                    toast(`Replayed the edited event${r.validated ? ' (schema valid)' : ''}`);
                    after();
                  })
                  .catch((err: ApiError) => {
                    const issues = (
                      err.details as { issues?: { message: string; path?: unknown[] }[] } | undefined
                    )?.issues;
                    error.textContent = issues
                      ? issues.map((i) => `${(i.path ?? []).join('.') || 'payload'}: ${i.message}`).join('; ')
                      : err.message;
                  });
              }),
          },
          'Replay edited',
        ),
      !session.readOnly &&
        h(
          'button',
          {
            class: 'primary',
            onclick: () => {
              d.close();
              void replayFlow({ ids: [e.id] }, 'this entry', after);
            },
          },
          'Replay',
        ),
    ),
  );
  if (!d.open) d.showModal();
}

// ---- sagas ---------------------------------------------------------------------------------------

function sagaClass(status: string): string {
  if (status === 'completed' || status === 'compensated') return 'ok';
  if (status === 'failed' || status === 'compensation-failed') return 'bad';
  return status === 'aborted' || status === 'compensating' ? 'warn' : '';
}

/** The overview's saga tile: how many move now, and how many wait for an operator. */
function sagaKpi(c: Partial<Record<SagaStatus, number>>): HTMLElement {
  const moving = (c.running ?? 0) + (c.compensating ?? 0);
  const parked = (c.failed ?? 0) + (c['compensation-failed'] ?? 0);
  const done = (c.completed ?? 0) + (c.compensated ?? 0) + (c.aborted ?? 0);
  return h(
    'a',
    { class: `kpi ${parked > 0 ? 'bad' : ''}`, href: '#/sagas', 'data-test': 'saga-kpi' },
    h('span', { class: 'label' }, 'Sagas'),
    h('span', { class: 'value' }, `${num(moving)} running`),
    h('span', { class: 'label' }, `${num(done)} finished · ${num(parked)} parked`),
  );
}

interface SagaSummary {
  types: { type: string; counts: Partial<Record<SagaStatus, number>> }[];
  totals: Partial<Record<SagaStatus, number>>;
  scanned: number;
  truncated: boolean;
}

const sagasLink = (q: Record<string, string | undefined>): string => `#/sagas${query(q)}`;

/** The totals the sagas page's counts were taken with, to tell when the overview stream has newer ones. */
let shownSagaTotals: string | undefined;

/** The "Sagas by type" card: counts per type and status, each a link to the matching list. */
function sagaTypesCard(summary: SagaSummary): HTMLElement {
  shownSagaTotals = JSON.stringify(summary.totals);
  const countCell = (t: string, st: SagaStatus, n: number | undefined): HTMLElement =>
    h(
      'td',
      { class: `n ${n && sagaClass(st) === 'bad' ? 'bad' : ''}` },
      n ? h('a', { href: sagasLink({ type: t, status: st }) }, num(n)) : '·',
    );
  return h(
    'section',
    { class: 'card', 'data-test': 'saga-types-card' },
    h('h3', {}, 'Sagas by type'),
    h(
      'p',
      { class: 'muted' },
      summary.truncated
        ? `Counted over the newest ${summary.scanned.toLocaleString()} sagas.`
        : `${summary.scanned.toLocaleString()} sagas in the store. Failed and compensation-failed sagas wait for an operator.`,
    ),
    h(
      'table',
      { class: 'grid', 'data-test': 'saga-types' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Type'), ...SAGA_STATUSES.map((st) => h('th', {}, st)))),
      h(
        'tbody',
        {},
        summary.types.length === 0
          ? h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No sagas yet.'))
          : summary.types.map((t) =>
              h(
                'tr',
                { 'data-test': 'saga-type', 'data-type': t.type },
                h('td', {}, h('a', { href: sagasLink({ type: t.type }) }, t.type)),
                ...SAGA_STATUSES.map((st) => countCell(t.type, st, t.counts[st])),
              ),
            ),
      ),
    ),
  );
}

/**
 * Keeps the sagas page's counts current: the server reuses counts for a few seconds, so a page
 * opened just before sagas changed would show old ones until reloaded. The overview stream carries
 * the totals every second; when they differ from the ones shown, only the counts card is fetched
 * and replaced, so the list, the filter form and the scroll position stay as the operator left them.
 */
async function refreshSagaCounts(totals: Partial<Record<SagaStatus, number>>): Promise<void> {
  if (shownSagaTotals === undefined || JSON.stringify(totals) === shownSagaTotals) return;
  shownSagaTotals = JSON.stringify(totals);
  const summary = await api<SagaSummary>('saga-types');
  if (view !== 'sagas') return;
  $('main').querySelector('[data-test=saga-types-card]')?.replaceWith(sagaTypesCard(summary));
}

async function renderSagas(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const type = params.get('type') ?? '';
  const status = params.get('status') ?? '';
  const cursor = params.get('cursor') ?? undefined;
  const [summary, page] = await Promise.all([
    api<SagaSummary>('saga-types'),
    api<{ items: SagaRow[]; nextCursor?: string }>(`sagas${query({ type, status, cursor, limit: 50 })}`),
  ]);
  const form = h(
    'form',
    { class: 'filters', 'data-test': 'saga-filters' },
    h('label', {}, 'Saga type', h('input', { name: 'type', value: type })),
    h(
      'label',
      {},
      'Status',
      h(
        'select',
        { name: 'status' },
        ...['', ...SAGA_STATUSES].map((v) =>
          h('option', { value: v, ...(status === v ? { selected: true } : {}) }, v || 'any'),
        ),
      ),
    ),
    h(
      'div',
      { class: 'formbuttons' },
      h('button', { class: 'primary', type: 'submit' }, 'Apply'),
      h('a', { class: 'button ghost', href: '#/sagas' }, 'Clear'),
    ),
  ) as HTMLFormElement;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    location.hash = sagasLink({
      type: String(data.get('type') ?? '').trim(),
      status: String(data.get('status') ?? ''),
    });
  });
  main.replaceChildren(
    sagaTypesCard(summary),
    h('section', { class: 'card' }, form),
    h(
      'section',
      { class: 'card' },
      h(
        'table',
        { class: 'grid', 'data-test': 'sagas' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Saga', 'Type', 'Status', 'Step', 'Attempts', 'Error', 'Started', 'Updated'].map((c) =>
              h('th', {}, c),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          page.items.length === 0
            ? h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No sagas match.'))
            : page.items.map((r) =>
                h(
                  'tr',
                  {
                    class: 'clickable',
                    'data-test': 'saga-row',
                    'data-status': r.status,
                    onclick: () => (location.hash = `#/saga?id=${encodeURIComponent(r.id)}`),
                  },
                  h('td', { class: 'mono' }, r.id),
                  h('td', {}, r.type),
                  h('td', {}, h('span', { class: `tag ${sagaClass(r.status)}` }, r.status)),
                  h('td', {}, r.step ? `${r.step} (${r.stepStatus})` : '—'),
                  h('td', { class: 'n' }, r.attempts),
                  h('td', { class: 'err' }, r.error ?? ''),
                  h('td', { title: time(r.createdAt) }, ago(r.createdAt)),
                  h('td', { title: time(r.updatedAt) }, ago(r.updatedAt)),
                ),
              ),
        ),
      ),
      h(
        'div',
        { class: 'toolbar' },
        cursor ? h('a', { class: 'button ghost', href: sagasLink({ type, status }) }, 'First page') : null,
        page.nextCursor
          ? h(
              'a',
              { class: 'button ghost', href: sagasLink({ type, status, cursor: page.nextCursor }) },
              'Next page',
            )
          : null,
      ),
    ),
  );
}

async function renderSaga(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const id = params.get('id') ?? '';
  const s = await api<SagaDetail>(`sagas/${encodeURIComponent(id)}`);
  const again = (): void => void route();
  const row = (k: string, v: Child): HTMLElement => h('tr', {}, h('th', {}, k), h('td', {}, v));
  const act = (action: 'retry' | 'abort'): void =>
    needToken(() => {
      const reason = h('input', {
        type: 'text',
        placeholder: 'why (kept in the timeline)',
        'data-test': 'abort-reason',
      }) as HTMLInputElement;
      modal(
        action === 'retry' ? `Retry saga ${s.id}` : `Abort saga ${s.id}`,
        action === 'retry'
          ? [
              h(
                'p',
                {},
                s.status === 'compensation-failed'
                  ? 'The saga compensates again, from the compensation that failed.'
                  : 'The saga runs its failed step again and goes on.',
              ),
              h('p', { class: 'muted' }, 'A runner on the same store picks it up on its next poll.'),
            ]
          : [
              h(
                'p',
                {},
                s.status === 'running'
                  ? 'The saga stops and compensates the steps it completed.'
                  : 'The saga is closed as aborted; nothing more is run or compensated.',
              ),
              reason,
            ],
        action === 'retry' ? 'Retry' : 'Abort',
        async () => {
          const r = await api<SagaDetail>(
            `sagas/${encodeURIComponent(s.id)}/${action}`,
            action === 'abort' && reason.value.trim() ? { reason: reason.value.trim() } : {},
          );
          toast(`Saga ${r.id}: ${r.status}`);
          again();
        },
        action === 'abort',
      );
    });
  main.replaceChildren(
    h(
      'section',
      { class: 'card' },
      h(
        'div',
        { class: 'toolbar' },
        h(
          'h3',
          {},
          `${s.type} · `,
          h('code', {}, s.id),
          ' ',
          h('span', { class: `tag ${sagaClass(s.status)}`, 'data-test': 'saga-status' }, s.status),
        ),
        h('span', { class: 'spacer' }),
        h(
          'a',
          { class: 'button ghost', href: `#/sagas?type=${encodeURIComponent(s.type)}` },
          'All of this type',
        ),
        !session.readOnly &&
          s.canRetry &&
          h('button', { class: 'primary', 'data-test': 'saga-retry', onclick: () => act('retry') }, 'Retry'),
        !session.readOnly &&
          s.canAbort &&
          h(
            'button',
            { class: 'ghost danger-text', 'data-test': 'saga-abort', onclick: () => act('abort') },
            'Abort',
          ),
      ),
      h(
        'table',
        { class: 'kv' },
        row('Started', time(s.createdAt)),
        row('Updated', time(s.updatedAt)),
        row('Pivot passed', s.pivotPassed ? 'yes: it only goes forward now' : 'no'),
        s.error &&
          row(
            'Error',
            h(
              'span',
              { class: 'err' },
              `${s.error.step ? `${s.error.step}: ` : ''}${s.error.message}`,
              s.error.code ? ` (${s.error.code})` : '',
            ),
          ),
        s.waiting && row('Waiting', `reply to ${s.waiting.commandId} until ${time(s.waiting.until)}`),
        s.deadline !== undefined && row('Deadline', time(s.deadline)),
        s.lease && row('Lease', `${s.lease.owner} until ${time(s.lease.until)}`),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h3', {}, 'Steps'),
      h(
        'table',
        { class: 'grid', 'data-test': 'saga-steps' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...[
              '#',
              'Step',
              'Status',
              'Attempts',
              'Compensations',
              'Started',
              'Ended',
              'Result or error',
            ].map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          s.steps.map((st, i) =>
            h(
              'tr',
              { 'data-test': 'saga-step' },
              h('td', { class: 'n' }, i + 1),
              h('td', {}, st.name),
              h(
                'td',
                {},
                h(
                  'span',
                  { class: `tag ${sagaClass(st.status === 'done' ? 'completed' : st.status)}` },
                  st.status,
                ),
              ),
              h('td', { class: 'n' }, st.attempts),
              h('td', { class: 'n' }, st.compensations),
              h('td', {}, st.startedAt ? time(st.startedAt) : '—'),
              h('td', {}, st.endedAt ? time(st.endedAt) : '—'),
              h(
                'td',
                { class: st.error ? 'err' : 'mono small' },
                st.error ?? (st.result !== undefined ? JSON.stringify(st.result) : ''),
              ),
            ),
          ),
        ),
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h3', {}, 'Timeline'),
      h(
        'table',
        { class: 'grid', 'data-test': 'saga-timeline' },
        h('thead', {}, h('tr', {}, ...['When', 'Event', 'Step', 'Detail'].map((c) => h('th', {}, c)))),
        h(
          'tbody',
          {},
          s.timeline.map((t) =>
            h(
              'tr',
              { 'data-test': 'timeline-entry' },
              h(
                'td',
                { title: time(t.at), class: 'mono small' },
                `${new Date(t.at).toLocaleTimeString([], { hour12: false })}.${String(t.at % 1000).padStart(3, '0')}`,
              ),
              h(
                'td',
                {},
                h(
                  'span',
                  { class: `tag ${/fail|declin|timeout|abort/i.test(t.event) ? 'bad' : ''}` },
                  t.event,
                ),
              ),
              h('td', {}, t.step ?? ''),
              h('td', { class: 'err' }, t.detail ?? ''),
            ),
          ),
        ),
      ),
    ),
    h('section', { class: 'card' }, h('h3', {}, 'Input'), h('pre', {}, JSON.stringify(s.input, null, 2))),
  );
}

// ---- audit ---------------------------------------------------------------------------------------

async function renderAudit(main: HTMLElement): Promise<void> {
  const { records } = await api<{
    records: {
      at: number;
      actor: string;
      address?: string;
      action: string;
      count: number;
      failed?: number;
      groups?: Record<string, number>;
      selection: unknown;
    }[];
  }>('audit');
  main.replaceChildren(
    h(
      'section',
      { class: 'card' },
      h('h3', {}, 'Audit log'),
      h(
        'p',
        { class: 'muted' },
        'Every replay, purge, saga retry and saga abort made through the console: who, what, when, how many.',
      ),
      h(
        'table',
        { class: 'grid', 'data-test': 'audit' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['When', 'Who', 'Action', 'Count', 'Groups', 'Selection'].map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          records.length === 0
            ? h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Nothing replayed or purged yet.'))
            : records.map((r) =>
                h(
                  'tr',
                  { 'data-test': 'audit-row' },
                  h('td', { title: time(r.at) }, time(r.at)),
                  h('td', {}, r.actor, r.address ? h('span', { class: 'muted' }, ` ${r.address}`) : null),
                  h('td', {}, h('span', { class: 'tag' }, r.action)),
                  h('td', { class: 'n' }, r.count, r.failed ? ` (${r.failed} failed)` : ''),
                  h('td', {}, counts(r.groups ?? {})),
                  h('td', { class: 'mono small' }, JSON.stringify(r.selection)),
                ),
              ),
        ),
      ),
    ),
  );
}

// ---- routing -------------------------------------------------------------------------------------

let view = '';

async function route(): Promise<void> {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name = 'overview', search = ''] = hash.split('?');
  view = name || 'overview';
  for (const a of document.querySelectorAll('nav a'))
    a.classList.toggle('active', a.getAttribute('data-view') === (view === 'saga' ? 'sagas' : view));
  const main = $('main');
  const params = new URLSearchParams(search);
  try {
    if (view === 'groups') await renderGroups(main, params);
    else if (view === 'dead-letters') await renderDeadLetters(main, params);
    else if (view === 'audit') await renderAudit(main);
    else if (view === 'sagas') await renderSagas(main, params);
    else if (view === 'saga') await renderSaga(main, params);
    else renderOverview(main);
  } catch (e) {
    main.replaceChildren(h('p', { class: 'error' }, (e as Error).message));
  }
}

function connect(): void {
  const live = $('live');
  const source = new EventSource('api/stream');
  source.addEventListener('overview', (ev) => {
    const o = JSON.parse((ev as MessageEvent<string>).data) as Overview;
    latest = o;
    pushHistory(o);
    live.textContent = '● live';
    live.className = 'pill ok';
    const hs = o.health?.body.status;
    $('health').textContent = hs ? `health: ${hs}` : `DLQ ${o.totals.deadLetters}`;
    $('health').className = `pill ${hs ? statusClass(hs) : o.totals.deadLetters > 0 ? 'bad' : 'ok'}`;
    if (view === 'sagas' && o.sagas) void refreshSagaCounts(o.sagas).catch(() => undefined);
    if (view === 'overview') {
      if (!chart) renderOverview($('main'));
      else {
        updateCharts();
        renderOverviewTables();
      }
    }
  });
  source.onerror = () => {
    live.textContent = 'reconnecting…';
    live.className = 'pill warn';
  };
}

/** Re-renders the overview without rebuilding the charts (they only take new data). */
function renderOverviewTables(): void {
  const main = $('main');
  const charts = main.querySelector('.charts');
  if (!charts) return renderOverview(main);
  const keep = charts;
  const c1 = chart;
  const c2 = latencyChart;
  chart = undefined;
  latencyChart = undefined;
  renderOverview(main);
  // Put the live charts back in place of the fresh ones.
  (chart as uPlot | undefined)?.destroy();
  (latencyChart as uPlot | undefined)?.destroy();
  main.querySelector('.charts')?.replaceWith(keep);
  chart = c1;
  latencyChart = c2;
}

async function start(): Promise<void> {
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]!));
    history_replace();
  }
  session = await api<typeof session>('session');
  document.title = session.title;
  $('title').textContent = session.title;
  renderAuth();
  if (session.sagas) $('nav-sagas').hidden = false;
  $('auth').addEventListener('click', () => {
    if (!session.readOnly) askToken();
  });
  window.addEventListener('hashchange', () => void route());
  connect();
  await route();
}

function history_replace(): void {
  window.history.replaceState(null, '', `${location.pathname}${location.search}#/overview`);
}

void start();
