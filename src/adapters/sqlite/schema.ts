/**
 * The schema of a Herald SQLite file and its migrations. A Herald file is marked by
 * `PRAGMA application_id` and versioned by `PRAGMA user_version`; migration `i` takes the file from
 * version `i` to `i + 1` inside one IMMEDIATE transaction, so processes opening the file at the same
 * time migrate it exactly once.
 */

/** 'HRLD': marks a file as Herald's. */
export const APPLICATION_ID = 0x48524c44;

const V1 = `
CREATE TABLE herald_topics (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  retained INTEGER NOT NULL DEFAULT 0          -- messages currently stored, for retention.maxMessages
) STRICT;

CREATE TABLE herald_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,       -- never reused, so a group cursor stays valid after retention
  topic_id INTEGER NOT NULL,
  id TEXT NOT NULL,
  key TEXT,
  headers TEXT NOT NULL,                       -- JSON object
  body BLOB NOT NULL,
  published_at INTEGER NOT NULL
) STRICT;
CREATE INDEX herald_messages_by_topic ON herald_messages(topic_id, seq);

CREATE TABLE herald_groups (
  id INTEGER PRIMARY KEY,
  topic_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  cursor INTEGER NOT NULL,                     -- every message of the topic with seq <= cursor is acked or pending
  created_at INTEGER NOT NULL,
  UNIQUE (topic_id, name)
) STRICT;

-- Messages a group has reached but not acknowledged: leased, waiting for redelivery, or held back
-- behind an earlier message with the same key. An ack deletes the row.
CREATE TABLE herald_pending (
  group_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  key TEXT,                                    -- ordering key of the message (NULL when none)
  attempts INTEGER NOT NULL DEFAULT 0,         -- deliveries so far
  visible_at INTEGER NOT NULL DEFAULT 0,       -- not delivered before this time (the retry queue)
  lease_token TEXT,                            -- holder of the current lease
  lease_until INTEGER NOT NULL DEFAULT 0,      -- the lease holds while now < lease_until
  PRIMARY KEY (group_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX herald_pending_by_key ON herald_pending(group_id, key, seq);

CREATE TABLE herald_dead_letters (
  id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  topic TEXT NOT NULL,
  grp TEXT NOT NULL,
  handler TEXT NOT NULL,
  event_type TEXT,
  dead_lettered_at INTEGER NOT NULL,
  entry TEXT NOT NULL,                         -- JSON of the entry without the message body
  body BLOB NOT NULL
) STRICT;
CREATE INDEX herald_dead_letters_order ON herald_dead_letters(dead_lettered_at, id);

CREATE TABLE herald_idempotency (
  key TEXT PRIMARY KEY,
  state TEXT NOT NULL,                         -- 'reserved' | 'done'
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX herald_idempotency_expiry ON herald_idempotency(expires_at);

CREATE TABLE herald_events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  aggregate_id TEXT,
  tenant_id TEXT,
  time_ms INTEGER,                             -- NULL when the envelope time does not parse
  sequence INTEGER NOT NULL,
  envelope TEXT NOT NULL                       -- JSON
) STRICT;
CREATE UNIQUE INDEX herald_events_by_aggregate ON herald_events(aggregate_id, sequence) WHERE aggregate_id IS NOT NULL;
CREATE INDEX herald_events_by_type ON herald_events(type, position);
`;

/**
 * Scheduled publish (ADR 0041): messages published with a future `deliverAt` wait here, outside
 * the log, so no group cursor passes them and no key is held by them. A fetch moves the due ones
 * into `herald_messages` (new seq, in due order) in its write transaction; a cancel deletes the
 * row. Both are transactions on the one file, so exactly one of them gets a given row.
 */
const V2 = `
CREATE TABLE herald_scheduled (
  topic_id INTEGER NOT NULL,
  id TEXT NOT NULL,                            -- message id: scheduling an id again replaces it
  key TEXT,
  headers TEXT NOT NULL,                       -- JSON object
  body BLOB NOT NULL,
  deliver_at INTEGER NOT NULL,                 -- epoch ms: enters the log at this time
  scheduled_at INTEGER NOT NULL,
  PRIMARY KEY (topic_id, id)
) STRICT;
CREATE INDEX herald_scheduled_due ON herald_scheduled(topic_id, deliver_at);
`;

/**
 * Failure groups answered by the index (ADR 0973): each dead letter keeps its failure fingerprint,
 * written by the store at dead-letter time, and one covering index holds everything the console
 * groups and counts by, so grouping 100,000 entries reads the index, never the entries. Rows written
 * before this version have a NULL fingerprint; the store fills them in on first use.
 */
const V3 = `
ALTER TABLE herald_dead_letters ADD COLUMN fingerprint TEXT;
CREATE INDEX herald_dead_letters_by_failure
  ON herald_dead_letters(fingerprint, topic, grp, event_type, reason, dead_lettered_at);
`;

/**
 * Dead-letter pages by the filters the console sends (ADR 0975): each index ends in the listing
 * order, so a filtered page in either order (newest first is what the console shows) is a seek
 * and a walk of `limit` index entries, whatever the DLQ's size. Handler and reason have few values
 * and pair with a group; they walk the time index.
 */
const V4 = `
CREATE INDEX herald_dead_letters_by_group ON herald_dead_letters(grp, dead_lettered_at, id);
CREATE INDEX herald_dead_letters_by_topic ON herald_dead_letters(topic, dead_lettered_at, id);
CREATE INDEX herald_dead_letters_by_type ON herald_dead_letters(event_type, dead_lettered_at, id);
CREATE INDEX herald_dead_letters_by_fingerprint ON herald_dead_letters(fingerprint, dead_lettered_at, id);
`;

/** MIGRATIONS[i] upgrades a file at schema version i to version i + 1. Append only; never edit one. */
export const MIGRATIONS: readonly string[] = [V1, V2, V3, V4];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;
