-- 003: the dial commit counts a business's live calls under a lock on the business row
-- (store/dispatch.ts commitDial): the durable cap that holds even if Redis loses its state.
CREATE INDEX jobs_business_live_idx ON jobs (business_id) WHERE status IN ('dialing', 'ringing', 'in_call');
