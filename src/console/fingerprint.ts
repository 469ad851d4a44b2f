import { createHash } from 'node:crypto';

/*
 * Failures that differ only in ids, numbers, quoted values or the line they threw on are one
 * failure: `Order 8f3a… not found` and `Order 91bc… not found` share a fingerprint, a null
 * dereference and a timeout do not.
 */
const RULES: readonly (readonly [RegExp, string])[] = [
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\b/g, '<time>'],
  [/[\w.+-]+@[\w-]+(\.[\w-]+)+/g, '<email>'],
  [/"[^"]*"|'[^']*'|`[^`]*`/g, '<str>'],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  [/\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi, '<hex>'],
  [/\b(?=[\w-]*\d)[A-Za-z]+[-_][\w-]+\b/g, '<id>'],
  [/-?\d+(\.\d+)?/g, '<n>'],
  [/\s+/g, ' '],
];

/** The error message with its variable parts replaced by placeholders. */
export function normaliseMessage(message: string): string {
  let out = message.slice(0, 500);
  for (const [re, to] of RULES) out = out.replace(re, to);
  return out.trim();
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
