-- 007: one index on leads serves both the business's listing (business_id, id) and the jobs'
-- composite foreign key, instead of two. Every imported lead paid for both.
-- (The old unique index goes before the new key is made: PostgreSQL would otherwise tie the new
-- foreign key to it, since both cover the same columns.)
ALTER TABLE leads ADD CONSTRAINT leads_business_id_id_key UNIQUE (business_id, id);
ALTER TABLE jobs DROP CONSTRAINT jobs_lead_id_business_id_fkey;
ALTER TABLE leads DROP CONSTRAINT leads_id_business_id_key;
ALTER TABLE jobs ADD CONSTRAINT jobs_lead_business_fkey
  FOREIGN KEY (business_id, lead_id) REFERENCES leads (business_id, id);
DROP INDEX leads_business_idx;
