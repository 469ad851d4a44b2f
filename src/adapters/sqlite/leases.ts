import type { Message } from '../../transport/transport.js';

/** A message leased to one member. */
export interface LeasedMessage {
  readonly seq: number;
  readonly attempt: number;
  readonly message: Message;
}

export interface FetchResult {
  readonly leased: LeasedMessage[];
  /** Earliest time a waiting (nacked with delay) message of the group becomes visible, if any. */
  readonly nextVisibleAt: number | undefined;
}

/** One ack, nack or release of a lease. */
export interface Settlement {
  readonly groupId: number;
  readonly seq: number;
  readonly token: string;
  readonly how: 'ack' | 'nack' | 'release';
  /** For nack: when the message becomes visible again. */
  readonly visibleAt: number;
}
