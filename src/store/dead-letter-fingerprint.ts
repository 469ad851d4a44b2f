import { createHash } from 'node:crypto';

/*
 * Failures that differ only in ids, numbers, quoted values or the line they threw on are one
 * failure: `Order 8f3a… not found` and `Order 91bc… not found` share a fingerprint, a null
 * dereference and a timeout do not.
 */
const QUOTED = /"[^"]*"|'[^']*'|`[^`]*`/g;
const TOKEN = /[\w.:@+-]+/g;
const DIGIT = /\d/;
const SPACE = /\s+/g;

/** A token with a digit (number, uuid, timestamp, `req-123`, hex id, port) or an email address. */
function variable(token: string): string {
  if (DIGIT.test(token)) return '<n>';
  return token.includes('@') ? '<email>' : token;
}

/** The error message with its variable parts replaced by placeholders. */
export function normaliseMessage(message: string): string {
  return message.slice(0, 500).replace(QUOTED, '<str>').replace(TOKEN, variable).replace(SPACE, ' ').trim();
}

/** `at fn (file:12:5)` → `at fn (file)`: a redeploy that moves a line keeps the group together. */
export function normaliseFrame(frame: string | undefined): string {
  if (!frame) return '';
  return frame.replace(/:\d+(:\d+)?(\)?)$/, '$2').replace(/\?[^)\s]*/, '');
}

/** Twelve hex digits identifying a failure kind: error name + normalised message + stack top. */
export function fingerprint(errorName: string, message: string, stackTop: string | undefined): string {
  return createHash('sha1')
    .update(`${errorName}\n${normaliseMessage(message)}\n${normaliseFrame(stackTop)}`)
    .digest('hex')
    .slice(0, 12);
}

/** The fingerprint of a dead letter's error: what stores keep with an entry and the console groups by. */
export function errorFingerprint(error: {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}): string {
  return fingerprint(error.name, error.message, stackTop(error.stack));
}

/** The first frame of a stack trace (`at fn (file:line:col)`), trimmed. */
export function stackTop(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  for (const line of stack.split('\n', 20)) {
    const t = line.trim();
    if (t.startsWith('at ')) return t.slice(0, 300);
  }
  return undefined;
}
