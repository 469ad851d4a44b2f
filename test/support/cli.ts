/**
 * Runs the `herald` CLI from source the way the tests need it: a real child process through tsx,
 * with the HERALD_* variables that would change its defaults cleared unless a test sets them.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `herald <args>` to its exit; `onStderr` sees the whole stderr so far after each chunk. */
export function herald(
  args: readonly string[],
  env: Record<string, string> = {},
  onStderr?: (text: string) => void,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { ...process.env, HERALD_TRANSPORT: '', HERALD_DB: '', HERALD_JSON: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
