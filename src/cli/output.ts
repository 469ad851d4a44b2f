/**
 * Output conventions: results go to stdout (JSON with --json, a table or text otherwise);
 * progress, status lines and errors go to stderr so stdout stays parseable.
 */

/** The streams a command writes to; injectable so commands stay testable in-process. */
export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env };

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One JSON value per line (for streams such as `herald tail`). */
export function printJsonLine(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}

/** A plain left-aligned table; empty input prints `(none)`. */
export function printTable(
  io: Io,
  rows: readonly Record<string, string | number>[],
  columns: readonly string[],
): void {
  if (rows.length === 0) {
    io.stdout.write('(none)\n');
    return;
  }
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  io.stdout.write(`${line(columns.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) io.stdout.write(`${line(columns.map((c) => String(r[c] ?? '')))}\n`);
}

/**
 * Progress on stderr: redrawn in place on a terminal, silent otherwise unless forced
 * (`--progress`), in which case one line per update.
 */
export class Progress {
  private readonly enabled: boolean;
  private readonly tty: boolean;
  private drawn = false;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    force = false,
  ) {
    this.tty = io.stderr.isTTY === true;
    this.enabled = this.tty || force;
  }

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    const text = `${this.label} ${done}/${total} (${pct}%)`;
    if (this.tty) {
      this.io.stderr.write(`\r\x1b[2K${text}`);
      this.drawn = true;
    } else this.io.stderr.write(`${text}\n`);
  }

  finish(): void {
    if (this.drawn) this.io.stderr.write('\n');
    this.drawn = false;
  }
}

/** Milliseconds since the epoch → ISO string, for tables. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
