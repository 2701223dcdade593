-- 002: UUIDv7 generated inside the database, so set-based inserts (a run of 100,000 jobs in one
-- INSERT ... SELECT) get time-ordered ids without shipping them from the application.
CREATE FUNCTION ocq_uuidv7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1), 'hex')::uuid
$$;

ALTER TABLE jobs ALTER COLUMN id SET DEFAULT ocq_uuidv7();
