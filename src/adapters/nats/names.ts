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
}

/** The last subject token of a keyed message. */
export function keyToken(key: string): string {
  return `k${hash(key)}`;
}
