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
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
