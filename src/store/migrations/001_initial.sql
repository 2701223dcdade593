-- 001: the whole first schema. Ids are UUIDv7 strings made by the application (time-ordered,
-- not enumerable). Every status is CHECK-constrained; every timestamp is timestamptz.

CREATE TABLE businesses (
  id                        uuid PRIMARY KEY,
  name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  max_concurrent_calls      integer NOT NULL DEFAULT 3 CHECK (max_concurrent_calls BETWEEN 1 AND 100),
  caller_id                 text CHECK (caller_id ~ '^\+[1-9][0-9]{6,14}$'),
  timezone                  text NOT NULL DEFAULT 'Asia/Jerusalem' CHECK (length(timezone) BETWEEN 1 AND 64),
  default_region            text NOT NULL DEFAULT 'IL' CHECK (default_region ~ '^[A-Z]{2}$'),
  -- Telephony: the TwiML URL the provider fetches when a lead answers, ring and call limits.
  call_handler_url          text CHECK (call_handler_url ~ '^https?://'),
  ring_timeout_seconds      integer NOT NULL DEFAULT 30 CHECK (ring_timeout_seconds BETWEEN 5 AND 600),
  call_time_limit_seconds   integer NOT NULL DEFAULT 600 CHECK (call_time_limit_seconds BETWEEN 1 AND 14400),
  machine_detection         boolean NOT NULL DEFAULT false,
  -- Where this business's provider credentials live ("env:PREFIX" reads PREFIX_ACCOUNT_SID,
  -- PREFIX_AUTH_TOKEN or PREFIX_API_KEY/PREFIX_API_SECRET); NULL = the global TWILIO_* ones.
  -- Secrets themselves are never stored in the database.
  provider_credentials_ref  text CHECK (provider_credentials_ref ~ '^env:[A-Z][A-Z0-9_]*$'),
  created_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id           uuid PRIMARY KEY,
  business_id  uuid NOT NULL REFERENCES businesses (id),
  email        text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
  name         text CHECK (length(name) <= 200),
  role         text NOT NULL CHECK (role IN ('owner', 'admin', 'agent', 'viewer')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (business_id, email),
  UNIQUE (id, business_id)
);

CREATE TABLE api_tokens (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL,
  business_id   uuid NOT NULL,
  token_sha256  text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
  prefix        text NOT NULL,
  name          text CHECK (length(name) <= 200),
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz,
  revoked_at    timestamptz,
  -- A token's business is its user's business, by construction.
  FOREIGN KEY (user_id, business_id) REFERENCES users (id, business_id)
);

CREATE TABLE leads (
  id           uuid PRIMARY KEY,
  business_id  uuid NOT NULL REFERENCES businesses (id),
  phone_e164   text NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
  name         text CHECK (length(name) <= 200),
  external_id  text CHECK (length(external_id) BETWEEN 1 AND 200),
  attributes   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (business_id, external_id),
  UNIQUE (id, business_id)
);
CREATE INDEX leads_business_idx ON leads (business_id, id);

CREATE TABLE runs (
  id                   uuid PRIMARY KEY,
  business_id          uuid NOT NULL REFERENCES businesses (id),
  created_by_user_id   uuid,
  name                 text CHECK (length(name) <= 200),
  status               text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'completed', 'cancelled', 'stopped', 'failed')),
  concurrency          integer NOT NULL DEFAULT 3 CHECK (concurrency BETWEEN 1 AND 100),
  -- Per-status counters, kept by the statement-level triggers on jobs below, so they agree with
  -- the job rows by construction (and in the same transaction as each job's transition).
  total_jobs           integer NOT NULL DEFAULT 0,
  queued_count         integer NOT NULL DEFAULT 0,
  dialing_count        integer NOT NULL DEFAULT 0,
  ringing_count        integer NOT NULL DEFAULT 0,
  in_call_count        integer NOT NULL DEFAULT 0,
  completed_count      integer NOT NULL DEFAULT 0,
  no_answer_count      integer NOT NULL DEFAULT 0,
  busy_count           integer NOT NULL DEFAULT 0,
  failed_count         integer NOT NULL DEFAULT 0,
  cancelled_count      integer NOT NULL DEFAULT 0,
  unknown_count        integer NOT NULL DEFAULT 0,
  -- Number of jobs in a terminal state: progress display and resume point.
  cursor_position      integer GENERATED ALWAYS AS (
                         completed_count + no_answer_count + busy_count + failed_count
                         + cancelled_count + unknown_count) STORED,
  cancel_requested     boolean NOT NULL DEFAULT false,
  cancel_requested_at  timestamptz,
  cancel_requested_by  text,
  stop_requested       boolean NOT NULL DEFAULT false,
  stop_requested_at    timestamptz,
  stop_requested_by    text,
  -- The lease: who drives the run, fenced by lock_token, alive while lock_ts is fresh.
  locked_by_worker     text,
  lock_token           uuid,
  lock_ts              timestamptz,
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  ended_at             timestamptz,
  last_error           text,
  UNIQUE (id, business_id),
  FOREIGN KEY (created_by_user_id, business_id) REFERENCES users (id, business_id),
  CHECK (total_jobs = queued_count + dialing_count + ringing_count + in_call_count + completed_count
                      + no_answer_count + busy_count + failed_count + cancelled_count + unknown_count),
  CHECK (least(queued_count, dialing_count, ringing_count, in_call_count, completed_count,
               no_answer_count, busy_count, failed_count, cancelled_count, unknown_count) >= 0),
  CHECK ((status IN ('completed', 'cancelled', 'stopped', 'failed')) = (ended_at IS NOT NULL)),
  CHECK (status <> 'completed' OR cursor_position = total_jobs),
  CHECK ((lock_token IS NULL) = (lock_ts IS NULL))
);
CREATE INDEX runs_business_idx ON runs (business_id, id DESC);
-- The lease scan: only active runs, oldest first.
CREATE INDEX runs_active_idx ON runs (lock_ts NULLS FIRST, created_at) WHERE status IN ('pending', 'running');

CREATE TABLE jobs (
  id                uuid PRIMARY KEY,
  run_id            uuid NOT NULL,
  business_id       uuid NOT NULL,
  lead_id           uuid NOT NULL,
  -- Dial order within the run: the order the leads were given.
  position          integer NOT NULL CHECK (position >= 0),
  -- The phone at the time the run was created: a running campaign dials what it was started with.
  phone_e164        text NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
  status            text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'dialing', 'ringing', 'in_call', 'completed',
                                      'no_answer', 'busy', 'failed', 'cancelled', 'unknown')),
  attempt_id        uuid UNIQUE,
  provider_call_id  text,
  outcome           text,
  answered_by       text,
  error             text,
  dial_started_at   timestamptz,
  answered_at       timestamptz,
  ended_at          timestamptz,
  duration_seconds  integer CHECK (duration_seconds >= 0),
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, lead_id),
  UNIQUE (run_id, position),
  -- A job's business is its run's business and its lead's business, by construction.
  FOREIGN KEY (run_id, business_id) REFERENCES runs (id, business_id),
  FOREIGN KEY (lead_id, business_id) REFERENCES leads (id, business_id),
  -- Anything past `queued` has an attempt; a terminal call has an end time.
  CHECK (status IN ('queued', 'cancelled') OR attempt_id IS NOT NULL),
  CHECK (status NOT IN ('completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown') OR ended_at IS NOT NULL)
);
-- Dispatch: the next queued job of a run, in order.
CREATE INDEX jobs_queued_idx ON jobs (run_id, position) WHERE status = 'queued';
-- Reconciliation and stop: the live jobs of a run.
CREATE INDEX jobs_live_idx ON jobs (run_id) WHERE status IN ('dialing', 'ringing', 'in_call');
CREATE INDEX jobs_run_status_idx ON jobs (run_id, status, position);
CREATE INDEX jobs_provider_call_idx ON jobs (provider_call_id) WHERE provider_call_id IS NOT NULL;

-- Counter maintenance: statement-level triggers over transition tables, so a 100,000-job insert
-- costs one UPDATE per run, not one per row.
CREATE FUNCTION jobs_counters_apply(delta_run uuid[], delta_status text[], delta_n integer[])
RETURNS void LANGUAGE sql AS $$
  WITH d AS (
    SELECT r AS run_id, s AS status, n FROM unnest(delta_run, delta_status, delta_n) AS t(r, s, n)
  ), per_run AS (
    SELECT run_id,
      coalesce(sum(n) FILTER (WHERE status = 'queued'), 0)    AS queued,
      coalesce(sum(n) FILTER (WHERE status = 'dialing'), 0)   AS dialing,
      coalesce(sum(n) FILTER (WHERE status = 'ringing'), 0)   AS ringing,
      coalesce(sum(n) FILTER (WHERE status = 'in_call'), 0)   AS in_call,
      coalesce(sum(n) FILTER (WHERE status = 'completed'), 0) AS completed,
      coalesce(sum(n) FILTER (WHERE status = 'no_answer'), 0) AS no_answer,
      coalesce(sum(n) FILTER (WHERE status = 'busy'), 0)      AS busy,
      coalesce(sum(n) FILTER (WHERE status = 'failed'), 0)    AS failed,
      coalesce(sum(n) FILTER (WHERE status = 'cancelled'), 0) AS cancelled,
      coalesce(sum(n) FILTER (WHERE status = 'unknown'), 0)   AS unknown,
      coalesce(sum(n), 0)                                     AS total
    FROM d GROUP BY run_id
  )
  UPDATE runs r SET
    total_jobs      = r.total_jobs + p.total,
    queued_count    = r.queued_count + p.queued,
    dialing_count   = r.dialing_count + p.dialing,
    ringing_count   = r.ringing_count + p.ringing,
    in_call_count   = r.in_call_count + p.in_call,
    completed_count = r.completed_count + p.completed,
    no_answer_count = r.no_answer_count + p.no_answer,
    busy_count      = r.busy_count + p.busy,
    failed_count    = r.failed_count + p.failed,
    cancelled_count = r.cancelled_count + p.cancelled,
    unknown_count   = r.unknown_count + p.unknown
  FROM per_run p WHERE r.id = p.run_id
$$;

CREATE FUNCTION jobs_counters_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM jobs_counters_apply(array_agg(run_id), array_agg(status), array_agg(n::integer))
    FROM (SELECT run_id, status, count(*) AS n FROM new_jobs GROUP BY 1, 2) g;
  RETURN NULL;
END $$;

CREATE FUNCTION jobs_counters_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM old_jobs o JOIN new_jobs n ON n.id = o.id WHERE n.run_id <> o.run_id) THEN
    RAISE EXCEPTION 'a job never moves to another run';
  END IF;
  PERFORM jobs_counters_apply(array_agg(run_id), array_agg(status), array_agg(n::integer))
    FROM (
      SELECT n.run_id, n.status, count(*) AS n FROM old_jobs o JOIN new_jobs n ON n.id = o.id
        WHERE n.status <> o.status GROUP BY 1, 2
      UNION ALL
      SELECT o.run_id, o.status, -count(*) FROM old_jobs o JOIN new_jobs n ON n.id = o.id
        WHERE n.status <> o.status GROUP BY 1, 2
    ) g;
  RETURN NULL;
END $$;

CREATE FUNCTION jobs_counters_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM jobs_counters_apply(array_agg(run_id), array_agg(status), array_agg(n::integer))
    FROM (SELECT run_id, status, -count(*) AS n FROM old_jobs GROUP BY 1, 2) g;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_counters_insert AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobs_counters_on_insert();
CREATE TRIGGER jobs_counters_update AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobs_counters_on_update();
CREATE TRIGGER jobs_counters_delete AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION jobs_counters_on_delete();

CREATE TABLE audit_events (
  id           uuid PRIMARY KEY,
  business_id  uuid REFERENCES businesses (id),
  actor_type   text NOT NULL CHECK (actor_type IN ('user', 'worker', 'admin', 'system')),
  actor_id     text NOT NULL,
  action       text NOT NULL,
  target_type  text NOT NULL,
  target_id    text NOT NULL,
  data         jsonb NOT NULL DEFAULT '{}'::jsonb,
  at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_business_idx ON audit_events (business_id, id DESC);

-- Cross-tenant attempts: one row each, system-level (no tenant reads it).
CREATE TABLE security_events (
  id                  uuid PRIMARY KEY,
  kind                text NOT NULL,
  actor_user_id       uuid,
  actor_business_id   uuid,
  target_type         text NOT NULL,
  target_id           text NOT NULL,
  owner_business_id   uuid,
  route               text,
  at                  timestamptz NOT NULL DEFAULT now()
);

-- Append-only logs: history cannot be rewritten, not even by a bug.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER security_events_append_only BEFORE UPDATE OR DELETE ON security_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
