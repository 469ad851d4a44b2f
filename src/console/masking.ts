/** What a masked value is shown as. */
export const MASK = '••••••';

/**
 * Field masking for personal data. A rule is a field name (`email`: that key at any depth) or a
 * dotted path suffix (`customer.email`: `email` directly under a `customer` key).
 */
export class Masker {
  private readonly rules: readonly (readonly string[])[];

  constructor(rules: readonly string[] = []) {
    this.rules = rules.map((r) => r.split('.').filter(Boolean)).filter((r) => r.length > 0);
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  private masked(path: readonly string[]): boolean {
    return this.rules.some(
      (rule) =>
        rule.length <= path.length && rule.every((part, i) => path[path.length - rule.length + i] === part),
    );
  }

  /** A copy of `value` with masked fields replaced by {@link MASK}. */
  mask(value: unknown, path: string[] = []): unknown {
    if (!this.enabled || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.mask(v, path));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const p = [...path, k];
      out[k] = this.masked(p) ? MASK : this.mask(v, p);
    }
    return out;
  }

  /**
   * An edited copy of a masked value with every field still equal to {@link MASK} (and masked)
   * restored from `original`, so editing one field of a masked payload never writes the mask.
   */
  unmask(edited: unknown, original: unknown, path: string[] = []): unknown {
    if (edited === MASK && this.masked(path)) return original;
    if (edited === null || typeof edited !== 'object') return edited;
    if (Array.isArray(edited)) {
      const orig = Array.isArray(original) ? original : [];
      return edited.map((v, i) => this.unmask(v, orig[i], path));
    }
    const orig =
      original !== null && typeof original === 'object' ? (original as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(edited as Record<string, unknown>))
      out[k] = this.unmask(v, orig[k], [...path, k]);
    return out;
  }
}
