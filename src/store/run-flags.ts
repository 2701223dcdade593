/**
 * Cancel and stop requests on a run, tenant-scoped. The flag write locks the run row, the same
 * row the dialler's commit locks (dispatch.ts `commitDial`), so the two serialise: after this
 * commits, no dial can commit. See engine/run-control.ts for the semantics.
 */
import { sql, type Kysely } from 'kysely';
import { isTerminalRun, runSourcesFor } from '../domain/run-state.ts';
import { appendAudit, type Actor } from './audit.ts';
import type { Database, Run } from './schema.ts';
import { NOW, updateJobStatus } from './transitions.ts';

export type RunFlag = 'cancel' | 'stop';

export type FlagResult =
  | { kind: 'not_found' }
  | { kind: 'already_ended'; run: Run }
  | { kind: 'requested'; run: Run; cancelledJobs: number; flagAt: Date };

/**
 * Sets the flag (idempotent), cancels the run's queued jobs and appends the audit event, in one
 * transaction.
 */
export async function requestRunFlag(
  db: Kysely<Database>,
  businessId: string,
  runId: string,
  flag: RunFlag,
  actor: Actor,
): Promise<FlagResult> {
  return db.transaction().execute(async (trx) => {
    const before = await trx
      .selectFrom('runs')
      .selectAll()
      .where('business_id', '=', businessId)
      .where('id', '=', runId)
      .forUpdate()
      .executeTakeFirst();
    if (!before) return { kind: 'not_found' };
    if (isTerminalRun(before.status)) return { kind: 'already_ended', run: before };
    const flagColumns =
      flag === 'cancel'
        ? { cancel_requested: true, cancel_requested_at: NOW, cancel_requested_by: actor.id }
        : { stop_requested: true, stop_requested_at: NOW, stop_requested_by: actor.id };
    const alreadyRequested = flag === 'cancel' ? before.cancel_requested : before.stop_requested;
    if (!alreadyRequested) {
      await trx.updateTable('runs').set(flagColumns).where('id', '=', runId).where('business_id', '=', businessId).execute();
    }
    const cancelled = await updateJobStatus(trx, { type: 'cancel' }, { outcome: 'cancelled', ended_at: NOW })
      .where('run_id', '=', runId)
      .where('business_id', '=', businessId)
      .executeTakeFirst();
    const cancelledJobs = Number(cancelled.numUpdatedRows);
    if (!alreadyRequested || cancelledJobs > 0) {
      await appendAudit(trx, {
        businessId,
        actor,
        action: flag === 'cancel' ? 'run.cancel' : 'run.stop',
        targetType: 'run',
        targetId: runId,
        data: { before: before.status, cancelled_jobs: cancelledJobs, repeated: alreadyRequested },
      });
    }
    const run = await trx.selectFrom('runs').selectAll().where('id', '=', runId).where('business_id', '=', businessId).executeTakeFirstOrThrow();
    const flagAt = (flag === 'cancel' ? run.cancel_requested_at : run.stop_requested_at) ?? new Date();
    return { kind: 'requested', run, cancelledJobs, flagAt };
  });
}

/** Dials committed at or before `at` whose provider call id is not stored yet (still leaving). */
export async function countDialsInFlight(db: Kysely<Database>, businessId: string, runId: string, at: Date): Promise<number> {
  const row = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('business_id', '=', businessId)
    .where('run_id', '=', runId)
    .where('status', '=', 'dialing')
    .where('provider_call_id', 'is', null)
    .where('dial_started_at', '<=', at)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Ends a run that was asked to cancel or stop once none of its calls is live: `stopped` if a stop
 * was requested, else `cancelled` (both leave from the same states, pending and running). Anyone
 * may call it (webhook, API, worker); it applies once.
 */
export async function finalizeRequestedRun(db: Kysely<Database>, businessId: string, runId: string): Promise<Run | undefined> {
  return db
    .updateTable('runs')
    .set({ status: sql`CASE WHEN stop_requested THEN 'stopped' ELSE 'cancelled' END`, ended_at: NOW })
    .where('status', 'in', [...runSourcesFor('stop')])
    .where('id', '=', runId)
    .where('business_id', '=', businessId)
    .where((eb) => eb.or([eb('stop_requested', '=', true), eb('cancel_requested', '=', true)]))
    .where(sql<boolean>`NOT EXISTS (SELECT 1 FROM jobs
      WHERE jobs.run_id = runs.id AND jobs.status IN ('queued', 'dialing', 'ringing', 'in_call'))`)
    .returningAll()
    .executeTakeFirst();
}
