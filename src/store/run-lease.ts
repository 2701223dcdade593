/**
 * The worker's lease on runs. These are the engine's only look-ups of a run by id without a
 * business id, and they are fenced instead: every write after the lease is conditioned on the
 * `lock_token` the lease handed out, so a worker that lost its lease (paused process, network
 * split) can change nothing. Liveness is judged by the database clock (`now()`), never a host's.
 */
import { sql, type Kysely } from 'kysely';
import { RUN_EVENTS_CHANNEL } from './run-event-channel.ts';
import type { Database, Run } from './schema.ts';

export interface LeasedRun {
  run: Run;
  /** Who held it before, when this lease is a takeover of a stale one. */
  previousWorker: string | null;
}

/**
 * Claims up to `limit` active runs with no live lease, oldest first, with SKIP LOCKED so workers
 * never wait on each other. A pending run becomes running. Returns what it claimed.
 */
export async function leaseRuns(
  db: Kysely<Database>,
  options: { workerId: string; ttlSeconds: number; limit: number },
): Promise<LeasedRun[]> {
  if (options.limit <= 0) return [];
  // Watchers (SSE) learn that the run was picked up from the claim itself: one `started` run
  // event per claimed run, committed with it.
  const result = await sql<Run & { previous_worker: string | null; notified: unknown }>`
    WITH claim AS (
      SELECT id, locked_by_worker AS previous_worker, lock_token AS previous_token
        FROM runs
       WHERE status IN ('pending', 'running')
         AND (lock_ts IS NULL OR lock_ts < now() - make_interval(secs => ${options.ttlSeconds}))
       ORDER BY lock_ts NULLS FIRST, created_at
       LIMIT ${options.limit}
       FOR UPDATE SKIP LOCKED),
    claimed AS (
    UPDATE runs r
       SET locked_by_worker = ${options.workerId},
           lock_token = gen_random_uuid(),
           lock_ts = now(),
           status = 'running',
           started_at = coalesce(r.started_at, now())
      FROM claim
     WHERE r.id = claim.id
    RETURNING r.*, CASE WHEN claim.previous_token IS NULL THEN NULL ELSE claim.previous_worker END AS previous_worker)
    SELECT c.*, pg_notify(${RUN_EVENTS_CHANNEL}, json_build_object('kind', 'started', 'runId', c.id, 'businessId', c.business_id)::text) AS notified
      FROM claimed c`.execute(db);
  return result.rows.map(({ previous_worker, notified: _notified, ...run }) => ({ run: run as Run, previousWorker: previous_worker }));
}

export interface LeaseHeld {
  runId: string;
  token: string;
}

/**
 * Renews many leases in one statement. Returns the ids still held; a missing one was lost
 * (taken over, or the run ended) and its driver must stop at once.
 */
export async function renewLeases(db: Kysely<Database>, leases: readonly LeaseHeld[]): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const result = await sql<{ id: string }>`
    UPDATE runs r SET lock_ts = now()
      FROM unnest(${leases.map((l) => l.runId)}::uuid[], ${leases.map((l) => l.token)}::uuid[]) AS held(id, token)
     WHERE r.id = held.id AND r.lock_token = held.token AND r.status IN ('pending', 'running')
    RETURNING r.id`.execute(db);
  return new Set(result.rows.map((row) => row.id));
}

/** Hands runs back (graceful shutdown), in one statement: another worker may take them at once. */
export async function releaseLeases(db: Kysely<Database>, leases: readonly LeaseHeld[]): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const result = await sql<{ id: string }>`
    UPDATE runs r SET locked_by_worker = NULL, lock_token = NULL, lock_ts = NULL
      FROM unnest(${leases.map((l) => l.runId)}::uuid[], ${leases.map((l) => l.token)}::uuid[]) AS held(id, token)
     WHERE r.id = held.id AND r.lock_token = held.token
    RETURNING r.id`.execute(db);
  return new Set(result.rows.map((row) => row.id));
}

/** Seconds until the earliest live lease of an active run expires (null: none), by the DB clock. */
export async function secondsUntilNextLeaseExpiry(db: Kysely<Database>, ttlSeconds: number): Promise<number | null> {
  const result = await sql<{ seconds: number | null }>`
    SELECT extract(epoch FROM (min(lock_ts) + make_interval(secs => ${ttlSeconds}) - now()))::float8 AS seconds
      FROM runs WHERE status IN ('pending', 'running') AND lock_ts IS NOT NULL`.execute(db);
  return result.rows[0]?.seconds ?? null;
}
