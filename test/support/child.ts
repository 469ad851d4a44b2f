/**
 * Child processes of the crash and chaos tests: a fixture script run through tsx that prints
 * `ready` on stdout once it is set up, and is later killed by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { basename } from 'node:path';

/** Starts `node --import tsx <script> <args>`; resolves once it has printed `ready`. */
export function startReady(script: string, args: readonly string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`${basename(script)} exited before ready: ${code ?? signal}`)),
    );
  });
}

/** Resolves once the child has exited; at once when it already has. */
export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}
