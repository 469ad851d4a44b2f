import {
  COMMON_OPTIONS,
  EXIT,
  flag,
  JSON_OPTION,
  numberOption,
  parseCommand,
  stringOption,
  transportChoice,
  UsageError,
  type OptionSpecs,
  type ParsedValues,
} from '../args.js';
import type { Command } from '../command.js';
import { isoTime, printJson, printTable, type Io } from '../output.js';
import { backends } from '../../backends/index.js';
import { SagaOperations } from '../../saga/operations.js';
import { SAGA_STATUSES, type SagaRecord, type SagaStatus } from '../../saga/record.js';

const options = {
  type: { type: 'string', arg: '<saga-type>', help: 'list: only sagas of this type' },
  status: {
    type: 'string',
    arg: '<status>',
    help: `list: only sagas in this status (${SAGA_STATUSES.join(', ')})`,
  },
  limit: { type: 'string', arg: '<n>', help: 'list: sagas per page, 1..1000 (default 50)' },
  cursor: { type: 'string', arg: '<cursor>', help: 'list: the nextCursor of the previous page' },
  reason: { type: 'string', arg: '<text>', help: 'abort: why (kept in the timeline)' },
  ...JSON_OPTION,
} as const satisfies OptionSpecs;

export const sagaCommand: Command = {
  name: 'saga',
  summary: 'List and inspect sagas; retry a parked saga or abort one.',
  usage: [
    'herald saga list [--type <t>] [--status <s>] [--limit <n>] [--cursor <c>] [--json]',
    'herald saga show <id> [--json]',
    'herald saga retry <id> [--json]',
    'herald saga abort <id> [--reason <text>] [--json]',
  ],
  options,
  details: [
    'Sagas live in the saga store of the transport URL: sqlite://<file> (table herald_sagas),',
    'redis://host:port[?prefix=p] (keys {<prefix>:saga}:*); memory:// has none.',
    'retry resumes a saga parked as compensation-failed (compensates again) or failed (runs the failed',
    'step again); abort compensates a running saga before its pivot step, or closes a parked one.',
    'A running SagaRunner on the same store picks the change up on its next poll.',
    '',
    'Examples:',
    '  herald saga list --status compensation-failed',
    '  herald saga show order-1042',
    '  herald saga retry order-1042',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env, {
      positionals: true,
    });
    const [sub, ...args] = positionals;
    const one = (): string => {
      if (args.length !== 1) throw new UsageError(`saga ${sub} takes exactly one saga id`);
      return args[0]!;
    };
    switch (sub) {
      case 'list':
        if (args.length > 0) throw new UsageError('saga list takes no arguments');
        return list(values, io);
      case 'show':
        return withOperations(values, io, async (ops) => {
          const record = await ops.inspect(one());
          if (flag(values, 'json')) printJson(io, record);
          else printRecord(io, record);
          return EXIT.ok;
        });
      case 'retry':
      case 'abort': {
        const id = one();
        const reason = stringOption(values, 'reason');
        if (reason !== undefined && sub !== 'abort') throw new UsageError('--reason applies to abort only');
        return withOperations(values, io, async (ops) => {
          const record = sub === 'retry' ? await ops.retry(id) : await ops.abort(id, reason);
          if (flag(values, 'json')) printJson(io, record);
          else io.stdout.write(`${record.id}: ${record.status}\n`);
          return EXIT.ok;
        });
      }
      case undefined:
        throw new UsageError('missing subcommand: list, show, retry or abort');
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: use list, show, retry or abort`);
    }
  },
};

async function list(values: ParsedValues, io: Io): Promise<number> {
  const status = stringOption(values, 'status');
  if (status !== undefined && !SAGA_STATUSES.includes(status as SagaStatus)) {
    throw new UsageError(
      `--status must be one of ${SAGA_STATUSES.join(', ')}, got ${JSON.stringify(status)}`,
    );
  }
  const type = stringOption(values, 'type');
  const limit = numberOption(values, 'limit', 50, { min: 1, integer: true });
  if (limit > 1000) throw new UsageError('--limit must be at most 1000');
  const cursor = stringOption(values, 'cursor');
  return withOperations(values, io, async (ops) => {
    const page = await ops.list(
      { ...(type ? { type } : {}), ...(status ? { status: status as SagaStatus } : {}) },
      { limit, ...(cursor ? { cursor } : {}) },
    );
    if (flag(values, 'json')) {
      printJson(io, { items: page.items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) });
      return EXIT.ok;
    }
    printTable(
      io,
      page.items.map((r) => ({
        id: r.id,
        type: r.type,
        status: r.status,
        step: currentStep(r),
        started: isoTime(r.createdAt),
        error: r.error ? clip(r.error.message, 50) : '',
      })),
      ['id', 'type', 'status', 'step', 'started', 'error'],
    );
    if (page.nextCursor) io.stderr.write(`more: herald saga list --cursor ${page.nextCursor}\n`);
    return EXIT.ok;
  });
}

function currentStep(r: SagaRecord): string {
  if (r.status === 'completed') return '-';
  const s = r.steps[r.cursor];
  return s ? `${s.name} (${s.status})` : '-';
}

function clip(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 3)}...` : text;
}

function printRecord(io: Io, r: SagaRecord): void {
  const lines = [
    `saga     ${r.id}`,
    `type     ${r.type}`,
    `status   ${r.status}${r.pivotPassed ? ' (past its pivot)' : ''}`,
    `started  ${isoTime(r.createdAt)}   updated ${isoTime(r.updatedAt)}`,
  ];
  if (r.error) lines.push(`error    ${r.error.step ? `${r.error.step}: ` : ''}${r.error.message}`);
  if (r.waiting) lines.push(`waiting  reply to ${r.waiting.commandId} until ${isoTime(r.waiting.until)}`);
  if (r.lease) lines.push(`lease    ${r.lease.owner} until ${isoTime(r.lease.until)}`);
  io.stdout.write(`${lines.join('\n')}\n\nsteps:\n`);
  printTable(
    io,
    r.steps.map((s) => ({
      step: s.name,
      status: s.status,
      attempts: s.attempts,
      compensations: s.compensations,
      error: s.error ? clip(s.error, 60) : '',
    })),
    ['step', 'status', 'attempts', 'compensations', 'error'],
  );
  io.stdout.write('\ntimeline:\n');
  for (const e of r.timeline) {
    io.stdout.write(
      `  ${isoTime(e.at)}  ${e.event}${e.step ? ` ${e.step}` : ''}${e.detail ? `  ${e.detail}` : ''}\n`,
    );
  }
}

async function withOperations(
  values: ParsedValues,
  io: Io,
  fn: (ops: SagaOperations) => Promise<number>,
): Promise<number> {
  const choice = await transportChoice(values, io.env);
  const store = await backends.openSagaStore(choice.url, { mustExist: true });
  try {
    return await fn(new SagaOperations(store));
  } finally {
    await store.close();
  }
}
