/**
 * The status-webhook side of a call. A callback knows only our attempt id, so its look-up is by
 * attempt id alone: the one explicit unscoped job look-up, named as such. Its writes are not
 * fenced by the run's lease: a call whose run changed owner must still record its outcome.
 */
import { sql, type Kysely } from 'kysely';
import { jobSourcesFor, jobTargetFor, type CallOutcome, type JobEvent, type JobStatus } from '../domain/job-state.ts';
import { Batcher, batchersFor, isDeadlock } from './batcher.ts';
import { RUN_EVENTS_CHANNEL } from './run-event-channel.ts';
import type { CallProgress } from '../telephony/port.ts';
import type { Database, Job } from './schema.ts';


export interface AttemptOwner {
  jobId: string;
  runId: string;
  businessId: string;
  status: JobStatus;
  providerCallId: string | null;
  providerCredentialsRef: string | null;
}

/**
 * Unscoped by design: a provider callback carries only the attempt id. Many attempts in one
 * round trip; undefined for an unknown one.
 */
export async function findAttemptsForWebhook(db: Kysely<Database>, attemptIds: readonly string[]): Promise<Array<AttemptOwner | undefined>> {
  const rows = await db
    .selectFrom('jobs')
    .innerJoin('businesses', 'businesses.id', 'jobs.business_id')
    .select([
      'jobs.id',
      'jobs.attempt_id',
      'jobs.run_id',
      'jobs.business_id',
      'jobs.status',
      'jobs.provider_call_id',
      'businesses.provider_credentials_ref',
    ])
    .where('jobs.attempt_id', '=', (eb) => eb.fn.any(sql<string[]>`${[...attemptIds]}::uuid[]`))
    .execute();
  const byAttempt = new Map(rows.map((row) => [row.attempt_id, row]));
  return attemptIds.map((attemptId) => {
    const row = byAttempt.get(attemptId.toLowerCase());
    return (
      row && {
        jobId: row.id,
        runId: row.run_id,
        businessId: row.business_id,
        status: row.status,
        providerCallId: row.provider_call_id,
        providerCredentialsRef: row.provider_credentials_ref,
      }
    );
  });
}

const attemptBatchers = new WeakMap<object, Batcher<string, AttemptOwner | undefined>>();

/** One attempt's {@link findAttemptsForWebhook}; concurrent callbacks share one round trip. */
export function findAttemptForWebhook(db: Kysely<Database>, attemptId: string): Promise<AttemptOwner | undefined> {
  return batchersFor(db, attemptBatchers, () => new Batcher((ids: readonly string[]) => findAttemptsForWebhook(db, ids))).run(attemptId);
}

const outcomeOf: Record<Extract<CallProgress, { kind: 'ended' }>['outcome'], CallOutcome> = {
  completed: 'completed',
  no_answer: 'no_answer',
  busy: 'busy',
  failed: 'failed',
  canceled: 'cancelled',
};

function eventOf(progress: CallProgress): JobEvent | null {
  switch (progress.kind) {
    case 'pending':
      return null;
    case 'ringing':
      return { type: 'ring' };
    case 'answered':
      return { type: 'answer' };
    case 'ended':
      return { type: 'end', outcome: outcomeOf[progress.outcome] };
  }
}

/** A job whose status a callback changed. */
export type AppliedProgress = Job & {
  /** The run was asked to cancel or stop: its end may be due now. */
  run_winding_down: boolean;
};

export interface ProgressUpdate {
  attemptId: string;
  progress: CallProgress;
  providerCallId: string | undefined;
}

/** One row of the batched progress statement (what a single update would have SET, as data). */
interface ProgressRow {
  attempt: string;
  to: JobStatus;
  from: string;
  answeredBy: string | null;
  outcome: CallOutcome | null;
  duration: number | null;
  error: string | null;
  callId: string | null;
}

function progressRow({ attemptId, progress, providerCallId }: ProgressUpdate, event: JobEvent): ProgressRow {
  const ended = progress.kind === 'ended' ? progress : null;
  return {
    attempt: attemptId,
    to: jobTargetFor(event),
    from: jobSourcesFor(event).join(','),
    answeredBy: progress.kind === 'answered' || progress.kind === 'ended' ? (progress.answeredBy ?? null) : null,
    outcome: ended ? outcomeOf[ended.outcome] : null,
    duration: ended?.durationSeconds ?? null,
    error: ended?.errorCode ? `provider error ${ended.errorCode}` : null,
    callId: providerCallId ?? null,
  };
}

/** What one callback did: the job when its status changed; else whether its attempt exists at all. */
export type ProgressApplied = { job: AppliedProgress } | { job: undefined; attemptKnown: boolean };

/**
 * Applies provider statuses to their attempts' jobs, forward only: a duplicate or reordered
 * callback (ringing after completed) matches no row. Also stores the provider's call id when the
 * callback beat the dialler to it, and tells the run's listeners (`progress` run event, sent by
 * the same statement, so it is committed with the change). One statement for all `updates`, each
 * row guarded exactly as its own conditional UPDATE would be; at most one update per attempt
 * (the batcher's key). Attempt ids must be UUIDs.
 */
export async function applyCallProgressBatch(db: Kysely<Database>, updates: readonly ProgressUpdate[]): Promise<ProgressApplied[]> {
  const rows: ProgressRow[] = [];
  const index: number[] = [];
  const out: ProgressApplied[] = [];
  for (const [i, update] of updates.entries()) {
    const event = eventOf(update.progress);
    if (event) {
      index[i] = rows.length;
      rows.push(progressRow(update, event));
    } else {
      out[i] = { job: undefined, attemptKnown: await recordCallIdFromCallback(db, update) };
    }
  }
  if (rows.length === 0) return out;
  const col = <K extends keyof ProgressRow>(key: K): Array<ProgressRow[K]> => rows.map((r) => r[key]);
  // answered_at is stamped by the move to in_call; ended_at, outcome and duration by a final
  // status; the rest only fill in what is known. The run event rides in the same statement.
  const result = await sql<Partial<AppliedProgress> & { input_ord: number; attempt_known: boolean }>`
    WITH input AS (
      SELECT * FROM unnest(${col('attempt')}::uuid[], ${col('to')}::text[], ${col('from')}::text[],
                           ${col('answeredBy')}::text[], ${col('outcome')}::text[], ${col('duration')}::int[],
                           ${col('error')}::text[], ${col('callId')}::text[])
        WITH ORDINALITY AS t(attempt_id, to_status, from_statuses, answered_by, outcome, duration_seconds, error, call_id, ord)
    ), locked AS (
      -- Row locks in job id order, as every statement that changes many live jobs takes them
      -- (dispatch.ts recordProviderCallIds): two batches never wait on each other in a circle.
      SELECT j.id, j.attempt_id FROM jobs j WHERE j.attempt_id IN (SELECT attempt_id FROM input) ORDER BY j.id FOR NO KEY UPDATE
    ), changed AS (
      UPDATE jobs j SET
        status           = i.to_status,
        answered_at      = CASE WHEN i.to_status = 'in_call' THEN now() ELSE j.answered_at END,
        answered_by      = CASE WHEN i.to_status = 'in_call' THEN i.answered_by ELSE coalesce(i.answered_by, j.answered_by) END,
        ended_at         = CASE WHEN i.outcome IS NOT NULL THEN now() ELSE j.ended_at END,
        outcome          = coalesce(i.outcome, j.outcome),
        duration_seconds = CASE WHEN i.outcome IS NOT NULL THEN i.duration_seconds ELSE j.duration_seconds END,
        error            = coalesce(i.error, j.error),
        provider_call_id = coalesce(j.provider_call_id, i.call_id)
      FROM input i
      WHERE j.attempt_id = i.attempt_id AND j.id IN (SELECT id FROM locked)
        AND j.status = ANY (string_to_array(i.from_statuses, ','))
      RETURNING j.*, i.ord AS changed_ord,
        (SELECT r.cancel_requested OR r.stop_requested FROM runs r WHERE r.id = j.run_id) AS run_winding_down
    )
    SELECT i.ord AS input_ord, EXISTS (SELECT 1 FROM locked l WHERE l.attempt_id = i.attempt_id) AS attempt_known, c.*,
           CASE WHEN c.id IS NOT NULL THEN pg_notify(${RUN_EVENTS_CHANNEL}, json_build_object(
             'kind', 'progress', 'runId', c.run_id, 'businessId', c.business_id,
             'callEnded', c.status IN ('completed', 'no_answer', 'busy', 'failed', 'cancelled'))::text) END AS notified
      FROM input i LEFT JOIN changed c ON c.changed_ord = i.ord`.execute(db);
  const byOrd = new Map<number, ProgressApplied>();
  for (const row of result.rows) {
    const { input_ord: ord, attempt_known: known, changed_ord: _c, notified: _n, ...job } = row as typeof row & { changed_ord?: unknown; notified?: unknown };
    byOrd.set(Number(ord), job.id ? { job: job as AppliedProgress } : { job: undefined, attemptKnown: known });
  }
  return updates.map((_, i) => out[i] ?? byOrd.get(index[i]! + 1) ?? { job: undefined, attemptKnown: false });
}

/** A callback with no status change (queued, initiated): stores the call id if none yet; says whether the attempt exists. */
async function recordCallIdFromCallback(db: Kysely<Database>, { attemptId, providerCallId }: ProgressUpdate): Promise<boolean> {
  const found = await db
    .updateTable('jobs')
    .set((eb) => ({ provider_call_id: eb.fn.coalesce('provider_call_id', eb.val(providerCallId ?? null)) }))
    .where('attempt_id', '=', attemptId)
    .returning('id')
    .executeTakeFirst();
  return found !== undefined;
}

/**
 * A call's final callback frees its slot only after its statement commits: queued behind another
 * call's ringing or answered statement, it waited that round trip too (the slot handoff's tail).
 */
const PROGRESS_STATEMENTS_IN_FLIGHT = 3;

const progressBatchers = new WeakMap<object, Batcher<ProgressUpdate, ProgressApplied>>();

/**
 * Applies one provider status to its attempt's job (see {@link applyCallProgressBatch}).
 * Concurrent callbacks share one statement; two for the same attempt never do, so they apply in
 * the order they arrived.
 */
export function applyCallProgress(
  db: Kysely<Database>,
  attemptId: string,
  progress: CallProgress,
  providerCallId: string | undefined,
): Promise<ProgressApplied> {
  const batcher = batchersFor(db, progressBatchers, () =>
    new Batcher<ProgressUpdate, ProgressApplied>((updates) => applyCallProgressBatch(db, updates), {
      keyOf: (update) => update.attemptId,
      retryable: isDeadlock,
      maxInFlight: PROGRESS_STATEMENTS_IN_FLIGHT,
    }),
  );
  return batcher.run({ attemptId, progress, providerCallId });
}
