-- 010: the counter function in PL/pgSQL instead of SQL, with the same statement. PostgreSQL
-- plans a non-inlinable SQL function's statement afresh on every call; PL/pgSQL prepares it once
-- per connection. Every job transition fires the counter trigger, so this is on the hot path of
-- every dial and every status callback. Measured on this 2-core machine (pgbench, one client,
-- a single-row `in_call <-> completed` UPDATE of jobs): 1.65 ms with the SQL function, 0.63 ms
-- with this one, 0.41 ms with the trigger disabled.
CREATE OR REPLACE FUNCTION jobs_counters_apply(delta_run uuid[], delta_status text[], delta_n integer[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
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
    ), locked_runs AS (
      SELECT id FROM runs WHERE id IN (SELECT run_id FROM per_run) ORDER BY id FOR NO KEY UPDATE
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
      FROM per_run p WHERE r.id = p.run_id AND r.id IN (SELECT id FROM locked_runs)
      RETURNING r.business_id, p.dialing + p.ringing + p.in_call AS live_delta
    ), per_business AS (
      SELECT business_id, sum(live_delta)::int AS live_delta FROM runs_updated GROUP BY business_id
    ), locked_businesses AS (
      SELECT id FROM businesses WHERE id IN (SELECT business_id FROM per_business WHERE live_delta <> 0)
       ORDER BY id FOR NO KEY UPDATE
    )
    UPDATE businesses b SET live_calls = b.live_calls + pb.live_delta
      FROM per_business pb
     WHERE b.id = pb.business_id AND pb.live_delta <> 0 AND b.id IN (SELECT id FROM locked_businesses);
END $$;
