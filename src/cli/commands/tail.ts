import { randomBytes } from 'node:crypto';
import {
  COMMON_OPTIONS,
  EXIT,
  flag,
  numberOption,
  parseCommand,
  stringOption,
  UsageError,
  type OptionSpecs,
} from '../args.js';
import { withHerald, type Command } from '../command.js';
import { printJsonLine } from '../output.js';

const options = {
  topic: { type: 'string', short: 't', multiple: true, arg: '<topic>', help: 'topic to read; repeatable' },
  events: {
    type: 'string',
    short: 'e',
    multiple: true,
    arg: '<pattern>',
    help: 'event types to show, e.g. "conversation.*"; repeatable',
  },
  group: {
    type: 'string',
    short: 'g',
    arg: '<group>',
    help: 'consume as a member of this group (acks what it prints!); default: a private group deleted on exit',
  },
  'from-start': { type: 'boolean', help: 'start from the oldest retained message (default: only new ones)' },
  count: { type: 'string', short: 'n', arg: '<n>', help: 'exit after printing n events' },
  duration: { type: 'string', arg: '<s>', help: 'exit after s seconds' },
} as const satisfies OptionSpecs;

export const tailCommand: Command = {
  name: 'tail',
  summary: 'Print events as they arrive, one JSON envelope per line.',
  usage: [
    'herald tail (--topic <topic> | --events <pattern>)... [--group <g>] [--from-start] [--count <n>] [--duration <s>]',
  ],
  options,
  details: [
    'Stops on Ctrl-C, after --count events or after --duration seconds.',
    '',
    'Examples:',
    '  herald tail --events "conversation.*" --from-start --count 10',
    '  herald tail --topic document.events | jq .payload',
  ].join('\n'),
  async run(argv, io) {
    const { values } = parseCommand(argv, { ...options, ...COMMON_OPTIONS }, io.env);
    const topics = (values['topic'] as string[] | undefined) ?? [];
    const patterns = (values['events'] as string[] | undefined) ?? [];
    if (topics.length === 0 && patterns.length === 0)
      throw new UsageError('name what to tail: --topic <topic> or --events <pattern>');
    const count =
      values['count'] === undefined ? Infinity : numberOption(values, 'count', 0, { min: 1, integer: true });
    const durationS =
      values['duration'] === undefined ? undefined : numberOption(values, 'duration', 0, { min: 0 });
    const named = stringOption(values, 'group');
    const group = named ?? `herald-tail-${randomBytes(4).toString('hex')}`;

    await withHerald(
      values,
      io,
      async (herald, opened) => {
        let printed = 0;
        let finish!: () => void;
        const finished = new Promise<void>((resolve) => (finish = resolve));
        const consumer = herald.subscribe({
          group,
          name: 'herald-tail',
          events: patterns.length > 0 ? patterns : ['*'],
          ...(topics.length > 0 ? { topics } : {}),
          concurrency: 1,
          ordering: 'none',
          retry: false,
          startFrom: flag(values, 'from-start') ? 'earliest' : 'latest',
          handler: async (event, ctx) => {
            if (printed >= count) {
              // Enough printed: leave the message for the group (released when we stop), do not ack it.
              await new Promise<never>((_, reject) =>
                ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), {
                  once: true,
                }),
              );
            }
            printJsonLine(io, event);
            if (++printed >= count) finish();
          },
        });
        const onSignal = (): void => finish();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const timer = durationS === undefined ? undefined : setTimeout(finish, durationS * 1000);
        try {
          await herald.start();
          await finished;
        } finally {
          clearTimeout(timer);
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          await herald.stop();
          if (!named) {
            // A private group that stays behind would hold the log back from retention.
            const dropper = opened.transport as {
              deleteGroup?: (topic: string, group: string) => Promise<unknown>;
            };
            for (const t of consumer.topics) await dropper.deleteGroup?.(t, group).catch(() => undefined);
          }
        }
      },
      { drainTimeoutMs: 200 },
    );
    return EXIT.ok;
  },
};
