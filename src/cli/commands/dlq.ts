import {
  backendFlags,
  shellArg,
  COMMON_OPTIONS,
  EXIT,
  flag,
  JSON_OPTION,
  numberOption,
  parseCommand,
  stringOption,
  UsageError,
  type OptionSpecs,
  type ParsedValues,
} from '../args.js';
import { isBinaryMessage, jsonEnvelopeOf } from '../../core/codec/wire.js';
import { withHerald, type Command } from '../command.js';
import { isoTime, printJson, printTable, Progress, type Io } from '../output.js';
import type { DeadLetterEntry, DeadLetterFilter, DeadLetterReason } from '../../store/dead-letter-store.js';

const REASONS: readonly DeadLetterReason[] = ['max-attempts', 'decode', 'schema', 'permanent'];

const filterOptions = {
  group: { type: 'string', short: 'g', arg: '<group>', help: 'only entries of this consumer group' },
  topic: { type: 'string', short: 't', arg: '<topic>', help: 'only entries from this topic' },
  type: { type: 'string', arg: '<event-type>', help: 'only entries of this event type' },
  handler: { type: 'string', arg: '<name>', help: 'only entries of this handler' },
  reason: {
    type: 'string',
    arg: '<reason>',
    help: `only entries dead-lettered for this reason (${REASONS.join(', ')})`,
  },
  since: { type: 'string', arg: '<time>', help: 'dead-lettered at or after (ISO 8601 or epoch ms)' },
  until: { type: 'string', arg: '<time>', help: 'dead-lettered before (ISO 8601 or epoch ms)' },
} as const satisfies OptionSpecs;

const options = {
  ...filterOptions,
  limit: { type: 'string', arg: '<n>', help: 'list: entries per page, 1..1000 (default 50)' },
  cursor: { type: 'string', arg: '<cursor>', help: 'list: the nextCursor of the previous page' },
  all: { type: 'boolean', help: 'replay: every entry matching the filters' },
  yes: { type: 'boolean', short: 'y', help: 'purge: really delete' },
  progress: { type: 'boolean', help: 'replay: show progress on stderr even when it is not a terminal' },
  ...JSON_OPTION,
} as const satisfies OptionSpecs;

export const dlqCommand: Command = {
  name: 'dlq',
  summary: 'Inspect, replay and purge dead-lettered messages.',
  usage: [
    'herald dlq list [--group <g>] [--topic <t>] [--type <event-type>] [--reason <r>] [--limit <n>] [--cursor <c>] [--json]',
    'herald dlq show <id> [--json]',
    'herald dlq replay <id>... [--json] [--progress]',
    'herald dlq replay --all [filters] [--json] [--progress]',
    'herald dlq purge [filters] --yes [--json]',
  ],
  options,
  details: [
    'A replay republishes the original message to its topic for the group that dead-lettered it only;',
    'the entry is removed once the transport has it. Exit code 1 when some entries could not be replayed.',
    '',
    'Examples:',
    '  herald dlq list --reason schema',
    '  herald dlq replay --all --group notification-service',
    '  herald dlq purge --type document.uploaded --yes',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env, {
      positionals: true,
    });
    const [sub, ...args] = positionals;
    switch (sub) {
      case 'list':
        noArgs(sub, args);
        return list(values, io);
      case 'show':
        if (args.length !== 1) throw new UsageError('dlq show takes exactly one entry id');
        return show(values, io, args[0]!);
      case 'replay':
        return replay(values, io, args);
      case 'purge':
        noArgs(sub, args);
        return purge(values, io);
      case undefined:
        throw new UsageError('missing subcommand: list, show, replay or purge');
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: use list, show, replay or purge`);
    }
  },
};

function noArgs(sub: string, args: readonly string[]): void {
  if (args.length > 0)
    throw new UsageError(
      `dlq ${sub} takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}`,
    );
}

function filterFrom(values: ParsedValues): DeadLetterFilter {
  const reason = stringOption(values, 'reason');
  if (reason !== undefined && !REASONS.includes(reason as DeadLetterReason)) {
    throw new UsageError(`--reason must be one of ${REASONS.join(', ')}, got ${JSON.stringify(reason)}`);
  }
  const filter: Record<string, string | number> = {};
  const copy = (key: keyof DeadLetterFilter, name: string): void => {
    const v = stringOption(values, name);
    if (v !== undefined) filter[key] = v;
  };
  copy('group', 'group');
  copy('topic', 'topic');
  copy('eventType', 'type');
  copy('handler', 'handler');
  copy('reason', 'reason');
  for (const name of ['since', 'until'] as const) {
    const v = stringOption(values, name);
    if (v !== undefined) filter[name] = parseTime(name, v);
  }
  return filter as DeadLetterFilter;
}

function parseTime(name: string, raw: string): number {
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(ms))
    throw new UsageError(
      `--${name} must be an ISO 8601 time or epoch milliseconds, got ${JSON.stringify(raw)}`,
    );
  return ms;
}

/**
 * An entry as JSON: the message body decoded when it is JSON (the usual case), base64 otherwise. A
 * binary-mode event (ADR 0010) shows as its whole envelope, headers and payload together, as a
 * structured one always did.
 */
export function entryJson(entry: DeadLetterEntry): Record<string, unknown> {
  const { body, ...message } = entry.message;
  let decoded: { body: unknown; bodyEncoding: 'json' | 'base64' };
  const envelope = isBinaryMessage(message.headers) ? jsonEnvelopeOf(entry.message) : undefined;
  if (envelope !== undefined)
    return { ...entry, message: { ...message, body: envelope, bodyEncoding: 'json' } };
  try {
    decoded = {
      body: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown,
      bodyEncoding: 'json',
    };
  } catch {
    decoded = { body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' };
  }
  return { ...entry, message: { ...message, ...decoded } };
}

async function list(values: ParsedValues, io: Io): Promise<number> {
  const filter = filterFrom(values);
  const limit = numberOption(values, 'limit', 50, { min: 1, integer: true });
  if (limit > 1000) throw new UsageError('--limit must be at most 1000');
  const cursor = stringOption(values, 'cursor');
  const page = await withHerald(values, io, (herald) =>
    herald.deadLetters.list(filter, { limit, ...(cursor ? { cursor } : {}) }),
  );
  if (flag(values, 'json')) {
    printJson(io, {
      items: page.items.map(entryJson),
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    });
    return EXIT.ok;
  }
  printTable(
    io,
    page.items.map((e) => ({
      id: e.id,
      reason: e.reason,
      group: e.group,
      type: e.eventType ?? '?',
      attempts: e.attempts,
      at: isoTime(e.deadLetteredAt),
      error: e.error.message.length > 60 ? `${e.error.message.slice(0, 57)}...` : e.error.message,
    })),
    ['id', 'reason', 'group', 'type', 'attempts', 'at', 'error'],
  );
  if (page.nextCursor) {
    const repeat = ['group', 'topic', 'type', 'handler', 'reason', 'since', 'until', 'limit']
      .map((name) => [name, stringOption(values, name)] as const)
      .filter(([, v]) => v !== undefined)
      .map(([name, v]) => ` --${name} ${shellArg(v!)}`)
      .join('');
    const where = await backendFlags(values, io.env);
    io.stderr.write(`more: herald dlq list${where}${repeat} --cursor ${shellArg(page.nextCursor)}\n`);
  }
  return EXIT.ok;
}

async function show(values: ParsedValues, io: Io, id: string): Promise<number> {
  const entry = await withHerald(values, io, (herald) => herald.deadLetters.get(id));
  if (!entry) {
    io.stderr.write(`herald dlq: no entry with id ${JSON.stringify(id)}\n`);
    return EXIT.failure;
  }
  printJson(io, entryJson(entry));
  return EXIT.ok;
}

async function replay(values: ParsedValues, io: Io, ids: readonly string[]): Promise<number> {
  const all = flag(values, 'all');
  if (all && ids.length > 0) throw new UsageError('give entry ids or --all, not both');
  if (!all && ids.length === 0)
    throw new UsageError('name the entries to replay: dlq replay <id>... or dlq replay --all [filters]');
  const filter = filterFrom(values);
  if (!all && Object.keys(filter).length > 0) throw new UsageError('filters apply to --all only');
  const progress = new Progress(io, 'replaying', flag(values, 'progress'));
  const result = await withHerald(values, io, (herald) =>
    herald.deadLetters.replay(all ? { filter } : ids, {
      onProgress: (done, total) => progress.update(done, total),
    }),
  );
  progress.finish();
  if (flag(values, 'json')) printJson(io, result);
  else {
    io.stdout.write(`replayed ${result.replayed}\n`);
    for (const f of result.failed) io.stderr.write(`failed ${f.id}: ${f.error}\n`);
  }
  if (!all && result.replayed + result.failed.length < ids.length) {
    io.stderr.write(
      `herald dlq: ${ids.length - result.replayed - result.failed.length} of the ids were not found\n`,
    );
    return EXIT.failure;
  }
  return result.failed.length === 0 ? EXIT.ok : EXIT.failure;
}

async function purge(values: ParsedValues, io: Io): Promise<number> {
  const filter = filterFrom(values);
  if (!flag(values, 'yes')) {
    const n = await withHerald(values, io, (herald) => herald.deadLetters.count(filter));
    throw new UsageError(`would delete ${n} entr${n === 1 ? 'y' : 'ies'}; add --yes to do it`, false);
  }
  const purged = await withHerald(values, io, (herald) => herald.deadLetters.purge(filter));
  if (flag(values, 'json')) printJson(io, { purged });
  else io.stdout.write(`purged ${purged}\n`);
  return EXIT.ok;
}
