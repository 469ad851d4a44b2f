/**
 * Runs one bench child under `valgrind --tool=callgrind` and returns the instructions (Ir) it
 * executed: the one way the callgrind harnesses (bench/cases/pipeline.ts, bench/redis-callgrind.ts,
 * bench/observability-callgrind.ts) take a count, so a figure from one is comparable with another.
 *
 * The child is `node --predictable --expose-gc [nodeFlags] --import tsx <script>`. --predictable
 * makes V8 compile and collect on the main thread, so the count does not depend on when background
 * threads got to run: two runs of the same code then differ by ~0.5 % in total; without it the
 * per-event figure moved twofold. `HERALD_BENCH_KEEP=<dir>` keeps the output files there for
 * `callgrind_annotate`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CallgrindChild {
  /** The script the child runs (usually the harness itself, which branches on an env variable). */
  readonly script: string;
  /** Added to this process's environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Names the child in errors and its output file (`callgrind.<label>`). */
  readonly label: string;
  /** Node flags before `--import tsx`, e.g. `--perf-basic-prof`. */
  readonly nodeFlags?: readonly string[];
}

/**
 * Total instructions of the child, and what `inspect` reads from its output file before the file
 * is removed (e.g. inclusive costs from `callgrind_annotate`).
 */
export function countInstructions<T = undefined>(
  child: CallgrindChild,
  inspect?: (file: string) => T,
): { total: number; inspected: T | undefined } {
  const keep = process.env.HERALD_BENCH_KEEP;
  const dir = keep ?? mkdtempSync(path.join(os.tmpdir(), 'herald-callgrind-'));
  if (keep) mkdirSync(keep, { recursive: true });
  const file = path.join(dir, `callgrind.${child.label}.${process.pid}`);
  try {
    const out = spawnSync(
      'valgrind',
      [
        '--tool=callgrind',
        '--smc-check=all',
        `--callgrind-out-file=${file}`,
        process.execPath,
        '--predictable',
        '--expose-gc',
        ...(child.nodeFlags ?? []),
        '--import',
        'tsx',
        child.script,
      ],
      { env: { ...process.env, ...child.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    if (out.status !== 0) throw new Error(`callgrind child ${child.label} failed: ${out.stderr}`);
    const summary = /^summary:\s+(\d+)/mu.exec(readFileSync(file, 'utf8'));
    if (!summary) throw new Error(`callgrind output ${file} has no summary line`);
    return { total: Number(summary[1]), inspected: inspect?.(file) };
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
