-- 004: TRUNCATE bypasses row and statement UPDATE/DELETE triggers: refuse it on the append-only
-- logs too. And a job's outcome takes only the values the engine writes.
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER security_events_no_truncate BEFORE TRUNCATE ON security_events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

ALTER TABLE jobs ADD CONSTRAINT jobs_outcome_check
  CHECK (outcome IS NULL OR outcome IN ('completed', 'no_answer', 'busy', 'failed', 'cancelled'));
