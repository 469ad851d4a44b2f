import { z } from 'zod';
import { backends } from '../backends/index.js';

const backendUrl = z.string().superRefine((value, ctx) => {
  const parsed = backends.parse(value);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
});

const ms = z.number().int().min(0);

/**
 * The one schema of a Herald configuration file. Unknown fields are errors (a typo must not be
 * silently ignored).
 */
export const heraldConfigSchema = z.strictObject({
  /** This service's name: the `source` of its events. */
  service: z.string().min(1),
  transport: z.strictObject({
    url: backendUrl,
    /** Passed to the adapter factory as is (e.g. visibilityTimeoutMs, claimIdleMs). */
    options: z.record(z.string(), z.unknown()).optional(),
  }),
  /** Where the dead-letter, idempotency and event stores live. Default: the transport's backend. */
  stores: z.strictObject({ url: backendUrl }).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long stop() waits for running handlers. */
  drainTimeoutMs: ms.default(30_000),
  shutdown: z
    .strictObject({
      readinessDelayMs: ms.default(5000),
      /** Upper bound for the whole shutdown; past it the process exits 1. */
      timeoutMs: ms.default(35_000),
    })
    .prefault({}),
  health: z
    .strictObject({
      /** /live fails when the event loop was blocked longer than this. */
      maxEventLoopDelayMs: z.number().positive().default(2000),
    })
    .prefault({}),
});

/** A validated configuration (defaults applied). */
export type HeraldConfig = z.output<typeof heraldConfigSchema>;
/** What a configuration file or object may contain before defaults. */
export type HeraldConfigInput = z.input<typeof heraldConfigSchema>;
