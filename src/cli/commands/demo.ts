import { runDemo, type DemoSummary } from '../../demo/run.js';
import {
  COMMON_OPTIONS,
  EXIT,
  flag,
  JSON_OPTION,
  numberOption,
  parseCommand,
  shellArg,
  transportChoice,
  type OptionSpecs,
} from '../args.js';
import type { Command } from '../command.js';
import { printJson, type Io } from '../output.js';

/** Signals closer together than this count as one Ctrl-C. */
const REPEAT_SIGNAL_GRACE_MS = 1000;

const options = {
  duration: {
    type: 'string',
    arg: '<s>',
    env: 'HERALD_DEMO_DURATION',
    help: 'stop after this many seconds (default: run until Ctrl-C)',
  },
  rate: {
    type: 'string',
    arg: '<events/s>',
    env: 'HERALD_DEMO_RATE',
    help: 'events published per second (default 200)',
  },
  settle: {
    type: 'string',
    arg: '<s>',
    env: 'HERALD_DEMO_SETTLE',
    help: 'after stopping, wait up to this many seconds for in-flight and retrying messages (default 10)',
  },
  port: {
    type: 'string',
    arg: '<port>',
    env: 'HERALD_PORT',
    help: 'HTTP port for /status, /metrics, /health (default 7070; 0 = any free port)',
  },
  keep: {
    type: 'boolean',
    help: "shared brokers (redis...): keep the run's namespace instead of deleting it at the end",
  },
  ...JSON_OPTION,
} as const satisfies OptionSpecs;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a small event-driven system (2 producers, 3 consumer groups) and account for every event.',
  usage: [
    'herald demo [--duration <s>] [--rate <events/s>] [--settle <s>] [--port <port>] [--transport <url>] [--json]',
  ],
  options,
  details: [
    'Exit code: 0 when every event is accounted for (lost 0) and per-conversation order held;',
    '1 otherwise. Ctrl-C (or SIGTERM) stops gracefully and prints the summary; a second Ctrl-C (a second or more later) exits at once.',
    '',
    'Examples:',
    '  herald demo                                   # SQLite file .herald/events.db, until Ctrl-C',
    '  herald demo --duration 10 --json              # summary as JSON',
    '  herald demo --transport redis://127.0.0.1:6379',
  ].join('\n'),
  async run(argv, io) {
    const { values } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env);
    const durationS =
      values['duration'] === undefined ? undefined : numberOption(values, 'duration', 0, { min: 0 });
    const rate = numberOption(values, 'rate', 200, { min: 1 });
    const settleS = numberOption(values, 'settle', 10, { min: 0 });
    const port = numberOption(values, 'port', 7070, { min: 0, integer: true });
    const stop = new AbortController();
    let firstSignalAt: number | undefined;
    const onSignal = (): void => {
      const now = Date.now();
      if (firstSignalAt === undefined) {
        firstSignalAt = now;
        io.stderr.write(
          '\nherald demo: stopping (waiting for in-flight messages; Ctrl-C again to quit now)\n',
        );
        stop.abort();
      } else if (now - firstSignalAt >= REPEAT_SIGNAL_GRACE_MS) process.exit(130);
      // A second signal within the grace period is the same Ctrl-C: `npm start` and other runners
      // forward the terminal's SIGINT to the process group, so the demo receives it twice.
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const summary = await runDemo({
        ...(await demoTransport(values, io.env)),
        rate,
        port,
        settleTimeoutMs: settleS * 1000,
        keep: flag(values, 'keep'),
        stderr: io.stderr,
        stop: stop.signal,
        ...(durationS === undefined ? {} : { durationS }),
      });
      if (flag(values, 'json')) printJson(io, summary);
      else printSummary(io, summary);
      return summary.lost === 0 && summary.orderViolations === 0 ? EXIT.ok : EXIT.failure;
    } finally {
      // After a Ctrl-C the handler stays: the runner's forwarded copy of that same signal may
      // arrive only after the demo has finished, and must not kill the process (exit by signal)
      // while it is writing its summary and exiting 0.
      if (firstSignalAt === undefined) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
  },
};

function printSummary(io: Io, s: DemoSummary): void {
  const lines = [
    `herald demo ${s.runId} on ${s.transport}: ${s.durationS} s at ${s.rate} events/s`,
    `  published      ${s.published}  (${Object.entries(s.publishedByType)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')})`,
    `  handled        ${s.handled}`,
    `  retries        ${s.retries}`,
    `  dead-lettered  ${s.deadLettered}  (${
      Object.entries(s.deadLetteredByReason)
        .map(([r, n]) => `${r} ${n}`)
        .join(', ') || 'none'
    })`,
    `  order          ${s.orderViolations} violations`,
    `  order sagas    ${s.sagas.started} started: ${s.sagas.completed} completed, ${s.sagas.compensated} compensated (${s.sagas.paymentsDeclined} payments declined), ${s.sagas.parked} parked, ${s.sagas.inFlight} in flight; stock leaked ${s.sagas.stockLeaked}`,
    `  lost           ${s.lost}${s.settled ? '' : `  (not settled: ${s.pending} still pending)`}`,
    '',
    '  group                   routed  handled  skipped  dead  pending  lost',
    ...s.groups.map(
      (g) =>
        `  ${g.group.padEnd(22)}${String(g.routed).padStart(8)}${String(g.handled).padStart(9)}${String(g.skipped).padStart(9)}${String(g.deadLettered).padStart(6)}${String(g.pending).padStart(9)}${String(g.lost).padStart(6)}`,
    ),
    '',
    s.deadLettered > 0
      ? `Inspect the dead letters: herald dlq list --transport ${shellArg(s.namespace ? `${s.transport}?namespace=${s.namespace}` : s.transport)}`
      : '',
  ];
  io.stdout.write(`${lines.filter((l, i) => l !== '' || i < lines.length - 1).join('\n')}\n`);
}

async function demoTransport(
  values: Parameters<typeof transportChoice>[0],
  env: NodeJS.ProcessEnv,
): Promise<{ transportUrl: string; transportOptions?: Readonly<Record<string, unknown>> }> {
  const choice = await transportChoice(values, env);
  return {
    transportUrl: choice.url,
    ...(choice.transportOptions ? { transportOptions: choice.transportOptions } : {}),
  };
}
