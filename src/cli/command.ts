import {
  COMMON_OPTIONS,
  describeOptions,
  transportChoice,
  type OptionSpecs,
  type ParsedValues,
} from './args.js';
import type { Io } from './output.js';
import { backends, type OpenedBackend } from '../backends/index.js';
import { createHerald, type Herald } from '../core/herald.js';

/** One `herald <name>` command. `run` returns the exit code. */
export interface Command {
  readonly name: string;
  /** One line for `herald --help`. */
  readonly summary: string;
  /** `herald <name> ...` synopsis lines. */
  readonly usage: readonly string[];
  readonly options: OptionSpecs;
  /** Extra help text (examples, notes). */
  readonly details?: string;
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** The synopsis and a pointer to --help: what a usage error prints. */
export function usageText(command: Command): string {
  return `Usage:\n${command.usage.map((u) => `  ${u}`).join('\n')}\nRun \`herald ${command.name} --help\` for all options.`;
}

export function helpText(command: Command): string {
  return [
    `Usage:\n${command.usage.map((u) => `  ${u}`).join('\n')}`,
    command.summary,
    `Options:\n${describeOptions({ ...command.options, ...COMMON_OPTIONS })}`,
    ...(command.details ? [command.details] : []),
  ].join('\n\n');
}

/**
 * Opens the backend named by --transport / --config / HERALD_TRANSPORT / HERALD_DB and a Herald
 * instance (`herald-cli`) on it, runs `fn`, then closes everything, even when `fn` throws.
 * Commands that only read or settle what is there keep `mustExist` (the default), so a mistyped
 * path fails instead of creating an empty database; `publish` creates what it needs.
 */
export async function withHerald<T>(
  values: ParsedValues,
  io: Io,
  fn: (herald: Herald, opened: OpenedBackend) => Promise<T>,
  options: {
    service?: string;
    routing?: Record<string, string>;
    drainTimeoutMs?: number;
    mustExist?: boolean;
  } = {},
): Promise<T> {
  const choice = await transportChoice(values, io.env);
  const opened = await backends.open(choice.url, {
    mustExist: options.mustExist ?? true,
    ...(choice.transportOptions ? { transportOptions: choice.transportOptions } : {}),
  });
  try {
    const herald = await createHerald({
      service: options.service ?? 'herald-cli',
      transport: opened.transport,
      ...(opened.stores.deadLetters ? { stores: { deadLetters: opened.stores.deadLetters } } : {}),
      closeResources: false,
      drainTimeoutMs: options.drainTimeoutMs ?? 2000,
      ...(options.routing ? { routing: options.routing } : {}),
    });
    try {
      return await fn(herald, opened);
    } finally {
      await herald.stop();
    }
  } finally {
    await opened.close();
  }
}
