/**
 * The tables and functions of a Herald schema in PostgreSQL, and their migrations. Everything lives
 * in one schema (the URL's `?namespace=`, default `herald`), so one database can hold several
 * isolated Herald installations. Migration `i` takes the schema from version `i` to `i + 1`; all of
 * them run in one transaction under a transaction-scoped advisory lock keyed by the schema name, so
 * processes starting at the same moment migrate it exactly once (the others wait, then find it
 * current). See ADR 0941.
 */
import type pg from 'pg';
import { ConfigError } from '../../core/errors.js';
import { PostgresSchemaVersionError } from './errors.js';

/** A PostgreSQL identifier, quoted. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Checks a schema name early: PostgreSQL identifiers are at most 63 bytes. */
export function validateSchemaName(name: string, field = 'schema'): string {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/.test(name))
    throw new ConfigError(
      field,
      `must be a PostgreSQL schema name (letters, digits, _ and -, not starting with a digit or -, at most 63), got ${JSON.stringify(name)}`,
    );
  return name;
}

/*
 * Times are epoch milliseconds in bigint columns, written by the clients: leases and redelivery
 * times are compared with the same clock that set them, and no time zone is involved.
 */
const V1 = (s: string): string => `
CREATE TABLE ${s}.topics (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  retained bigint NOT NULL DEFAULT 0            -- messages currently stored, for retention.maxMessages
);

CREATE TABLE ${s}.messages (
  seq bigserial PRIMARY KEY,                    -- commit order within a topic (publishers lock the topic row)
  topic_id int NOT NULL,
  id text NOT NULL,
  key text,
  headers text NOT NULL,                        -- JSON object of strings; anything else is delivered as undecodable
  body bytea NOT NULL,
  published_at bigint NOT NULL
);
CREATE INDEX messages_by_topic ON ${s}.messages (topic_id, seq);

CREATE TABLE ${s}.groups (
  id serial PRIMARY KEY,
  topic_id int NOT NULL,
  name text NOT NULL,
  cursor bigint NOT NULL,                       -- every message of the topic with seq <= cursor is acked or pending
  created_at bigint NOT NULL,
  UNIQUE (topic_id, name)
);

-- Messages a group has reached but not acknowledged: leased, waiting for redelivery, or blocked
-- behind an earlier message with the same key. An ack deletes the row. With per-key order, of the
-- rows of one (group, key) only the oldest is unblocked (the head); an ack of a head unblocks the
-- next one. Fetching then reads heads only, through a small partial index, however many messages
-- wait behind hot keys. Acks of keyed messages and the cursor advance both hold the group row, so
-- a message is never blocked behind a head that is being deleted at the same moment.
CREATE TABLE ${s}.pending (
  group_id int NOT NULL,
  seq bigint NOT NULL,
  key text,
  blocked boolean NOT NULL DEFAULT false,
  attempts int NOT NULL DEFAULT 0,
  visible_at bigint NOT NULL DEFAULT 0,         -- not delivered before this time (the retry queue)
  lease_token text,
  lease_until bigint NOT NULL DEFAULT 0,        -- the lease holds while now < lease_until
  PRIMARY KEY (group_id, seq)
);
CREATE INDEX pending_by_key ON ${s}.pending (group_id, key, seq) WHERE key IS NOT NULL;
CREATE INDEX pending_heads ON ${s}.pending (group_id, seq) WHERE NOT blocked;

-- Leases up to p_limit messages of a group: first visible heads, taken with SKIP LOCKED so members
-- never wait for each other; then new messages past the group cursor, which one member at a time
-- advances (holding the group row, waited for at most 100 ms). When nothing was leased, one row
-- with seq NULL tells when the next delayed message becomes visible and whether another member
-- held the group row.
CREATE FUNCTION ${s}.fetch(p_group int, p_topic int, p_limit int, p_by_key boolean, p_token text,
                           p_now bigint, p_lease_until bigint)
RETURNS TABLE (seq bigint, attempt int, id text, key text, headers text, body bytea,
               next_visible bigint, contended boolean)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_n int := 0;
  v_cursor bigint;
  v_moved bigint;
  v_locked boolean := false;
  r record;
BEGIN
  -- A lease lost in a server crash only means an earlier redelivery: no need to wait for the WAL flush.
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
  WITH ready AS (
    SELECT p.seq FROM ${s}.pending p
     WHERE p.group_id = p_group AND NOT p.blocked AND p.visible_at <= p_now AND p.lease_until <= p_now
     ORDER BY p.seq LIMIT p_limit
     FOR UPDATE SKIP LOCKED
  ), leased AS (
    UPDATE ${s}.pending p SET attempts = p.attempts + 1, lease_token = p_token, lease_until = p_lease_until
      FROM ready WHERE p.group_id = p_group AND p.seq = ready.seq
    RETURNING p.seq, p.attempts
  )
  SELECT l.seq, l.attempts, m.id, m.key, m.headers, m.body, NULL::bigint, false
    FROM leased l JOIN ${s}.messages m ON m.seq = l.seq
   ORDER BY l.seq;
  GET DIAGNOSTICS v_n = ROW_COUNT;

  IF v_n < p_limit AND EXISTS (
       SELECT 1 FROM ${s}.messages m WHERE m.topic_id = p_topic
          AND m.seq > (SELECT g.cursor FROM ${s}.groups g WHERE g.id = p_group)) THEN
    BEGIN
      PERFORM set_config('lock_timeout', '100ms', true);
      SELECT g.cursor INTO v_cursor FROM ${s}.groups g WHERE g.id = p_group FOR NO KEY UPDATE;
      v_locked := FOUND;
      PERFORM set_config('lock_timeout', '0', true);
    EXCEPTION WHEN lock_not_available THEN
      v_locked := false;
    END;
    IF NOT v_locked THEN
      IF v_n = 0 THEN
        RETURN QUERY SELECT NULL::bigint, 0, NULL::text, NULL::text, NULL::text, NULL::bytea, NULL::bigint, true;
      END IF;
      RETURN;
    END IF;
    v_moved := v_cursor;
    FOR r IN SELECT m.seq, m.id, m.key, m.headers, m.body FROM ${s}.messages m
              WHERE m.topic_id = p_topic AND m.seq > v_cursor ORDER BY m.seq LIMIT 512 LOOP
      IF p_by_key AND r.key IS NOT NULL AND EXISTS (
           SELECT 1 FROM ${s}.pending q WHERE q.group_id = p_group AND q.key = r.key) THEN
        INSERT INTO ${s}.pending (group_id, seq, key, blocked) VALUES (p_group, r.seq, r.key, true);
      ELSE
        EXIT WHEN v_n >= p_limit;
        INSERT INTO ${s}.pending (group_id, seq, key, attempts, lease_token, lease_until)
        VALUES (p_group, r.seq, r.key, 1, p_token, p_lease_until);
        seq := r.seq; attempt := 1; id := r.id; key := r.key; headers := r.headers; body := r.body;
        next_visible := NULL; contended := false;
        RETURN NEXT;
        v_n := v_n + 1;
      END IF;
      v_moved := r.seq;
    END LOOP;
    IF v_moved <> v_cursor THEN
      UPDATE ${s}.groups SET cursor = v_moved WHERE groups.id = p_group;
    END IF;
  END IF;

  IF v_n = 0 THEN
    RETURN QUERY SELECT NULL::bigint, 0, NULL::text, NULL::text, NULL::text, NULL::bytea,
      (SELECT min(p.visible_at) FROM ${s}.pending p WHERE p.group_id = p_group AND p.visible_at > p_now), false;
  END IF;
END
$fn$;

-- Appends messages to a topic in one transaction. Locking the topic row first makes sequence
-- numbers follow commit order within the topic, so a group cursor never passes a message that
-- commits later with a smaller number.
CREATE FUNCTION ${s}.publish(p_topic text, p_ids text[], p_keys text[], p_headers text[], p_bodies bytea[],
                             p_now bigint, p_channel text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_topic int;
BEGIN
  UPDATE ${s}.topics SET retained = retained + cardinality(p_ids) WHERE name = p_topic RETURNING topics.id INTO v_topic;
  IF NOT FOUND THEN
    INSERT INTO ${s}.topics (name) VALUES (p_topic) ON CONFLICT (name) DO NOTHING;
    UPDATE ${s}.topics SET retained = retained + cardinality(p_ids) WHERE name = p_topic RETURNING topics.id INTO v_topic;
  END IF;
  INSERT INTO ${s}.messages (topic_id, id, key, headers, body, published_at)
  SELECT v_topic, i, k, h, b, p_now FROM unnest(p_ids, p_keys, p_headers, p_bodies) AS x(i, k, h, b);
  PERFORM pg_notify(p_channel, p_topic);
END
$fn$;

-- Applies a batch of settlements: how 'a' ack (delete), 'n' nack (unlease, visible at p_visible),
-- 'r' release (unlease, the attempt not counted). Only rows still leased to the given token change.
-- An acked head unblocks the next message of its key; the group rows are held meanwhile (in id
-- order), so no cursor advance can block a new message behind the head being deleted.
CREATE FUNCTION ${s}.settle(p_groups int[], p_seqs bigint[], p_tokens text[], p_hows text[],
                            p_visible bigint[], p_channel text, p_topics text[])
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  v_acked int;
  v_unleased int;
  v_groups int[];
  v_keys text[];
  t text;
BEGIN
  -- An ack lost in a server crash means a redelivery (at-least-once), never a lost message.
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM 1 FROM ${s}.groups g
   WHERE g.id IN (SELECT DISTINCT x.g FROM unnest(p_groups, p_hows) AS x(g, h) WHERE x.h = 'a')
   ORDER BY g.id FOR NO KEY UPDATE;
  WITH acked AS (
    DELETE FROM ${s}.pending p USING unnest(p_groups, p_seqs, p_tokens, p_hows) AS x(g, s, t, h)
     WHERE x.h = 'a' AND p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t
    RETURNING p.group_id, p.key
  )
  SELECT count(*), array_agg(a.group_id) FILTER (WHERE a.key IS NOT NULL),
         array_agg(a.key) FILTER (WHERE a.key IS NOT NULL)
    INTO v_acked, v_groups, v_keys FROM acked a;
  IF v_keys IS NOT NULL THEN
    UPDATE ${s}.pending p SET blocked = false
      FROM (SELECT DISTINCT u.g, u.k FROM unnest(v_groups, v_keys) AS u(g, k)) u
     WHERE p.group_id = u.g AND p.blocked
       AND p.seq = (SELECT min(q.seq) FROM ${s}.pending q WHERE q.group_id = u.g AND q.key = u.k);
  END IF;
  UPDATE ${s}.pending p SET lease_token = NULL, lease_until = 0, visible_at = x.v,
         attempts = p.attempts - CASE WHEN x.h = 'r' THEN 1 ELSE 0 END
    FROM unnest(p_groups, p_seqs, p_tokens, p_hows, p_visible) AS x(g, s, t, h, v)
   WHERE x.h <> 'a' AND p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t;
  GET DIAGNOSTICS v_unleased = ROW_COUNT;
  FOREACH t IN ARRAY p_topics LOOP
    PERFORM pg_notify(p_channel, t);
  END LOOP;
  RETURN v_acked + v_unleased;
END
$fn$;

CREATE TABLE ${s}.dead_letters (
  id text PRIMARY KEY,
  reason text NOT NULL,
  topic text NOT NULL,
  grp text NOT NULL,
  handler text NOT NULL,
  event_type text,
  aggregate_id text,
  error text NOT NULL,                          -- error name and message, searchable by words
  dead_lettered_at bigint NOT NULL,
  entry jsonb NOT NULL,                         -- the entry without the message body
  body bytea NOT NULL
);
CREATE INDEX dead_letters_order ON ${s}.dead_letters (dead_lettered_at, id);
CREATE INDEX dead_letters_by_group ON ${s}.dead_letters (grp, dead_lettered_at, id);
CREATE INDEX dead_letters_by_type ON ${s}.dead_letters (event_type, dead_lettered_at, id);
CREATE INDEX dead_letters_by_aggregate ON ${s}.dead_letters (aggregate_id, dead_lettered_at, id);
CREATE INDEX dead_letters_by_topic ON ${s}.dead_letters (topic, dead_lettered_at, id);
CREATE INDEX dead_letters_error_words ON ${s}.dead_letters USING gin (to_tsvector('simple', error));

CREATE TABLE ${s}.idempotency (
  key text PRIMARY KEY,
  state text NOT NULL,                          -- 'reserved' | 'done'
  expires_at bigint NOT NULL
);
CREATE INDEX idempotency_expiry ON ${s}.idempotency (expires_at);

CREATE TABLE ${s}.events (
  position bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  type text NOT NULL,
  aggregate_id text,
  tenant_id text,
  time_ms bigint,                               -- NULL when the envelope time does not parse
  sequence int NOT NULL,
  envelope jsonb NOT NULL
);
CREATE UNIQUE INDEX events_by_aggregate ON ${s}.events (aggregate_id, sequence) WHERE aggregate_id IS NOT NULL;
CREATE INDEX events_by_type ON ${s}.events (type, position);
CREATE INDEX events_by_time ON ${s}.events (time_ms, position);

-- The transactional outbox: rows written inside the application's transactions, forwarded by the
-- relay in position order and marked sent.
CREATE TABLE ${s}.outbox (
  position bigserial PRIMARY KEY,
  id text NOT NULL,
  topic text NOT NULL CHECK (topic <> ''),
  key text,
  headers text NOT NULL,
  body bytea NOT NULL,
  created_at bigint NOT NULL,
  sent_at bigint
);
CREATE INDEX outbox_unsent ON ${s}.outbox (position) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON ${s}.outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Writes outbox rows inside the caller's transaction. The transaction-scoped advisory lock per key
-- (taken in key order) makes two transactions writing events of one aggregate commit their rows in
-- position order, so the relay, reading by position, keeps each aggregate's order. The NOTIFY is
-- delivered at commit (and never on rollback) and wakes the relay.
CREATE FUNCTION ${s}.outbox_write(p_topics text[], p_ids text[], p_keys text[], p_headers text[], p_bodies bytea[],
                                  p_now bigint, p_channel text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(k, 7))
     FROM (SELECT DISTINCT k FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY k) AS ks;
  INSERT INTO ${s}.outbox (id, topic, key, headers, body, created_at)
  SELECT i, t, k, h, b, p_now FROM unnest(p_topics, p_ids, p_keys, p_headers, p_bodies) AS x(t, i, k, h, b);
  PERFORM pg_notify(p_channel, '');
END
$fn$;
`;

/*
 * Version 2: saga state (PostgresSagaStore, ADR 0803). The record is one JSON text column (text,
 * not jsonb: jsonb refuses a \u0000 that a saga's input may hold, and the store never queries
 * inside it); the columns beside it are what the store filters and sorts on.
 */
const V2 = (s: string): string => `
CREATE TABLE ${s}.sagas (
  id text PRIMARY KEY,
  type text NOT NULL,
  status text NOT NULL,
  version int NOT NULL,
  wake_at bigint,                               -- NULL: only a reply or an operator moves the saga
  lease_owner text,
  lease_until bigint NOT NULL DEFAULT 0,        -- the lease holds while now < lease_until
  created_at bigint NOT NULL,
  state text NOT NULL
);
CREATE INDEX sagas_due ON ${s}.sagas (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX sagas_created ON ${s}.sagas (created_at DESC, id DESC);
CREATE INDEX sagas_by_type ON ${s}.sagas (type, created_at DESC, id DESC);
`;

/*
 * Version 3: scheduled publish (ADR 0041): messages published with a future `deliverAt` wait in `scheduled`,
 * outside the log, so no group cursor passes them and no key is held by them. Every fetch first
 * moves its topic's due ones into the log (under the topic row lock, like a publish, so sequence
 * numbers keep following commit order); a cancel deletes the row. The DELETE of one or the other
 * wins the row, never both.
 */
const V3 = (s: string): string => `
CREATE TABLE ${s}.scheduled (
  topic_id int NOT NULL,
  id text NOT NULL,                             -- message id: scheduling an id again replaces it
  key text,
  headers text NOT NULL,
  body bytea NOT NULL,
  deliver_at bigint NOT NULL,                   -- epoch ms: enters the log at this time
  scheduled_at bigint NOT NULL,
  ord bigserial,                                -- scheduling order, among equal deliver_at
  PRIMARY KEY (topic_id, id)
);
CREATE INDEX scheduled_due ON ${s}.scheduled (topic_id, deliver_at);

CREATE FUNCTION ${s}.schedule(p_topic text, p_ids text[], p_keys text[], p_headers text[], p_bodies bytea[],
                              p_deliver_at bigint, p_now bigint, p_channel text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_topic int;
BEGIN
  SELECT t.id INTO v_topic FROM ${s}.topics t WHERE t.name = p_topic;
  IF NOT FOUND THEN
    INSERT INTO ${s}.topics (name) VALUES (p_topic) ON CONFLICT (name) DO NOTHING;
    SELECT t.id INTO v_topic FROM ${s}.topics t WHERE t.name = p_topic;
  END IF;
  -- Of ids repeated within the call the last wins, as a later call would replace an earlier one.
  INSERT INTO ${s}.scheduled AS d (topic_id, id, key, headers, body, deliver_at, scheduled_at)
  SELECT DISTINCT ON (x.i) v_topic, x.i, x.k, x.h, x.b, p_deliver_at, p_now
    FROM unnest(p_ids, p_keys, p_headers, p_bodies) WITH ORDINALITY AS x(i, k, h, b, n)
   ORDER BY x.i, x.n DESC
  ON CONFLICT (topic_id, id) DO UPDATE SET key = EXCLUDED.key, headers = EXCLUDED.headers,
     body = EXCLUDED.body, deliver_at = EXCLUDED.deliver_at, scheduled_at = EXCLUDED.scheduled_at,
     ord = EXCLUDED.ord;
  -- Wakes the members, which learn the new due time from their next fetch.
  PERFORM pg_notify(p_channel, p_topic);
END
$fn$;

-- Moves the topic's due scheduled messages into its log, earliest first; returns how many.
CREATE FUNCTION ${s}.move_due(p_topic int, p_now bigint)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  v_n int;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ${s}.scheduled d WHERE d.topic_id = p_topic AND d.deliver_at <= p_now) THEN
    RETURN 0;
  END IF;
  PERFORM 1 FROM ${s}.topics t WHERE t.id = p_topic FOR NO KEY UPDATE;
  WITH due AS (
    DELETE FROM ${s}.scheduled d WHERE d.topic_id = p_topic AND d.deliver_at <= p_now
    RETURNING d.topic_id, d.id, d.key, d.headers, d.body, d.deliver_at, d.ord
  )
  INSERT INTO ${s}.messages (topic_id, id, key, headers, body, published_at)
  SELECT due.topic_id, due.id, due.key, due.headers, due.body, p_now FROM due ORDER BY due.deliver_at, due.ord;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  UPDATE ${s}.topics SET retained = retained + v_n WHERE id = p_topic;
  RETURN v_n;
END
$fn$;

ALTER FUNCTION ${s}.fetch(int, int, int, boolean, text, bigint, bigint) RENAME TO fetch_log;

-- The fetch of version 1 (now fetch_log), after moving the due scheduled messages into the log;
-- the "nothing leased" row also tells when the topic's next scheduled message comes due.
CREATE FUNCTION ${s}.fetch(p_group int, p_topic int, p_limit int, p_by_key boolean, p_token text,
                           p_now bigint, p_lease_until bigint)
RETURNS TABLE (seq bigint, attempt int, id text, key text, headers text, body bytea,
               next_visible bigint, contended boolean)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_moved int;
BEGIN
  v_moved := ${s}.move_due(p_topic, p_now);
  RETURN QUERY
  SELECT f.seq, f.attempt, f.id, f.key, f.headers, f.body,
         CASE WHEN f.seq IS NULL AND NOT f.contended THEN least(f.next_visible,
           (SELECT min(d.deliver_at) FROM ${s}.scheduled d WHERE d.topic_id = p_topic AND d.deliver_at > p_now))
         ELSE f.next_visible END,
         f.contended
    FROM ${s}.fetch_log(p_group, p_topic, p_limit, p_by_key, p_token, p_now, p_lease_until) f;
  -- fetch_log commits asynchronously (a lost lease only means an earlier redelivery); a move lost
  -- in a server crash after its delivery would let a cancel succeed too, so it commits durably.
  IF v_moved > 0 THEN
    PERFORM set_config('synchronous_commit', 'on', true);
  END IF;
END
$fn$;
`;

/*
 * Version 4: dead letters keep their failure fingerprint (ADR 0975), written by the store, so a
 * failure group's page is an index seek in either order. Rows from before have NULL until the
 * store's first query by fingerprint fills them in (SQL cannot compute the normalised message).
 */
const V4 = (s: string): string => `
ALTER TABLE ${s}.dead_letters ADD COLUMN fingerprint text;
CREATE INDEX dead_letters_by_fingerprint ON ${s}.dead_letters (fingerprint, dead_lettered_at, id);
`;

/*
 * Version 5: plans that do not depend on statistics (ADR 0948). fetch_log joins each leased head
 * to its message by a lateral lookup and runs without bitmap scans: with stale statistics (a new
 * schema, a backlog grown since the last analyze) every fetch read the topic's whole log. settle
 * finds each acked key's next row through the key index: it scanned every blocked row of the
 * schema. An idle member's next due time comes from a partial index of retried rows instead of a
 * scan of its group's pending rows. Otherwise both functions are unchanged.
 */
const V5 = (s: string): string => `
-- Rows waiting for a retry: the next due time of an idle member's fetch without a scan of every
-- pending row of its group (under a backlog with per-key order, most of them blocked).
CREATE INDEX pending_delayed ON ${s}.pending (group_id, visible_at) WHERE visible_at > 0;

CREATE OR REPLACE FUNCTION ${s}.fetch_log(p_group int, p_topic int, p_limit int, p_by_key boolean, p_token text,
                           p_now bigint, p_lease_until bigint)
RETURNS TABLE (seq bigint, attempt int, id text, key text, headers text, body bytea,
               next_visible bigint, contended boolean)
-- Every query here is an index lookup or an index range stopped by a LIMIT. With statistics that
-- do not know (a new schema, a log or a backlog grown since the last analyze) the planner read the
-- whole log through a bitmap scan to sort it, or all pending rows to update the few leased.
LANGUAGE plpgsql SET enable_bitmapscan = off SET enable_seqscan = off AS $fn$
#variable_conflict use_column
DECLARE
  v_n int := 0;
  v_cursor bigint;
  v_moved bigint;
  v_locked boolean := false;
  r record;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
  WITH ready AS (
    SELECT p.seq FROM ${s}.pending p
     WHERE p.group_id = p_group AND NOT p.blocked AND p.visible_at <= p_now AND p.lease_until <= p_now
     ORDER BY p.seq LIMIT p_limit
     FOR UPDATE SKIP LOCKED
  ), leased AS (
    UPDATE ${s}.pending p SET attempts = p.attempts + 1, lease_token = p_token, lease_until = p_lease_until
      FROM ready WHERE p.group_id = p_group AND p.seq = ready.seq
    RETURNING p.seq, p.attempts
  )
  SELECT l.seq, l.attempts, m.id, m.key, m.headers, m.body, NULL::bigint, false
    FROM leased l
    -- LIMIT keeps the planner from pulling the lookup up into a join it may plan as a log scan.
    CROSS JOIN LATERAL (SELECT x.id, x.key, x.headers, x.body FROM ${s}.messages x WHERE x.seq = l.seq LIMIT 1) m
   ORDER BY l.seq;
  GET DIAGNOSTICS v_n = ROW_COUNT;

  IF v_n < p_limit AND EXISTS (
       SELECT 1 FROM ${s}.messages m WHERE m.topic_id = p_topic
          AND m.seq > (SELECT g.cursor FROM ${s}.groups g WHERE g.id = p_group)) THEN
    BEGIN
      PERFORM set_config('lock_timeout', '100ms', true);
      SELECT g.cursor INTO v_cursor FROM ${s}.groups g WHERE g.id = p_group FOR NO KEY UPDATE;
      v_locked := FOUND;
      PERFORM set_config('lock_timeout', '0', true);
    EXCEPTION WHEN lock_not_available THEN
      v_locked := false;
    END;
    IF NOT v_locked THEN
      IF v_n = 0 THEN
        RETURN QUERY SELECT NULL::bigint, 0, NULL::text, NULL::text, NULL::text, NULL::bytea, NULL::bigint, true;
      END IF;
      RETURN;
    END IF;
    v_moved := v_cursor;
    FOR r IN SELECT m.seq, m.id, m.key, m.headers, m.body FROM ${s}.messages m
              WHERE m.topic_id = p_topic AND m.seq > v_cursor ORDER BY m.seq LIMIT 512 LOOP
      IF p_by_key AND r.key IS NOT NULL AND EXISTS (
           SELECT 1 FROM ${s}.pending q WHERE q.group_id = p_group AND q.key = r.key) THEN
        INSERT INTO ${s}.pending (group_id, seq, key, blocked) VALUES (p_group, r.seq, r.key, true);
      ELSE
        EXIT WHEN v_n >= p_limit;
        INSERT INTO ${s}.pending (group_id, seq, key, attempts, lease_token, lease_until)
        VALUES (p_group, r.seq, r.key, 1, p_token, p_lease_until);
        seq := r.seq; attempt := 1; id := r.id; key := r.key; headers := r.headers; body := r.body;
        next_visible := NULL; contended := false;
        RETURN NEXT;
        v_n := v_n + 1;
      END IF;
      v_moved := r.seq;
    END LOOP;
    IF v_moved <> v_cursor THEN
      UPDATE ${s}.groups SET cursor = v_moved WHERE groups.id = p_group;
    END IF;
  END IF;

  IF v_n = 0 THEN
    -- "visible_at > 0" matches pending_delayed: only retried rows ever have a visible_at.
    RETURN QUERY SELECT NULL::bigint, 0, NULL::text, NULL::text, NULL::text, NULL::bytea,
      (SELECT min(p.visible_at) FROM ${s}.pending p
        WHERE p.group_id = p_group AND p.visible_at > 0 AND p.visible_at > p_now), false;
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.settle(p_groups int[], p_seqs bigint[], p_tokens text[], p_hows text[],
                            p_visible bigint[], p_channel text, p_topics text[])
RETURNS int LANGUAGE plpgsql SET enable_seqscan = off AS $fn$
DECLARE
  v_acked int;
  v_unleased int;
  v_groups int[];
  v_keys text[];
  t text;
  v_next_groups int[];
  v_next_seqs bigint[];
BEGIN
  -- An ack lost in a server crash means a redelivery (at-least-once), never a lost message.
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM 1 FROM ${s}.groups g
   WHERE g.id IN (SELECT DISTINCT x.g FROM unnest(p_groups, p_hows) AS x(g, h) WHERE x.h = 'a')
   ORDER BY g.id FOR NO KEY UPDATE;
  WITH acked AS (
    DELETE FROM ${s}.pending p USING unnest(p_groups, p_seqs, p_tokens, p_hows) AS x(g, s, t, h)
     WHERE x.h = 'a' AND p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t
    RETURNING p.group_id, p.key
  )
  SELECT count(*), array_agg(a.group_id) FILTER (WHERE a.key IS NOT NULL),
         array_agg(a.key) FILTER (WHERE a.key IS NOT NULL)
    INTO v_acked, v_groups, v_keys FROM acked a;
  IF v_keys IS NOT NULL THEN
    -- Each key's next row first (a subquery per key on the key index), then those rows by primary
    -- key. As one statement joining the keys to the blocked rows, it was planned as a scan of them.
    SELECT array_agg(n.g), array_agg(n.s) INTO v_next_groups, v_next_seqs
      FROM (SELECT u.g, (SELECT q.seq FROM ${s}.pending q WHERE q.group_id = u.g AND q.key = u.k
                          ORDER BY q.seq LIMIT 1) AS s
              FROM (SELECT DISTINCT x.g, x.k FROM unnest(v_groups, v_keys) AS x(g, k)) u) n
     WHERE n.s IS NOT NULL;
    UPDATE ${s}.pending p SET blocked = false
      FROM unnest(v_next_groups, v_next_seqs) AS n(g, s)
     WHERE p.group_id = n.g AND p.seq = n.s AND p.blocked;
  END IF;
  UPDATE ${s}.pending p SET lease_token = NULL, lease_until = 0, visible_at = x.v,
         attempts = p.attempts - CASE WHEN x.h = 'r' THEN 1 ELSE 0 END
    FROM unnest(p_groups, p_seqs, p_tokens, p_hows, p_visible) AS x(g, s, t, h, v)
   WHERE x.h <> 'a' AND p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t;
  GET DIAGNOSTICS v_unleased = ROW_COUNT;
  FOREACH t IN ARRAY p_topics LOOP
    PERFORM pg_notify(p_channel, t);
  END LOOP;
  RETURN v_acked + v_unleased;
END
$fn$;
`;

/** MIGRATIONS[i] upgrades a schema at version i to version i + 1. Append only; never edit one. */
export const MIGRATIONS: readonly ((schema: string) => string)[] = [V1, V2, V3, V4, V5];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The NOTIFY channel of a schema: publishes and settlements wake the members listening on it. */
export function channelOf(schema: string): string {
  return `herald_${schema}`;
}

/**
 * Creates or upgrades the schema, once, whichever process gets there first. With `mustExist`
 * nothing is created: a missing schema is a ConfigError (read-only tools never create one).
 */
export async function migrate(client: pg.ClientBase, schema: string, mustExist = false): Promise<number> {
  const s = ident(schema);
  if (mustExist) {
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0)
      throw new ConfigError(
        'transport',
        `no Herald schema "${schema}" in this database (start a service on it first, or set ?namespace=)`,
      );
  }
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`herald.migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (version int NOT NULL)`);
    const row = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_version`);
    let version = row.rows[0]?.version ?? 0;
    if (row.rowCount === 0) await client.query(`INSERT INTO ${s}.schema_version VALUES (0)`);
    if (version > SCHEMA_VERSION) throw new PostgresSchemaVersionError(schema, version, SCHEMA_VERSION);
    for (; version < SCHEMA_VERSION; version++) await client.query(MIGRATIONS[version]!(s));
    await client.query(`UPDATE ${s}.schema_version SET version = $1`, [version]);
    await client.query('COMMIT');
    return version;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
