import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { toError } from '../core/errors.js';
import { backends, type OpenedBackend } from '../backends/index.js';
import { ConfigError } from '../contracts/errors.js';
import { MemorySagaStore } from '../saga/memory-store.js';
import type { SagaStore } from '../saga/store.js';
import { deadLetterGrowthCheck, HealthProbes, lagCheck, probeHandler } from '../health/index.js';
import { createObservability, type Observability } from '../observability/index.js';
import { consoleHandler } from '../console/index.js';
import { DEMO_EVENTS } from './events.js';
import { startDemoServer, sendJson, type DemoServer, type RouteHandler } from './server.js';
import { createDemoServices, TrafficGenerator, type DemoServices } from './services.js';
import { DemoTally, StatusLine, type StatusSnapshot } from './status.js';
import { startOrderSagas, type OrderSagaSummary } from './saga.js';

export interface DemoRunOptions {
  /** `sqlite://<path>`, `memory://` or `redis://host:port`. */
  readonly transportUrl: string;
  /** Adapter options (a config file's `transport.options`). */
  readonly transportOptions?: Readonly<Record<string, unknown>>;
  /** Stop publishing after this many seconds; default: run until `stop` aborts. */
  readonly durationS?: number;
  /** Events published per second; default 200. */
  readonly rate?: number;
  /** HTTP port; 0 picks a free one; `false` serves nothing. Default 7070. */
  readonly port?: number | false;
  /** Redis only: keep the run's keys instead of deleting them at the end. */
  readonly keep?: boolean;
  /** How long to wait, after publishing stopped, for in-flight and retrying messages; default 10 s. */
  readonly settleTimeoutMs?: number;
  /** Status line and notes go here (stderr). */
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Aborting it starts the graceful stop (Ctrl-C). */
  readonly stop?: AbortSignal;
  /** Plain (non-TTY) status line period; default 5000 ms. */
  readonly statusEveryMs?: number;
}

/** Per consumer group: where every routed event ended up. `lost` must be 0. */
export interface GroupSummary {
  readonly group: string;
  readonly topics: readonly string[];
  readonly routed: number;
  readonly handled: number;
  readonly skipped: number;
  readonly deadLettered: number;
  /** Still in the transport (lag + in flight + waiting for a retry) when the demo stopped. */
  readonly pending: number;
  readonly duplicates: number;
  readonly lost: number;
}

/** What `herald demo` prints at the end (and, with `--json`, as JSON). */
export interface DemoSummary {
  readonly runId: string;
  readonly transport: string;
  readonly durationS: number;
  readonly rate: number;
  readonly published: number;
  readonly publishedByType: Record<string, number>;
  readonly publishFailed: number;
  readonly handled: number;
  readonly retries: number;
  readonly deadLettered: number;
  readonly deadLetteredByReason: Record<string, number>;
  readonly pending: number;
  /** Sum over groups of routed − handled − skipped − dead-lettered − pending. Must be 0. */
  readonly lost: number;
  readonly orderViolations: number;
  readonly auditReplays: number;
  /** True when every message settled within the settle timeout. */
  readonly settled: boolean;
  readonly groups: readonly GroupSummary[];
  readonly handlers: StatusSnapshot['handlers'];
  readonly analytics: Record<string, number>;
  /** The order sagas of the run (docs/saga.md). */
  readonly sagas: OrderSagaSummary;
  readonly url?: string;
  /** On a shared broker: the namespace of this run (reported only with --keep, when it stays). */
  readonly namespace?: string;
}

/**
 * Runs the demo system until `durationS` elapses or `stop` aborts, then stops publishing, lets
 * in-flight and retrying messages settle, and accounts for every event in every group.
 */
export async function runDemo(options: DemoRunOptions): Promise<DemoSummary> {
  const runId = randomBytes(4).toString('hex');
  const target = backends.parseOrThrow(options.transportUrl);
  const rate = options.rate ?? 200;
  // On a shared broker each run gets its own namespace, so runs never see each other's events.
  const runNamespace =
    backends.definition(target.backend).sharedServer && target.params['namespace'] === undefined
      ? `herald-demo-${runId}`
      : undefined;
  const opened = await backends.open(options.transportUrl, {
    ...(runNamespace ? { namespace: runNamespace } : {}),
    ...(options.transportOptions ? { transportOptions: options.transportOptions } : {}),
  });
  const tally = new DemoTally(runId);
  const note = (text: string): void => status.note(text);
  let services: DemoServices | undefined;
  let server: DemoServer | undefined;
  const status = new StatusLine(
    options.stderr,
    () => ({ ...tally.snapshot(), orderViolations: services?.audit.violations ?? 0 }),
    {
      plainEveryMs: options.statusEveryMs ?? 5000,
    },
  );
  const started = Date.now();
  const probes = new HealthProbes();
  try {
    services = await createDemoServices({
      runId,
      transport: opened.transport,
      ...(opened.stores.deadLetters ? { deadLetters: opened.stores.deadLetters } : {}),
      tally,
    });
    // One registry for the five services: they share a process, so they share a /metrics.
    const observability = createObservability({
      serviceName: 'herald-demo',
      logging: false,
      metrics: { defaultMetrics: true },
    });
    for (const h of services.all) observability.instrument(h);
    // Opened before the console, which lists the order sagas from it.
    const sagaStore = await demoSagaStore(options.transportUrl, runNamespace, note);
    if (options.port !== false) {
      const table = routes(tally, services, observability, probes);
      // The web console answers `/`, its assets and `/api/*`; everything else falls through to the table.
      const ui = consoleHandler({
        herald: services.all[0]!,
        observe: services.all,
        probes,
        events: DEMO_EVENTS,
        sagas: sagaStore,
        title: 'Herald demo',
      });
      server = await startDemoServer(table, {
        port: options.port ?? 7070,
        // Route templates are the exact paths, so http_requests_total has one series per endpoint.
        wrap: (listener) =>
          observability.http.node((req, res) => ui(req, res, () => listener(req, res)), Object.keys(table)),
      });
      const closeServer = server.close;
      server = { ...server, close: () => (ui.close(), closeServer()) };
      note(
        `herald demo: serving ${server.url} (web console at / with token ${ui.token}; also /status, /metrics, /health, /ready, /live)`,
      );
    }
    note(
      `herald demo: run ${runId} on ${target.url}${runNamespace ? ` (namespace ${runNamespace})` : ''}, ${rate} events/s${options.durationS !== undefined ? ` for ${options.durationS} s` : '; Ctrl-C to stop'}`,
    );
    await Promise.all(services.all.map((h) => h.start()));
    const sagas = await startOrderSagas({
      runId,
      transport: opened.transport,
      ...(opened.stores.deadLetters ? { deadLetters: opened.stores.deadLetters } : {}),
      store: sagaStore,
    });
    await registerDemoChecks(probes, options.transportUrl, opened, services);
    probes.markReady();
    const generator = new TrafficGenerator(services, tally, runId, rate, (err) =>
      note(`publish failed: ${err.message}`),
    );
    generator.start();
    status.start();

    await waitForStop(options.durationS, options.stop);
    probes.markDraining();
    await generator.stop();
    await sagas.stop(options.settleTimeoutMs ?? 10_000);
    const settled = await settle(tally, services, options.settleTimeoutMs ?? 10_000);
    const groups = await accountGroups(tally, opened);
    status.stop();

    await Promise.all(services.consumers.map((h) => h.stop()));
    await Promise.all([services.conversation.stop(), services.knowledge.stop()]);
    const snap = tally.snapshot();
    return {
      runId,
      transport: target.url,
      durationS: Math.round((Date.now() - started) / 100) / 10,
      rate,
      published: snap.published,
      publishedByType: snap.publishedByType,
      publishFailed: snap.publishFailed,
      handled: snap.handled,
      retries: snap.retries,
      deadLettered: snap.deadLettered,
      deadLetteredByReason: snap.deadLetteredByReason,
      pending: groups.reduce((n, g) => n + g.pending, 0),
      lost: groups.reduce((n, g) => n + g.lost, 0),
      orderViolations: services.audit.violations,
      auditReplays: services.audit.replays,
      settled,
      groups,
      handlers: snap.handlers,
      analytics: Object.fromEntries(services.analytics),
      sagas: sagas.summary(),
      ...(server ? { url: server.url } : {}),
      ...(runNamespace && options.keep ? { namespace: runNamespace } : {}),
    };
  } finally {
    probes.markStopped();
    status.stop();
    if (services) await Promise.all(services.all.map((h) => h.stop().catch(() => undefined)));
    await server?.close();
    if (runNamespace && !options.keep) await cleanupNamespace(opened, note);
    await opened.close();
  }
}

function waitForStop(durationS: number | undefined, stop: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stop?.aborted) return resolve();
    const timer = durationS === undefined ? undefined : setTimeout(resolve, durationS * 1000);
    stop?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** Waits (bounded) until every event is settled by every group and the transport holds nothing pending. */
async function settle(tally: DemoTally, services: DemoServices, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = services.consumers.some((h) => h.consumers.some((c) => c.inFlightCount > 0));
    if (tally.outstanding === 0 && !busy) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

async function accountGroups(tally: DemoTally, opened: OpenedBackend): Promise<GroupSummary[]> {
  const snap = tally.snapshot();
  return Promise.all(
    snap.groups.map(async (g) => {
      const pending = await pendingInTransport(
        opened,
        g.topics,
        g.group,
        g.routed - g.handled - g.skipped - g.deadLettered,
      );
      return {
        group: g.group,
        topics: g.topics,
        routed: g.routed,
        handled: g.handled,
        skipped: g.skipped,
        deadLettered: g.deadLettered,
        pending,
        duplicates: g.duplicates,
        lost: g.routed - g.handled - g.skipped - g.deadLettered - pending,
      };
    }),
  );
}

/**
 * Messages the transport still holds for a group (not delivered, in flight, or waiting to be
 * retried). Asked of the transport itself, so a message it dropped shows up as lost; a transport
 * without `stats` is taken at the tally's word.
 */
async function pendingInTransport(
  opened: OpenedBackend,
  topics: readonly string[],
  group: string,
  fallback: number,
): Promise<number> {
  const { transport } = opened;
  if (!transport.stats) return fallback;
  let n = 0;
  for (const topic of topics) {
    const s = await transport.stats(topic, group);
    n += s.lag + s.inFlight + s.delayed;
  }
  return n;
}

async function cleanupNamespace(opened: OpenedBackend, note: (text: string) => void): Promise<void> {
  try {
    await opened.stores.deadLetters?.purge();
    const dropper = opened.transport as { dropNamespace?: () => Promise<unknown> };
    if (typeof dropper.dropNamespace === 'function') await dropper.dropNamespace();
    else
      note(
        `herald demo: the ${opened.backend} adapter cannot delete its namespace; the run's keys remain (see docs/demo.md)`,
      );
  } catch (err) {
    note(`herald demo: cleanup failed: ${toError(err).message}`);
  }
}

function routes(
  tally: DemoTally,
  services: DemoServices,
  observability: Observability,
  probes: HealthProbes,
): Record<string, RouteHandler> {
  const probe = probeHandler(probes);
  return {
    '/status': (_req, res) =>
      sendJson(res, 200, { ...tally.snapshot(), orderViolations: services.audit.violations }),
    '/metrics': observability.metricsHandler,
    '/live': probe,
    '/ready': probe,
    '/health': probe,
  };
}

/** The saga store on the demo's backend; one without saga state (Kafka) keeps the demo's sagas in memory. */
async function demoSagaStore(
  url: string,
  namespace: string | undefined,
  note: (text: string) => void,
): Promise<SagaStore> {
  try {
    return await backends.openSagaStore(url, namespace ? { namespace } : {});
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    note(`herald demo: ${err.message.replace(/^[^:]*: /, '')}; the order sagas run on an in-memory store`);
    return new MemorySagaStore();
  }
}

/**
 * The checks a real service registers, so /health shows them and /ready depends on the critical
 * one: the broker answers (critical), consumer lag and dead-letter growth (non-critical: a backlog
 * or failures mean slow or failing handlers, not a process to take out of rotation). The event
 * loop delay is part of every HealthProbes (/live).
 */
async function registerDemoChecks(
  probes: HealthProbes,
  url: string,
  opened: OpenedBackend,
  services: DemoServices,
): Promise<void> {
  const broker = await backends.healthCheck(url, { timeoutMs: 2000, critical: true });
  if (broker) probes.checker.add(broker);
  if (typeof opened.transport.stats === 'function')
    probes.checker.add(
      lagCheck({
        transport: opened.transport,
        subscriptions: services.consumers.flatMap((h) => h.consumers),
        maxLag: 10_000,
      }),
    );
  if (opened.stores.deadLetters)
    probes.checker.add(
      deadLetterGrowthCheck({
        deadLetters: opened.stores.deadLetters,
        critical: false,
        windowMs: 60_000,
        // The demo dead-letters a few malformed events a second on purpose; more means trouble.
        maxGrowth: 2_000,
      }),
    );
}
