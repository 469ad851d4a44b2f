/** The value every label folds into once its cap of distinct values is reached. */
export const OTHER = 'other';

/**
 * Keeps a label's cardinality bounded: the first `cap` distinct values pass through, later new
 * ones fold into {@link OTHER}. A runaway event type or handler name then costs one series, not
 * thousands.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(readonly cap = 200) {}

  fold(value: string | undefined): string {
    if (value === undefined || value === '') return 'unknown';
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.cap) return OTHER;
    this.seen.add(value);
    return value;
  }
}
