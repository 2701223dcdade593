/**
 * The dial path's queries, in the order a dial uses them. All are fenced by the run's lease
 * token: a worker that lost its lease matches no row and so changes nothing.
 */
import { sql, type Kysely } from 'kysely';
import { runSourcesFor, runTargetFor, type RunStatus } from '../domain/run-state.ts';
import { Batcher, batchersFor, isDeadlock } from './batcher.ts';
import { RUN_EVENTS_CHANNEL } from './run-event-channel.ts';
import type { LeaseHeld } from './run-lease.ts';
import type { Business, Database, Job } from './schema.ts';
import { NOW, updateJobStatus, updateRunStatus } from './transitions.ts';

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

interface DispatchViewRow {
  ord: number;
  status: RunStatus;
  cancel_requested: boolean;
  stop_requested: boolean;
  concurrency: number;
  live: number;
  job_id: string | null;
  lead_id: string | null;
  phone_e164: string | null;
  position: number | null;
}

/**
 * Re-reads each run's flags and picks its next job, in one round trip for all `leases`. Called
 * before every dial: this re-read is the guarantee that cancel and stop are seen. Null for a run
 * whose lease is lost.
 */
export async function readDispatchViews(db: Kysely<Database>, leases: readonly LeaseHeld[]): Promise<Array<DispatchView | null>> {
  const result = await sql<DispatchViewRow>`
    SELECT h.ord, r.status, r.cancel_requested, r.stop_requested, r.concurrency,
           r.dialing_count + r.ringing_count + r.in_call_count AS live,
           j.id AS job_id, j.lead_id, j.phone_e164, j.position
      FROM unnest(${leases.map((l) => l.runId)}::uuid[], ${leases.map((l) => l.token)}::uuid[]) WITH ORDINALITY AS h(run_id, token, ord)
      JOIN runs r ON r.id = h.run_id AND r.lock_token = h.token
      LEFT JOIN LATERAL (
        SELECT id, lead_id, phone_e164, position FROM jobs
         WHERE run_id = r.id AND status = 'queued' ORDER BY position LIMIT 1) j ON true`.execute(db);
  const byOrd = new Map(result.rows.map((row) => [Number(row.ord), row]));
  return leases.map((_, i) => {
    const row = byOrd.get(i + 1);
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
  });
}

const viewBatchers = new WeakMap<object, Batcher<LeaseHeld, DispatchView | null>>();

/** One run's {@link readDispatchViews}; the reads of concurrent drivers share one statement. */
export function readDispatchView(db: Kysely<Database>, lease: LeaseHeld): Promise<DispatchView | null> {
  return batchersFor(db, viewBatchers, () => new Batcher((leases: readonly LeaseHeld[]) => readDispatchViews(db, leases))).run(lease);
}

export type CommitDialResult = 'committed' | 'business_full' | 'not_dialable';

export interface DialCommit {
  lease: LeaseHeld;
  businessId: string;
  jobId: string;
  attemptId: string;
}

/**
 * Commits dial records (`queued -> dialing` with a fresh attempt id) BEFORE the provider is
 * called, for many runs in one statement that takes two sets of row locks, each in id order (so
 * two such statements, or this and a webhook's counter trigger, never lock in crossing orders):
 * - the run rows, with lease and flags re-checked after waiting for the lock (PostgreSQL
 *   re-evaluates the WHERE on the newest row version): this serialises against a cancel/stop
 *   write, so once a cancel is committed no dial commits after it;
 * - the business rows, only while `live_calls < max_concurrent_calls`, re-checked the same way:
 *   the cap holds in the database itself, across every worker, even if the slot pool (Redis)
 *   lost its state. The check counts one dial per business, so a statement carries at most one
 *   dial per business (the batcher's key).
 * The counter trigger raises `live_calls` in the same transaction, before any lock is freed.
 * Per dial: `not_dialable` when the job was taken, the lease lost, or a cancel/stop committed
 * first; `business_full` when the business is at its cap.
 */
export async function commitDials(db: Kysely<Database>, dials: readonly DialCommit[]): Promise<CommitDialResult[]> {
  if (new Set(dials.map((d) => d.businessId)).size !== dials.length) throw new Error('commitDials: at most one dial per business per statement');
  // Lock order is runs, then businesses, each by id: the same order as the counter trigger of a
  // webhook's job update (jobs -> runs -> businesses).
  const result = await sql<{ ord: number; dialed: boolean; room: boolean }>`
    WITH input AS (
      SELECT * FROM unnest(${dials.map((d) => d.lease.runId)}::uuid[], ${dials.map((d) => d.lease.token)}::uuid[],
                           ${dials.map((d) => d.businessId)}::uuid[], ${dials.map((d) => d.jobId)}::uuid[],
                           ${dials.map((d) => d.attemptId)}::uuid[])
        WITH ORDINALITY AS t(run_id, token, business_id, job_id, attempt_id, ord)
    ), fence AS (
      SELECT r.id, r.business_id FROM runs r
       WHERE r.id IN (SELECT run_id FROM input)
         AND (r.id, r.business_id, r.lock_token) IN (SELECT run_id, business_id, token FROM input)
         AND r.status = 'running' AND NOT r.cancel_requested AND NOT r.stop_requested
       ORDER BY r.id
       FOR NO KEY UPDATE),
    room AS (
      SELECT b.id FROM businesses b
       WHERE b.id IN (SELECT business_id FROM fence) AND b.live_calls < b.max_concurrent_calls
       ORDER BY b.id
       FOR NO KEY UPDATE),
    dialed AS (
      UPDATE jobs j SET status = 'dialing', attempt_id = i.attempt_id, dial_started_at = now()
        FROM input i
       WHERE j.id = i.job_id AND j.status = 'queued' AND j.run_id = i.run_id
         AND i.run_id IN (SELECT id FROM fence) AND i.business_id IN (SELECT id FROM room)
      RETURNING j.id)
    SELECT i.ord,
           EXISTS (SELECT 1 FROM dialed d WHERE d.id = i.job_id) AS dialed,
           EXISTS (SELECT 1 FROM room WHERE room.id = i.business_id)
             OR NOT EXISTS (SELECT 1 FROM fence WHERE fence.id = i.run_id) AS room
      FROM input i`.execute(db);
  const byOrd = new Map(result.rows.map((row) => [Number(row.ord), row]));
  return dials.map((_, i) => {
    const row = byOrd.get(i + 1);
    if (row?.dialed) return 'committed';
    return row?.room ? 'not_dialable' : 'business_full';
  });
}

const commitBatchers = new WeakMap<object, Batcher<DialCommit, CommitDialResult>>();

/** One dial's {@link commitDials}; concurrent drivers' dials share one statement (one per business). */
export function commitDial(db: Kysely<Database>, lease: LeaseHeld, businessId: string, jobId: string, attemptId: string): Promise<CommitDialResult> {
  const batcher = batchersFor(db, commitBatchers, () =>
    new Batcher((dials: readonly DialCommit[]) => commitDials(db, dials), { keyOf: (d) => d.businessId, retryable: isDeadlock }),
  );
  return batcher.run({ lease, businessId, jobId, attemptId });
}

export interface ProviderCallIdRecord {
  lease: LeaseHeld;
  attemptId: string;
  providerCallId: string;
}

/** Stores the provider's call ids on their attempts, each only if its run's lease still holds (the webhook may also set it). */
export async function recordProviderCallIds(db: Kysely<Database>, records: readonly ProviderCallIdRecord[]): Promise<boolean[]> {
  const result = await sql<{ ord: number }>`
    WITH input AS (
      SELECT * FROM unnest(${records.map((r) => r.lease.runId)}::uuid[], ${records.map((r) => r.lease.token)}::uuid[],
                           ${records.map((r) => r.attemptId)}::uuid[], ${records.map((r) => r.providerCallId)}::text[])
        WITH ORDINALITY AS t(run_id, token, attempt_id, call_id, ord)
    ), locked AS (
      -- In job id order, as the webhook's progress batch locks them (call-events.ts).
      SELECT j.id FROM jobs j WHERE j.attempt_id IN (SELECT attempt_id FROM input) ORDER BY j.id FOR NO KEY UPDATE
    )
    UPDATE jobs j SET provider_call_id = i.call_id
      FROM input i
     WHERE j.attempt_id = i.attempt_id AND j.id IN (SELECT id FROM locked)
       AND j.provider_call_id IS NULL AND j.run_id = i.run_id
       AND EXISTS (SELECT 1 FROM runs r WHERE r.id = i.run_id AND r.lock_token = i.token)
    RETURNING i.ord`.execute(db);
  const stored = new Set(result.rows.map((row) => Number(row.ord)));
  return records.map((_, i) => stored.has(i + 1));
}

const callIdBatchers = new WeakMap<object, Batcher<ProviderCallIdRecord, boolean>>();

/** One attempt's {@link recordProviderCallIds}; concurrent dials share one statement. */
export function recordProviderCallId(db: Kysely<Database>, lease: LeaseHeld, attemptId: string, providerCallId: string): Promise<boolean> {
  const batcher = batchersFor(db, callIdBatchers, () => new Batcher((records: readonly ProviderCallIdRecord[]) => recordProviderCallIds(db, records), { retryable: isDeadlock }));
  return batcher.run({ lease, attemptId, providerCallId });
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

/**
 * `running -> completed` for each lease whose run has every job terminal and no cancel/stop
 * pending, in one statement; the `ended` run event is sent by the same statement. Returns, per
 * lease, whether its run completed.
 */
export async function completeRuns(db: Kysely<Database>, leases: readonly LeaseHeld[]): Promise<boolean[]> {
  const result = await sql<{ id: string }>`
    WITH completed AS (
      UPDATE runs r SET status = ${runTargetFor('complete')}, ended_at = now()
        FROM unnest(${leases.map((l) => l.runId)}::uuid[], ${leases.map((l) => l.token)}::uuid[]) AS held(id, token)
       WHERE r.id = held.id AND r.lock_token = held.token
         AND r.status = ANY (${[...runSourcesFor('complete')]}::text[])
         AND NOT r.cancel_requested AND NOT r.stop_requested
         AND r.cursor_position = r.total_jobs
      RETURNING r.id, r.business_id)
    SELECT c.id, pg_notify(${RUN_EVENTS_CHANNEL}, json_build_object('kind', 'ended', 'runId', c.id, 'businessId', c.business_id)::text) AS notified
      FROM completed c`.execute(db);
  const done = new Set(result.rows.map((row) => row.id));
  return leases.map((lease) => done.has(lease.runId));
}

const completeBatchers = new WeakMap<object, Batcher<LeaseHeld, boolean>>();

/** One run's {@link completeRuns}; runs finishing together share one statement. */
export function completeRun(db: Kysely<Database>, lease: LeaseHeld): Promise<boolean> {
  return batchersFor(db, completeBatchers, () => new Batcher((leases: readonly LeaseHeld[]) => completeRuns(db, leases), { retryable: isDeadlock })).run(lease);
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

/** The business settings dials need, for many businesses in one round trip. The worker's read of a business by id: the run names it. */
export async function loadBusinessesForDispatch(db: Kysely<Database>, businessIds: readonly string[]): Promise<Array<Business | undefined>> {
  const rows = await db
    .selectFrom('businesses')
    .selectAll()
    .where('id', '=', (eb) => eb.fn.any(sql<string[]>`${[...businessIds]}::uuid[]`))
    .execute();
  const byId = new Map(rows.map((row) => [row.id, row]));
  return businessIds.map((id) => byId.get(id));
}

const businessBatchers = new WeakMap<object, Batcher<string, Business | undefined>>();

/** One business's {@link loadBusinessesForDispatch}; drivers refreshing together share one round trip. */
export function loadBusinessForDispatch(db: Kysely<Database>, businessId: string): Promise<Business | undefined> {
  return batchersFor(db, businessBatchers, () => new Batcher((ids: readonly string[]) => loadBusinessesForDispatch(db, ids))).run(businessId);
}
