import { readFileSync } from 'node:fs';
import {
  COMMON_OPTIONS,
  EXIT,
  flag,
  JSON_OPTION,
  parseCommand,
  stringOption,
  UsageError,
  type OptionSpecs,
} from '../args.js';
import { withHerald, type Command } from '../command.js';
import { printJson } from '../output.js';
import type { EventOptions } from '../../core/event.js';

const options = {
  data: { type: 'string', short: 'd', arg: '<json>', help: 'payload as JSON, or @file.json (default {})' },
  aggregate: { type: 'string', arg: '<id>', help: 'aggregate id (also the ordering key)' },
  tenant: { type: 'string', arg: '<id>', help: 'tenant id' },
  user: { type: 'string', arg: '<id>', help: 'user id' },
  version: { type: 'string', arg: '<v>', help: 'payload schema version (default v1)' },
  source: {
    type: 'string',
    arg: '<service>',
    env: 'HERALD_SERVICE',
    help: 'publishing service name (default herald-cli)',
  },
  topic: { type: 'string', arg: '<topic>', help: 'topic to publish to (default: <domain>.events)' },
  meta: { type: 'string', multiple: true, arg: '<k=v>', help: 'metadata entry; repeatable' },
  'correlation-id': { type: 'string', arg: '<id>', help: 'correlation id' },
  ...JSON_OPTION,
} as const satisfies OptionSpecs;

export const publishCommand: Command = {
  name: 'publish',
  summary: 'Publish one event (the payload is not validated: there is no schema on the command line).',
  usage: [
    'herald publish <type> [--data <json>|@file] [--aggregate <id>] [--tenant <id>] [--topic <topic>] [--json]',
  ],
  options,
  details: [
    'Prints the event id (the whole envelope with --json).',
    '',
    'Example:',
    `  herald publish conversation.created --data '{"conversationId":"c1","userId":"u1","title":"Hi"}' --aggregate c1`,
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env, {
      positionals: true,
    });
    if (positionals.length !== 1)
      throw new UsageError(`expected exactly one event type, got ${positionals.length}`);
    const type = positionals[0]!;
    const payload = parseData(stringOption(values, 'data'));
    const metadata: Record<string, string> = {};
    for (const entry of (values['meta'] as string[] | undefined) ?? []) {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new UsageError(`--meta must look like key=value, got ${JSON.stringify(entry)}`);
      metadata[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const eventOptions: EventOptions = { metadata };
    const set = (key: keyof EventOptions, flagName: string): void => {
      const v = stringOption(values, flagName);
      if (v !== undefined) (eventOptions as Record<string, unknown>)[key] = v;
    };
    set('aggregateId', 'aggregate');
    set('tenantId', 'tenant');
    set('userId', 'user');
    set('correlationId', 'correlation-id');
    const topic = stringOption(values, 'topic');
    const version = stringOption(values, 'version');
    const envelope = await withHerald(
      values,
      io,
      async (herald) => {
        const ref = version ? { type, version, parse: async (p: unknown) => p } : type;
        return herald.publish(ref, payload, eventOptions);
      },
      {
        service: stringOption(values, 'source') ?? 'herald-cli',
        mustExist: false,
        ...(topic ? { routing: { [type]: topic } } : {}),
      },
    );
    if (flag(values, 'json')) printJson(io, envelope);
    else io.stdout.write(`${envelope.id}\n`);
    return EXIT.ok;
  },
};

function parseData(raw: string | undefined): unknown {
  if (raw === undefined) return {};
  let text = raw;
  if (raw.startsWith('@')) {
    try {
      text = readFileSync(raw.slice(1), 'utf8');
    } catch (err) {
      throw new UsageError(`--data ${raw}: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`--data is not valid JSON: ${(err as Error).message}`);
  }
}
