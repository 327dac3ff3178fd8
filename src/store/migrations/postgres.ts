/**
 * PostgreSQL schema, as versioned migrations. They run at start (PgStore.open) in one transaction under
 * an advisory lock, so two instances starting together migrate once; each applied version is recorded in
 * `schema_migrations`. A database migrated by a newer build (a version this build does not know) is
 * refused with a clear error instead of being written by code that does not understand it.
 *
 * Append only: never edit a released migration, add the next one.
 *
 * Times are milliseconds since the epoch (BIGINT), as in the SQLite store; the full request is kept as
 * JSONB next to the indexed fields. Every request belongs to a PBX (`pbx`, the config's `pbx.id`).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const TERMINAL = "('COMPLETED','CANCELLED','EXPIRED','FAILED')";

/** Migration 5's cc_opt_in (kept as it was released; migration 6 replaces one statement of it). */
const CC_OPT_IN_V5 = `CREATE FUNCTION cc_opt_in(p_id TEXT, p_pbx TEXT, p_agent TEXT, p_prospect TEXT, p_state TEXT, p_created BIGINT,
  p_updated BIGINT, p_wake BIGINT, p_data JSONB, p_max_pending BIGINT, p_max_total BIGINT, p_events JSONB, p_outbox JSONB)
RETURNS TABLE(created BOOLEAN, taken BOOLEAN, existing JSONB, n BIGINT, total BIGINT, ahead BIGINT, err_code TEXT, err_message TEXT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  my_created BIGINT;
  my_seq BIGINT;
BEGIN
  created := FALSE; taken := FALSE; existing := NULL; n := 0; total := NULL; ahead := 0; err_code := NULL; err_message := NULL;
  BEGIN
    IF p_max_total IS NOT NULL THEN
      PERFORM pg_advisory_xact_lock(hashtext('cc-optin-total:' || p_pbx));
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cc-optin:' || p_pbx || ':' || p_agent));
    -- The new request's id is a stored request's (create must make a fresh id): refused, nothing written.
    PERFORM 1 FROM requests r WHERE r.id = p_id;
    IF FOUND THEN
      taken := TRUE;
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT r.data INTO existing FROM requests r
      WHERE r.pbx = p_pbx AND r.agent = p_agent AND r.prospect = p_prospect AND r.state NOT IN ${TERMINAL};
    IF FOUND THEN
      RETURN NEXT;
      RETURN;
    END IF;
    SELECT COUNT(*) INTO n FROM requests r WHERE r.pbx = p_pbx AND r.agent = p_agent AND r.state NOT IN ${TERMINAL};
    IF p_max_total IS NOT NULL THEN
      SELECT COUNT(*) INTO total FROM requests r WHERE r.pbx = p_pbx AND r.state NOT IN ${TERMINAL};
    END IF;
    IF n >= p_max_pending OR (p_max_total IS NOT NULL AND total >= p_max_total) THEN
      RETURN NEXT;
      RETURN;
    END IF;
    INSERT INTO requests(id, pbx, agent, prospect, state, created_at, updated_at, wake_at, version, data)
      VALUES (p_id, p_pbx, p_agent, p_prospect, p_state, p_created, p_updated, p_wake, 1, p_data)
      ON CONFLICT (id) DO NOTHING
      RETURNING requests.created_at, requests.seq INTO my_created, my_seq;
    IF NOT FOUND THEN
      taken := TRUE;
      RETURN NEXT;
      RETURN;
    END IF;
    created := TRUE;
    INSERT INTO events(request_id, at, type, from_state, to_state, reason, data)
      SELECT p_id, (e->>0)::BIGINT, e->>1, e->>2, e->>3, e->>4, NULLIF(e->5, 'null'::JSONB)
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, i) ORDER BY i;
    INSERT INTO outbox(key, request_id, event, created_at, body, next_at)
      SELECT o->>0, p_id, o->>1, (o->>2)::BIGINT, o->>3, (o->>4)::BIGINT
      FROM jsonb_array_elements(p_outbox) WITH ORDINALITY AS x(o, i) ORDER BY i
      ON CONFLICT (key) DO NOTHING;
    SELECT COUNT(*) INTO ahead FROM requests q
      WHERE q.prospect = p_prospect AND q.state NOT IN ${TERMINAL} AND (q.created_at, q.seq) < (my_created, my_seq);
    RETURN NEXT;
  EXCEPTION WHEN OTHERS THEN
    IF SQLSTATE = 'CCF01' THEN
      RAISE;
    END IF;
    created := FALSE; taken := FALSE; existing := NULL; err_code := SQLSTATE; err_message := SQLERRM;
    RETURN NEXT;
  END;
END $$;
`;

/** The one-pending lookup of cc_opt_in, as migration 5 wrote it and as migration 6 writes it. */
const EXISTING_V5 = `    SELECT r.data INTO existing FROM requests r
      WHERE r.pbx = p_pbx AND r.agent = p_agent AND r.prospect = p_prospect AND r.state NOT IN ${TERMINAL};
    IF FOUND THEN
      RETURN NEXT;
      RETURN;
    END IF;`;
const EXISTING_V6 = `    -- \`prospect || ''\`: the planner may not take the number's queue index for this lookup (see migration 6).
    SELECT r.data INTO existing FROM requests r
      WHERE r.pbx = p_pbx AND r.agent = p_agent AND (r.prospect || '') = p_prospect AND r.state NOT IN ${TERMINAL};
    IF FOUND THEN
      RETURN NEXT;
      RETURN;
    END IF;`;
if (!CC_OPT_IN_V5.includes(EXISTING_V5)) throw new Error('migration 6: the statement to replace is not in cc_opt_in');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'requests, events, outbox',
    sql: `
CREATE TABLE requests (
  id          TEXT PRIMARY KEY,
  pbx         TEXT NOT NULL,
  agent       TEXT NOT NULL,
  prospect    TEXT NOT NULL,
  state       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  wake_at     BIGINT,
  version     INTEGER NOT NULL DEFAULT 1,
  seq         BIGSERIAL NOT NULL,
  data        JSONB NOT NULL
);
CREATE UNIQUE INDEX requests_one_pending ON requests(pbx, agent, prospect) WHERE state NOT IN ${TERMINAL};
CREATE INDEX requests_wake ON requests(pbx, wake_at) WHERE wake_at IS NOT NULL AND state NOT IN ${TERMINAL};
CREATE INDEX requests_agent_state ON requests(pbx, agent, state);
CREATE INDEX requests_prospect ON requests(prospect);
CREATE INDEX requests_created ON requests(created_at, id);
CREATE TABLE events (
  id          BIGSERIAL PRIMARY KEY,
  request_id  TEXT NOT NULL REFERENCES requests(id),
  at          BIGINT NOT NULL,
  type        TEXT NOT NULL,
  from_state  TEXT,
  to_state    TEXT,
  reason      TEXT,
  data        JSONB
);
CREATE INDEX events_request ON events(request_id, id);
CREATE TABLE outbox (
  id          BIGSERIAL PRIMARY KEY,
  key         TEXT NOT NULL UNIQUE,
  request_id  TEXT NOT NULL,
  event       TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  body        TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_at     BIGINT NOT NULL,
  sent_at     BIGINT,
  failed_at   BIGINT,
  last_error  TEXT
);
CREATE INDEX outbox_due ON outbox(next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
`,
  },
  {
    version: 2,
    name: 'leases with a fencing epoch; writes refused from a stale epoch',
    sql: `
-- One row per (PBX, app): who serves that PBX, until when (the database's clock), and the epoch, which
-- grows by one on every take-over. See src/coordination/lease.ts.
CREATE TABLE leases (
  pbx          TEXT NOT NULL,
  app          TEXT NOT NULL,
  holder       TEXT NOT NULL,
  epoch        BIGINT NOT NULL,
  acquired_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  renewed_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  expires_at   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (pbx, app)
);
-- The fence. A writer that serves a PBX under a lease declares it in its transaction
-- (SET LOCAL cc.app / cc.holder / cc.epoch); every insert or update of a request of that PBX is then
-- refused unless the lease row is still this holder's, at this epoch, and not expired. The lease row is
-- read FOR SHARE, so a take-over (an UPDATE of that row) waits for writes in flight and no write of the
-- old epoch can commit after the take-over did. Writers that declare no lease (the command line's
-- cancel, an operator's tool) are not fenced; the version guard still orders them.
CREATE FUNCTION cc_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  e TEXT := current_setting('cc.epoch', true);
  cur RECORD;
BEGIN
  IF e IS NULL OR e = '' THEN
    RETURN NEW;
  END IF;
  SELECT holder, epoch, expires_at > clock_timestamp() AS live INTO cur
    FROM leases WHERE pbx = NEW.pbx AND app = current_setting('cc.app', true) FOR SHARE;
  IF NOT FOUND OR cur.epoch <> e::BIGINT OR cur.holder <> current_setting('cc.holder', true) OR NOT cur.live THEN
    RAISE EXCEPTION 'stale lease epoch % for PBX % (current: epoch % held by %, live %)',
      e, NEW.pbx, cur.epoch, cur.holder, cur.live
      USING ERRCODE = 'CCF01';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER requests_fence BEFORE INSERT OR UPDATE ON requests FOR EACH ROW EXECUTE FUNCTION cc_fence();
`,
  },
  {
    version: 3,
    name: 'one recall per prospect number',
    sql: `
-- At most one recall (agent rung or prospect dialled) per prospect number at any time, whoever writes.
CREATE UNIQUE INDEX requests_one_recall_per_prospect ON requests(prospect) WHERE state IN ('RINGING_AGENT', 'CONNECTING');
`,
  },
  {
    version: 4,
    name: 'agents who paused their callbacks',
    sql: `
-- "Hold my callbacks": an agent of a PBX paused their callbacks (feature code or page), until resumed or until_at.
CREATE TABLE agent_pauses (
  pbx         TEXT NOT NULL,
  agent       TEXT NOT NULL,
  since       BIGINT NOT NULL,
  until_at    BIGINT,
  by_whom     TEXT NOT NULL,
  PRIMARY KEY (pbx, agent)
);
`,
  },
  {
    version: 5,
    name: "the prospect's queue of pending requests, in opt-in order; the opt-in as one function",
    sql: `
-- The opt-in's place in the queue (src/store/sql.ts aheadSql) counts the number's pending requests opted in
-- before this one: an index range of the pending requests only, in queue order (created_at, then insertion).
-- Without it the count read every request the number ever had from requests_prospect and the heap (measured:
-- 14.7 ms for a number with 15 000 requests, docs/performance-log.md).
CREATE INDEX requests_prospect_queue ON requests(prospect, created_at, seq) WHERE state NOT IN ${TERMINAL};
-- The opt-in of a new request as one function call (src/store/sql.ts createOrRefresh): its statements are planned
-- once per session (PL/pgSQL caches their plans) instead of on every opt-in (the simple protocol plans every
-- statement anew: 1-3 ms per opt-in, measured), and it is atomic: every error but a lost fence (CCF01, which fails
-- the whole group) is caught in its own block (a subtransaction), undone there and returned as err_code /
-- err_message, so several decisions' calls can share one message (src/store/postgres.ts, group batching) without
-- one failing call cutting off the others. The locks are the ones the earlier script took (same keys), and each
-- statement after them takes a new snapshot (a volatile function under READ COMMITTED), so it reads with them held.
${CC_OPT_IN_V5}`,
  },
  {
    version: 6,
    name: "cc_opt_in's lookup of the agent's pending request through requests_one_pending; the group's fence check as a function",
    sql: `
-- After five calls a session's PL/pgSQL keeps a generic plan of each statement. For the lookup of the agent's pending
-- request for this number the planner costs requests_one_pending (one entry) and requests_prospect_queue (every pending
-- request of the number, each fetched from the heap to filter on PBX and agent) the same, and took the second: 0.38-0.72
-- ms with 750 pending for the number, growing with its queue (docs/performance-log.md). Compared as \`prospect || ''\`,
-- the number cannot lead into the queue index, and the generic plan takes requests_one_pending on (pbx, agent): 0.03-0.05
-- ms, no planning per call.
${CC_OPT_IN_V5.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION').replace(EXISTING_V5, EXISTING_V6)}
-- The fence of a group's COMMIT (src/store/postgres.ts fenceCheckSql) as a function: it was an anonymous DO block,
-- compiled and planned on every COMMIT (measured 0.41-0.46 ms against 0.26 ms for this function, whose plan the
-- session keeps). The same check as the trigger's (migration 2): the lease row read FOR SHARE, so a take-over waits
-- for this COMMIT; CCF01 when the lease is no longer this holder's, at this epoch, and live.
CREATE FUNCTION cc_fence_check(p_pbx TEXT, p_app TEXT, p_holder TEXT, p_epoch BIGINT) RETURNS VOID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM 1 FROM leases WHERE pbx = p_pbx AND app = p_app AND holder = p_holder AND epoch = p_epoch
    AND expires_at > clock_timestamp() FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'stale lease epoch % for PBX % at the group commit', p_epoch, p_pbx USING ERRCODE = 'CCF01';
  END IF;
END $$;
`,
  },
  {
    version: 7,
    name: 'requests_prospect replaced by requests_prospect_done (COMPLETED requests only), as in the SQLite file',
    sql: `
-- requests_prospect indexed every request of a number, and the one statement that read through it (lastConversation:
-- the number's latest COMPLETED request) reads only COMPLETED ones; every other read by number is of pending requests
-- (requests_prospect_queue). A new request (the opt-in) is not COMPLETED, so it no longer writes an index entry here.
-- The same index as SQLite's schema version 2 (src/store/sqlite.ts); docs/performance-log.md.
CREATE INDEX requests_prospect_done ON requests(prospect, updated_at) WHERE state = 'COMPLETED';
DROP INDEX requests_prospect;
`,
  },
  {
    version: 8,
    name: 'requests_agent_state replaced by requests_agent_done (finished requests only), as in the SQLite file',
    sql: `
-- requests_agent_state indexed every request, and an update that changes an indexed column (every transition) adds
-- an entry to every index of the table. An agent's pending requests are read through requests_one_pending (pbx,
-- agent, prospect), its finished ones through this index, which a request enters once it finishes (the statements
-- name its condition: src/store/sql.ts list, idsInState). The same as SQLite's schema version 3 (src/store/sqlite.ts).
CREATE INDEX requests_agent_done ON requests(pbx, agent, state) WHERE state IN ${TERMINAL};
DROP INDEX requests_agent_state;
`,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
