/**
 * Event-type patterns. `*` matches any run of characters, dots included, so `conversation.*` matches
 * both `conversation.created` and `conversation.message.sent`, and `*` alone matches every type.
 * Without a `*` a pattern matches exactly one type.
 */
export interface TypePattern {
  readonly source: string;
  /** Number of literal (non-`*`) characters: longer literal patterns are more specific. */
  readonly specificity: number;
  matches(type: string): boolean;
}

export function compilePattern(source: string): TypePattern {
  if (!source.includes('*')) {
    return { source, specificity: source.length + 1, matches: (type) => type === source };
  }
  const escaped = source.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  const regex = new RegExp(`^${escaped.join('.*')}$`);
  return { source, specificity: source.replace(/\*/g, '').length, matches: (type) => regex.test(type) };
}

/** Picks the most specific matching entry; ties go to the one listed first. */
export function mostSpecific<T extends { pattern: TypePattern }>(
  entries: readonly T[],
  type: string,
): T | undefined {
  let best: T | undefined;
  for (const entry of entries) {
    if (entry.pattern.matches(type) && (!best || entry.pattern.specificity > best.pattern.specificity))
      best = entry;
  }
  return best;
}
