-- 009: no query looks a job up by its provider call id (callbacks carry our attempt id, and the
-- attempt id has its own unique index), yet every job update after the call id is set (ringing,
-- answered, the final status: none of them HOT, since status is in partial-index predicates)
-- inserted into this index. Dropped: one index insertion less per call event.
DROP INDEX IF EXISTS jobs_provider_call_idx;
