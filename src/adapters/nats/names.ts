import { createHash } from 'node:crypto';
import { ConfigError } from '../../core/errors.js';

/*
 * Every name Herald creates on the server, in one place (see docs/adapters/nats.md):
 *
 *   stream   <ns>-topics   subjects <ns>.topics.<topic>.<key>   (one stream per namespace)
 *   consumer <group>_<topic>                                    (durable pull consumer per group)
 *   KV       <ns>-keyorder  <group>.<topic>.<key hash> -> last settled stream sequence of the key
 *   KV       <ns>-retries   <group>.<topic>.<stream seq> -> {r: releases, due: epoch ms}
 *   KV       <ns>-dlq, <ns>-idempotency; stream <ns>-events
 *   stream   <ns>-scheduled  subjects <ns>.sched.<topic>.<id>   (one message per subject)
 *   consumer scheduler on it                                    (moves due messages to their topic)
 *
 * `<topic>` and `<group>` are tokens: letters, digits and `-` as they are, every other UTF-8
 * byte as `=XX`. A token is valid in subjects, stream, consumer and KV key names, and two
 * different names never give the same token.
 */

const NAMESPACE = /^[A-Za-z0-9_-]+$/;
const PLAIN = /^[A-Za-z0-9-]+$/;
const MAX_TOKEN = 96;

/** Checks a namespace (letters, digits, `_`, `-`), naming the field. */
export function validateNamespace(namespace: unknown): string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new ConfigError(
      'namespace',
      `must be letters, digits, "_" or "-" (it names streams and subjects), got ${JSON.stringify(namespace)}`,
    );
  }
  return namespace;
}

/** Encodes any name into one subject token (see above); long names end in a hash. */
export function token(name: string): string {
  let out: string;
  if (PLAIN.test(name)) out = name;
  else {
    out = '';
    for (const byte of Buffer.from(name, 'utf8')) {
      const c = String.fromCharCode(byte);
      out += /[A-Za-z0-9-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  if (out.length <= MAX_TOKEN) return out;
  return `${out.slice(0, MAX_TOKEN - 17)}=${hash(name)}`;
}

/** The tail of a token shortened by `token`: `=` and 16 characters of a hash. */
const HASHED_TAIL = /=[A-Za-z0-9_-]{16}$/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The name a token was made from, or undefined when it cannot be told: a token shortened to a
 * hash (or one of the maximum length that looks like one), or a string `token` never returns.
 * Undefined rather than a guess, so a listing never shows a name that is not the real one.
 */
export function untoken(t: string): string | undefined {
  if (t.length === 0 || (t.length === MAX_TOKEN && HASHED_TAIL.test(t))) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== '=') bytes.push(t.charCodeAt(i));
    else {
      bytes.push(Number.parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    }
  }
  let name: string;
  try {
    name = STRICT_UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  // Round trip: rejects lower-case or missing hex, escaped plain characters, foreign characters.
  return token(name) === t ? name : undefined;
}

/** 16 characters of the SHA-256 of `value` in base64url: a subject token of 96 bits. */
export function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 16);
}

/** The names of one namespace. */
export class Names {
  readonly topicsStream: string;
  readonly keyOrderBucket: string;
  readonly retriesBucket: string;
  readonly deadLetterBucket: string;
  readonly idempotencyBucket: string;
  readonly eventsStream: string;
  readonly scheduledStream: string;
  private readonly subjectRoot: string;
  private readonly topicTokens = new Map<string, string>();

  constructor(readonly namespace: string) {
    validateNamespace(namespace);
    this.topicsStream = `${namespace}-topics`;
    this.keyOrderBucket = `${namespace}-keyorder`;
    this.retriesBucket = `${namespace}-retries`;
    this.deadLetterBucket = `${namespace}-dlq`;
    this.idempotencyBucket = `${namespace}-idempotency`;
    this.eventsStream = `${namespace}-events`;
    this.subjectRoot = `${namespace}.topics`;
    this.scheduledStream = `${namespace}-scheduled`;
  }

  get scheduledSubjects(): string {
    return `${this.namespace}.sched.>`;
  }

  /** `<ns>.sched.<topic>`: every scheduled message of the topic is on a subject below it. */
  scheduledTopicSubject(topic: string): string {
    return `${this.namespace}.sched.${token(topic)}`;
  }

  /** The subject of one scheduled message: its topic and id, so a cancel finds it by name. */
  scheduledSubject(topic: string, id: string): string {
    return `${this.scheduledTopicSubject(topic)}.${token(id)}`;
  }

  /** Subjects of the topics stream. */
  get topicsSubjects(): string {
    return `${this.subjectRoot}.>`;
  }

  /** `<ns>.topics.<topic>`: every message of the topic is on a subject below it. */
  topicSubject(topic: string): string {
    let t = this.topicTokens.get(topic);
    if (t === undefined) {
      t = `${this.subjectRoot}.${token(topic)}`;
      this.topicTokens.set(topic, t);
    }
    return t;
  }

  /**
   * The subject of one message: `<topic subject>._` without a key, `<topic subject>.k<hash>` with
   * one. A subject per key lets a consumer ask the stream for the key's next message.
   */
  messageSubject(topic: string, key: string | undefined): string {
    return `${this.topicSubject(topic)}.${key === undefined ? '_' : keyToken(key)}`;
  }

  consumer(topic: string, group: string): string {
    return `${token(group)}_${token(topic)}`;
  }

  /**
   * The topic token of a subject of the topics stream (`<ns>.topics.<topic>.…`) or of the
   * scheduled stream (`<ns>.sched.<topic>.…`), if it is one.
   */
  topicTokenOf(subject: string): string | undefined {
    const parts = subject.split('.');
    return parts.length >= 4 && parts[0] === this.namespace && (parts[1] === 'topics' || parts[1] === 'sched')
      ? parts[2]
      : undefined;
  }

  /**
   * The tokens of the group and topic a consumer of the topics stream was made for by `consumer`,
   * from its name and filter subject; undefined for any other consumer (another tool's, a wider or
   * narrower filter, a name that does not end in the filter's topic).
   */
  groupConsumerTokens(name: string, filter: string): { group: string; topic: string } | undefined {
    const topic = filter.endsWith('.>') ? filter.split('.')[2] : undefined;
    if (topic === undefined || filter !== `${this.subjectRoot}.${topic}.>` || /[*>]/.test(topic))
      return undefined;
    const suffix = `_${topic}`;
    if (!name.endsWith(suffix) || name.length === suffix.length) return undefined;
    return { group: name.slice(0, -suffix.length), topic };
  }
}

/** Longest consumer description the server takes. */
const MAX_DESCRIPTION = 4096;
const DESCRIPTION_PREFIX = 'herald ';

/**
 * The description of a group's consumer: the group and topic names in full, which `topology()`
 * reads back where a token was shortened to a hash. Undefined when it would be too long.
 */
export function consumerDescription(topic: string, group: string): string | undefined {
  const d = `${DESCRIPTION_PREFIX}${JSON.stringify({ group, topic })}`;
  return Buffer.byteLength(d) <= MAX_DESCRIPTION ? d : undefined;
}

/** The names in a consumer description, if it is one `consumerDescription` wrote. */
export function namesInDescription(
  description: string | undefined,
): { group: string; topic: string } | undefined {
  if (!description?.startsWith(DESCRIPTION_PREFIX)) return undefined;
  try {
    const v = JSON.parse(description.slice(DESCRIPTION_PREFIX.length)) as {
      group?: unknown;
      topic?: unknown;
    };
    return typeof v.group === 'string' && typeof v.topic === 'string'
      ? { group: v.group, topic: v.topic }
      : undefined;
  } catch {
    return undefined;
  }
}

/** The last subject token of a keyed message. */
export function keyToken(key: string): string {
  return `k${hash(key)}`;
}
