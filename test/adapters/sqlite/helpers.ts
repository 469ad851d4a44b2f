import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Delivery, Message } from '../../../src/transport/transport.js';

/** A fresh temp directory; `cleanup()` removes it. */
export function tempDir(prefix = 'herald-sqlite-'): {
  dir: string;
  file: (name?: string) => string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name = 'events.db') => path.join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function msg(id: string, key?: string, text = id): Message {
  return {
    id,
    ...(key === undefined ? {} : { key }),
    headers: { h: id },
    body: new TextEncoder().encode(text),
  };
}

export function text(d: Delivery): string {
  return new TextDecoder().decode(d.message.body);
}

/** Waits (sleeping, never spinning) until `check` is true, failing after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let n = 0;
/** A name unique within the run. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Holds the file's write lock from another connection until `release()`. */
export function holdWriteLock(file: string): { release: () => void } {
  const raw = new Database(file);
  raw.prepare('BEGIN IMMEDIATE').run();
  return {
    release: () => {
      raw.prepare('COMMIT').run();
      raw.close();
    },
  };
}
