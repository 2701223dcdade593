-- 005: each business's live calls (dialing + ringing + in_call) as a counter, kept by the same
-- statement-level triggers as the run counters. The dial commit then checks the cap and takes
-- the business row lock in one statement: `SELECT ... FOR NO KEY UPDATE` re-evaluates
-- `live_calls < max_concurrent_calls` on the newest row version after waiting for the lock,
-- so two workers can never both take the last slot (store/dispatch.ts commitDial).
ALTER TABLE businesses ADD COLUMN live_calls integer NOT NULL DEFAULT 0 CHECK (live_calls >= 0);

UPDATE businesses b SET live_calls = j.n
  FROM (SELECT business_id, count(*)::int AS n FROM jobs
         WHERE status IN ('dialing', 'ringing', 'in_call') GROUP BY business_id) j
 WHERE b.id = j.business_id;

CREATE OR REPLACE FUNCTION jobs_counters_apply(delta_run uuid[], delta_status text[], delta_n integer[])
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
  ), runs_updated AS (
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
    RETURNING r.business_id, p.dialing + p.ringing + p.in_call AS live_delta
  ), per_business AS (
    SELECT business_id, sum(live_delta)::int AS live_delta FROM runs_updated GROUP BY business_id
  )
  UPDATE businesses b SET live_calls = b.live_calls + pb.live_delta
    FROM per_business pb WHERE b.id = pb.business_id AND pb.live_delta <> 0
$$;
