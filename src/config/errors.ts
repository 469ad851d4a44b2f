import { ConfigError } from '../core/errors.js';

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Dotted path of the field, e.g. `transport.url`, or `file:line:col` for a syntax error. */
  readonly path: string;
  readonly message: string;
}

/**
 * A configuration is invalid. The message reads `config error at <path>: <what was expected>, got
 * <value>`; `issues` lists every problem found (the message shows the first ones).
 */
export class ConfigValidationError extends ConfigError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const first = issues[0] ?? { path: '(root)', message: 'invalid configuration' };
    super(first.path, first.message);
    this.issues = issues;
    const lines = issues.slice(0, 5).map((i) => `config error at ${i.path}: ${i.message}`);
    if (issues.length > 5) lines.push(`... and ${issues.length - 5} more`);
    this.message = lines.join('\n');
  }
}
