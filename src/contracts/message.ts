/** A message as the broker sees it: opaque bytes plus string headers. */
export interface Message {
  /** Unique id (the event id); transports may use it to deduplicate. */
  readonly id: string;
  /** Ordering key (the aggregate id). Messages with the same key are delivered in publish order. */
  readonly key?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}
