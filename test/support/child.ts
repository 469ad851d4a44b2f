/**
 * Child processes of the crash and chaos tests: a fixture script run through tsx that prints
 * `ready` on stdout once it is set up, and is later killed by its pid.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
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

/**
 * Forks `script` through tsx with `env` added to this process's; resolves on its first IPC message
 * (the fixture is set up). `children` holds it while it lives, so an `after` hook can kill the rest.
 */
export function forkReady(
  script: string,
  env: Record<string, string>,
  children: Set<ChildProcess>,
): Promise<ChildProcess> {
  const child = fork(script, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code, signal) => reject(new Error(`consumer exited early (${code ?? signal})`)));
  });
}

/** SIGKILLs the child and resolves once it has exited. */
export async function killAndWait(child: ChildProcess): Promise<void> {
  const gone = exited(child);
  child.kill('SIGKILL');
  await gone;
}
