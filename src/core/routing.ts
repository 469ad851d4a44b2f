import { ConfigError, RoutingError } from './errors.js';
import { compilePattern, mostSpecific, type TypePattern } from './patterns.js';

/** Maps event-type patterns to topic names, e.g. `{ 'conversation.*': 'conversation.events' }`. */
export type RoutingRules = Readonly<Record<string, string>>;

/**
 * Decides which topic an event type is published to. The most specific matching rule wins; when no
 * rule matches, the type goes to `<domain>.events`, where domain is its first segment (a common
 * convention: `conversation.message.sent` → `conversation.events`).
 */
export class Router {
  private readonly rules: readonly { pattern: TypePattern; topic: string }[];
  private readonly cache = new Map<string, string>();

  constructor(rules: RoutingRules = {}) {
    this.rules = Object.entries(rules).map(([pattern, topic]) => {
      if (typeof topic !== 'string' || topic.length === 0) {
        throw new ConfigError(
          `routing.${pattern}`,
          `topic must be a non-empty string, got ${JSON.stringify(topic)}`,
        );
      }
      return { pattern: compilePattern(pattern), topic };
    });
  }

  /** Topic for a concrete event type. */
  topicFor(type: string): string {
    let topic = this.cache.get(type);
    if (topic === undefined) {
      topic = mostSpecific(this.rules, type)?.topic ?? defaultTopic(type);
      if (this.cache.size < 10_000) this.cache.set(type, topic);
    }
    return topic;
  }

  /**
   * Topic that carries every type matched by a subscription pattern. A pattern such as
   * `conversation.*` resolves through the rule with the same text or through the default
   * `<domain>.events`; one whose matches could be spread over several topics (`*`, `*.created`)
   * cannot be resolved, and the caller must name the topics.
   */
  topicForPattern(pattern: string): string {
    if (!pattern.includes('*')) return this.topicFor(pattern);
    const exact = this.rules.find((r) => r.pattern.source === pattern);
    if (exact) return exact.topic;
    const domain = pattern.split('.')[0]!;
    if (domain.includes('*')) {
      throw new RoutingError(
        `cannot tell which topic carries events matching "${pattern}"; pass \`topics\` to subscribe()`,
      );
    }
    const candidates = new Set(
      this.rules.filter((r) => r.pattern.source.startsWith(`${domain}.`)).map((r) => r.topic),
    );
    if (candidates.size > 1) {
      throw new RoutingError(
        `events matching "${pattern}" are routed to several topics (${[...candidates].join(', ')}); pass \`topics\` to subscribe()`,
      );
    }
    return [...candidates][0] ?? defaultTopic(pattern);
  }
}

function defaultTopic(type: string): string {
  return `${type.split('.')[0]}.events`;
}
