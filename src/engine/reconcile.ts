/**
 * Reconciliation: what the provider knows wins over what we assumed. Runs on takeover (before
 * anything else) and on each safety poll for calls that look stale.
 *
 * - `dialing` with no provider call id: the previous owner died between committing the dial and
 *   storing the provider's answer. Look the call up by attempt (to, from, time). Found: adopt it.
 *   None: wait until the reconciliation window has passed, then mark it `unknown`. Several
 *   candidates: `unknown` at once. An `unknown` job is reported and never redialled.
 * - A live call with a provider call id: fetch it; a final status ends the job exactly as its
 *   webhook would have (the webhook may have been lost).
 */
import { liveJobsOfRun, markDialLost, recordProviderCallId } from '../store/dispatch.ts';
import type { LeaseHeld } from '../store/run-lease.ts';
import type { Job } from '../store/schema.ts';
import { progressFromProviderCall } from '../telephony/status-map.ts';
import type { ProviderCredentials } from '../telephony/port.ts';
import { onCallProgress, releaseQuietly } from './call-life.ts';
import type { EngineContext } from './context.ts';

export interface ReconcileScope {
  lease: LeaseHeld;
  businessId: string;
  credentials: ProviderCredentials;
  /** The caller id the run dials from (the provider search needs it). */
  from: string;
  /** Calls older than this (ms since dial) are checked with the provider: their webhook may be lost. */
  staleAfterMs: number;
  /** When each attempt was last checked, so a long call is asked about at most every {@link RECHECK_MS}. */
  lastChecked: Map<string, number>;
}

/** A live call is asked about at most this often. */
export const RECHECK_MS = 30_000;

/** Checks the run's live calls; `everything` on takeover, otherwise only suspicious ones. */
export async function reconcileLiveCalls(ctx: EngineContext, scope: ReconcileScope, everything: boolean): Promise<void> {
  const jobs = await liveJobsOfRun(ctx.store.db, scope.lease.runId, scope.businessId);
  for (const job of jobs) {
    if (!job.attempt_id) continue;
    const age = Date.now() - (job.dial_started_at?.getTime() ?? Date.now());
    const unconfirmed = job.provider_call_id === null;
    if (!everything && !unconfirmed && age < scope.staleAfterMs) continue;
    if (!everything && !unconfirmed && Date.now() - (scope.lastChecked.get(job.attempt_id) ?? 0) < RECHECK_MS) continue;
    scope.lastChecked.set(job.attempt_id, Date.now());
    try {
      await (unconfirmed ? adoptOrLose(ctx, scope, job, age) : refreshFromProvider(ctx, scope, job));
    } catch (error) {
      ctx.logger.warn({ err: error, attemptId: job.attempt_id }, 'reconciliation of a call failed; will retry');
    }
  }
}

async function adoptOrLose(ctx: EngineContext, scope: ReconcileScope, job: Job, ageMs: number): Promise<void> {
  const attemptId = job.attempt_id!;
  const result = await ctx.telephony.findCallByAttempt(scope.credentials, {
    attemptId,
    to: job.phone_e164,
    from: scope.from,
    notBefore: job.dial_started_at ?? new Date(), // the adapter widens it by its clock-skew margin
  });
  if ('found' in result) {
    await recordProviderCallId(ctx.store.db, scope.lease, attemptId, result.found.providerCallId);
    await onCallProgress(ctx, attemptId, progressFromProviderCall(result.found), result.found.providerCallId);
    ctx.logger.info({ attemptId, providerCallId: result.found.providerCallId }, 'adopted a dial found at the provider');
    return;
  }
  if ('ambiguous' in result) {
    // Another call to the same number in the same moment: we cannot tell which is ours. The slot
    // stays until its expiry, since one of those calls may be ours and live.
    await markDialLost(ctx.store.db, scope.lease, attemptId);
    ctx.logger.warn({ attemptId, candidates: result.ambiguous.length }, 'dial marked unknown: ambiguous provider record');
    return;
  }
  if (ageMs < ctx.config.reconcileWindowSeconds * 1000) return;
  if (await markDialLost(ctx.store.db, scope.lease, attemptId)) {
    // The provider has no such call: nothing is live, the slot can go.
    await releaseQuietly(ctx, scope.businessId, attemptId);
    ctx.logger.warn({ attemptId, jobId: job.id }, 'dial marked unknown: no provider record within the reconciliation window');
  }
}

async function refreshFromProvider(ctx: EngineContext, scope: ReconcileScope, job: Job): Promise<void> {
  const call = await ctx.telephony.fetchCall(scope.credentials, job.provider_call_id!);
  const progress = call
    ? progressFromProviderCall(call)
    : ({ kind: 'ended', outcome: 'failed', errorCode: 'no provider record' } as const);
  await onCallProgress(ctx, job.attempt_id!, progress, job.provider_call_id ?? undefined);
}
