/**
 * The dial path's queries, in the order a dial uses them. All are fenced by the run's lease
 * token: a worker that lost its lease matches no row and so changes nothing.
 */
import { sql, type Kysely } from 'kysely';
import type { RunStatus } from '../domain/run-state.ts';
import type { Business, Database, Job } from './schema.ts';
import { NOW, updateJobStatus, updateRunStatus } from './transitions.ts';
import type { LeaseHeld } from './run-lease.ts';

export interface DispatchView {
  status: RunStatus;
  cancelRequested: boolean;
  stopRequested: boolean;
  concurrency: number;
  /** Calls of this run in dialing, ringing or in_call. */
  live: number;
  /** The next job to dial, in position order; null when none is queued. */
  next: { jobId: string; leadId: string; phone: string; position: number } | null;
}

/**
 * Re-reads the run's flags and picks its next job, in one round trip. Called before every dial:
 * this re-read is the guarantee that cancel and stop are seen. Null when the lease is lost.
 */
export async function readDispatchView(db: Kysely<Database>, lease: LeaseHeld): Promise<DispatchView | null> {
  const result = await sql<{
    status: RunStatus;
    cancel_requested: boolean;
    stop_requested: boolean;
    concurrency: number;
    live: number;
    job_id: string | null;
    lead_id: string | null;
    phone_e164: string | null;
    position: number | null;
  }>`
    SELECT r.status, r.cancel_requested, r.stop_requested, r.concurrency,
           r.dialing_count + r.ringing_count + r.in_call_count AS live,
           j.id AS job_id, j.lead_id, j.phone_e164, j.position
      FROM runs r
      LEFT JOIN LATERAL (
        SELECT id, lead_id, phone_e164, position FROM jobs
         WHERE run_id = r.id AND status = 'queued' ORDER BY position LIMIT 1) j ON true
     WHERE r.id = ${lease.runId} AND r.lock_token = ${lease.token}`.execute(db);
  const row = result.rows[0];
  if (!row) return null;
  return {
    status: row.status,
    cancelRequested: row.cancel_requested,
    stopRequested: row.stop_requested,
    concurrency: row.concurrency,
    live: row.live,
    next:
      row.job_id && row.lead_id && row.phone_e164 && row.position !== null
        ? { jobId: row.job_id, leadId: row.lead_id, phone: row.phone_e164, position: row.position }
        : null,
  };
}

export type CommitDialResult = 'committed' | 'business_full' | 'not_dialable';

/**
 * Commits the dial record (`queued -> dialing` with a fresh attempt id) BEFORE the provider is
 * called, in one statement that takes two row locks:
 * - the run row, with its lease and flags re-checked after waiting for the lock (PostgreSQL
 *   re-evaluates the WHERE on the newest row version): this serialises against a cancel/stop
 *   write, so once a cancel is committed no dial commits after it;
 * - the business row, only while `live_calls < max_concurrent_calls`, re-checked the same way:
 *   the cap holds in the database itself, across every worker, even if the slot pool (Redis)
 *   lost its state.
 * The counter trigger raises `live_calls` in the same transaction, before either lock is freed.
 * `not_dialable`: the job was taken, the lease lost, or a cancel/stop committed first.
 */
export async function commitDial(
  db: Kysely<Database>,
  lease: LeaseHeld,
  businessId: string,
  jobId: string,
  attemptId: string,
): Promise<CommitDialResult> {
  // Lock order is run, then business: the same order as the counter trigger of a webhook's job
  // update (jobs -> runs -> businesses), so the two can never deadlock. `room` reads the fence
  // through a scalar subquery, which PostgreSQL evaluates first.
  const result = await sql<{ dialed: string | null; room: boolean }>`
    WITH fence AS (
      SELECT id, business_id FROM runs
       WHERE id = ${lease.runId} AND business_id = ${businessId} AND lock_token = ${lease.token}
         AND status = 'running' AND NOT cancel_requested AND NOT stop_requested
       FOR NO KEY UPDATE),
    room AS (
      SELECT id FROM businesses
       WHERE id = (SELECT business_id FROM fence) AND live_calls < max_concurrent_calls
       FOR NO KEY UPDATE),
    dialed AS (
      UPDATE jobs SET status = 'dialing', attempt_id = ${attemptId}, dial_started_at = now()
       WHERE id = ${jobId} AND status = 'queued'
         AND run_id IN (SELECT id FROM fence) AND business_id IN (SELECT id FROM room)
      RETURNING id)
    SELECT (SELECT id FROM dialed) AS dialed,
           EXISTS (SELECT 1 FROM room) OR NOT EXISTS (SELECT 1 FROM fence) AS room`.execute(db);
  const row = result.rows[0];
  if (row?.dialed) return 'committed';
  return row?.room ? 'not_dialable' : 'business_full';
}

/** Stores the provider's call id on the attempt, if the lease still holds (the webhook may also set it). */
export async function recordProviderCallId(
  db: Kysely<Database>,
  lease: LeaseHeld,
  attemptId: string,
  providerCallId: string,
): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({ provider_call_id: providerCallId })
    .where('attempt_id', '=', attemptId)
    .where('provider_call_id', 'is', null)
    .where('run_id', 'in', (qb) => qb.selectFrom('runs').select('id').where('id', '=', lease.runId).where('lock_token', '=', lease.token))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The provider refused the dial for good (invalid number...): nothing is live, the job fails. */
export async function rejectDial(db: Kysely<Database>, lease: LeaseHeld, attemptId: string, error: string): Promise<boolean> {
  const result = await updateJobStatus(db, { type: 'reject' }, { error, outcome: 'failed', ended_at: NOW })
    .where('attempt_id', '=', attemptId)
    .where('run_id', 'in', (qb) => qb.selectFrom('runs').select('id').where('id', '=', lease.runId).where('lock_token', '=', lease.token))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Reconciliation found no provider record within the window: `unknown`, never redialled. */
export async function markDialLost(db: Kysely<Database>, lease: LeaseHeld, attemptId: string): Promise<boolean> {
  const result = await updateJobStatus(db, { type: 'lost' }, {
    error: 'no provider record of this dial within the reconciliation window',
    ended_at: NOW,
  })
    .where('attempt_id', '=', attemptId)
    .where('provider_call_id', 'is', null)
    .where('run_id', 'in', (qb) => qb.selectFrom('runs').select('id').where('id', '=', lease.runId).where('lock_token', '=', lease.token))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The run's calls that may be live (for reconciliation and hang-up). */
export async function liveJobsOfRun(db: Kysely<Database>, runId: string, businessId: string): Promise<Job[]> {
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('run_id', '=', runId)
    .where('business_id', '=', businessId)
    .where('status', 'in', ['dialing', 'ringing', 'in_call'])
    .orderBy('position')
    .execute();
}

/** `running -> completed`, only when every job is terminal and no cancel/stop is pending. */
export async function completeRun(db: Kysely<Database>, lease: LeaseHeld): Promise<boolean> {
  const result = await updateRunStatus(db, 'complete', { ended_at: NOW })
    .where('id', '=', lease.runId)
    .where('lock_token', '=', lease.token)
    .where('cancel_requested', '=', false)
    .where('stop_requested', '=', false)
    .where(sql<boolean>`cursor_position = total_jobs`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * The run cannot go on (credentials rejected, no caller id): queued jobs are cancelled and the
 * run becomes `failed` with the reason. Live calls, if any, still end and are recorded.
 */
export async function failRun(db: Kysely<Database>, lease: LeaseHeld, reason: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const failed = await updateRunStatus(trx, 'fail', { ended_at: NOW, last_error: reason })
      .where('id', '=', lease.runId)
      .where('lock_token', '=', lease.token)
      .executeTakeFirst();
    if (Number(failed.numUpdatedRows) === 0) return false;
    await updateJobStatus(trx, { type: 'cancel' }, { error: reason, outcome: 'cancelled', ended_at: NOW })
      .where('run_id', '=', lease.runId)
      .execute();
    return true;
  });
}

/** The business settings a dial needs. The worker's read of a business by id: the run names it. */
export async function loadBusinessForDispatch(db: Kysely<Database>, businessId: string): Promise<Business | undefined> {
  return db.selectFrom('businesses').selectAll().where('id', '=', businessId).executeTakeFirst();
}
