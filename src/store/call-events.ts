/**
 * The status-webhook side of a call. A callback knows only our attempt id, so its look-up is by
 * attempt id alone: the one explicit unscoped job look-up, named as such. Its writes are not
 * fenced by the run's lease: a call whose run changed owner must still record its outcome.
 */
import { sql, type Kysely } from 'kysely';
import type { CallOutcome, JobEvent, JobStatus } from '../domain/job-state.ts';
import type { CallProgress } from '../telephony/port.ts';
import type { Database, Job } from './schema.ts';
import { NOW, updateJobStatus } from './transitions.ts';

export interface AttemptOwner {
  jobId: string;
  runId: string;
  businessId: string;
  status: JobStatus;
  providerCallId: string | null;
  providerCredentialsRef: string | null;
}

/** Unscoped by design: a provider callback carries only the attempt id. */
export async function findAttemptForWebhook(db: Kysely<Database>, attemptId: string): Promise<AttemptOwner | undefined> {
  const row = await db
    .selectFrom('jobs')
    .innerJoin('businesses', 'businesses.id', 'jobs.business_id')
    .select([
      'jobs.id',
      'jobs.run_id',
      'jobs.business_id',
      'jobs.status',
      'jobs.provider_call_id',
      'businesses.provider_credentials_ref',
    ])
    .where('jobs.attempt_id', '=', attemptId)
    .executeTakeFirst();
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

/**
 * Applies one provider status to the attempt's job, forward only: a duplicate or reordered
 * callback (ringing after completed) matches no row. Also stores the provider's call id when the
 * callback beat the dialler to it. Returns the job when its status changed, else undefined.
 */
export type AppliedProgress = Job & {
  /** The run was asked to cancel or stop: its end may be due now. */
  run_winding_down: boolean;
};

export async function applyCallProgress(
  db: Kysely<Database>,
  attemptId: string,
  progress: CallProgress,
  providerCallId: string | undefined,
): Promise<AppliedProgress | undefined> {
  const event = eventOf(progress);
  if (!event) {
    if (providerCallId) {
      await db
        .updateTable('jobs')
        .set({ provider_call_id: providerCallId })
        .where('attempt_id', '=', attemptId)
        .where('provider_call_id', 'is', null)
        .execute();
    }
    return undefined;
  }
  const patch =
    progress.kind === 'answered'
      ? { answered_at: NOW, answered_by: progress.answeredBy ?? null }
      : progress.kind === 'ended'
        ? {
            ended_at: NOW,
            outcome: outcomeOf[progress.outcome],
            duration_seconds: progress.durationSeconds ?? null,
            ...(progress.answeredBy ? { answered_by: progress.answeredBy } : {}),
            ...(progress.errorCode ? { error: `provider error ${progress.errorCode}` } : {}),
          }
        : {};
  return updateJobStatus(db, event, {
    ...patch,
    ...(providerCallId ? { provider_call_id: (eb) => eb.fn.coalesce('provider_call_id', eb.val(providerCallId)) } : {}),
  })
    .where('attempt_id', '=', attemptId)
    .returningAll()
    .returning(
      sql<boolean>`(SELECT runs.cancel_requested OR runs.stop_requested FROM runs WHERE runs.id = jobs.run_id)`.as('run_winding_down'),
    )
    .executeTakeFirst();
}
