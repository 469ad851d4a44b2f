/** Transport and store URLs: which backend, and where. */
export type ParsedUrl =
  | { readonly kind: 'memory' }
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'redis'; readonly url: string };

/** Schemes Herald recognises but cannot serve yet: they fail fast instead of falling back. */
export const NOT_AVAILABLE_SCHEMES: Readonly<Record<string, string>> = {
  'nats:': 'NATS',
  'kafka:': 'Kafka',
};

export const URL_EXPECTATION =
  'expected a memory://, sqlite://<path>, sqlite:<path> or redis://host:port/db URL';

/** Parses a URL, or returns why it is not usable. */
export function parseBackendUrl(value: string): ParsedUrl | { readonly error: string } {
  if (/^memory:(\/\/)?$/.test(value)) return { kind: 'memory' };
  const sqlite = /^sqlite:(?:\/\/)?(.*)$/.exec(value);
  if (sqlite) {
    const path = sqlite[1]!;
    if (path.trim().length === 0)
      return { error: 'sqlite:// needs a file path, e.g. sqlite://.herald/events.db' };
    return { kind: 'sqlite', path };
  }
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(value)?.[1]?.toLowerCase();
  if (scheme && NOT_AVAILABLE_SCHEMES[scheme]) {
    return {
      error: `the ${NOT_AVAILABLE_SCHEMES[scheme]} transport is not available yet; use memory://, sqlite:// or redis://`,
    };
  }
  if (scheme === 'redis:' || scheme === 'rediss:') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { error: `${URL_EXPECTATION}` };
    }
    if (url.hostname.length === 0) return { error: 'redis:// needs a host, e.g. redis://127.0.0.1:6379/0' };
    if (url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname))
      return { error: `the redis database must be a number, e.g. redis://${url.host}/0` };
    return { kind: 'redis', url: value };
  }
  return { error: URL_EXPECTATION };
}
