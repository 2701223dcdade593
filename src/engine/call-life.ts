/**
 * A call's whole life, top to bottom: slot, dial record, provider, webhook, release.
 *
 * reserveDial:
 *   1. slot      take a business slot (FIFO wait when full), as a short reservation
 *   2. record    commit `queued -> dialing` with a fresh attempt id, fenced by the run's lease and
 *                capped by the business's live calls in the database
 *   3. hold      extend the slot to the call's lifetime (ring + time limit + margin)
 * placeReservedCall (a run's driver sends its reserved attempts one after another, in job order):
 *   4. dial      ask the provider; the attempt id rides in the status-callback URL
 *   5. call id   store the provider's call id (the webhook may have stored it first)
 * onCallProgress:
 *   6. webhook   each status moves the job forward only; a final status ends it
 *   7. release   free the slot by attempt id (any process), wake the next waiter, tell the run
 *
 * Retryable provider errors (429, 5xx, network) back off and retry the same attempt; when the
 * request may have reached the provider, the call is looked up first, so a retry never dials
 * twice. Non-retryable ones fail the job with the reason (and, for credentials or caller id,
 * the run).
 */
import { ProviderError } from '../domain/errors.ts';
import { isTerminalJob } from '../domain/job-state.ts';
import { applyCallProgress } from '../store/call-events.ts';
import { commitDial, liveJobsOfRun, recordProviderCallId, rejectDial, type CommitDialResult } from '../store/dispatch.ts';
import { newId } from '../store/ids.ts';
import { finalizeRequestedRun } from '../store/run-flags.ts';
import type { LeaseHeld } from '../store/run-lease.ts';
import type { Business } from '../store/schema.ts';
import { classifyProviderError, mayHaveReachedProvider } from '../telephony/errors.ts';
import type { CallProgress, ProviderCall, ProviderCredentials } from '../telephony/port.ts';
import { statusCallbackUrlFor } from '../telephony/webhook-route.ts';
import { callSlotTtlMs, SLOT_RESERVATION_MS, type EngineContext } from './context.ts';
import { resolveCredentials } from './credentials.ts';
import { publishRunEvent } from './run-events.ts';

export interface DialTarget {
  jobId: string;
  phone: string;
}

export interface DialPlan {
  business: Business;
  /** The caller id to dial from (checked present by the caller). */
  from: string;
  credentials: ProviderCredentials;
  handlerUrl: string;
}

/** A dial record committed with its slot held: what {@link placeReservedCall} sends. */
export interface Reservation {
  attemptId: string;
  /** `performance.now()` before the dial record was sent: the record is no older than this. */
  recordedBy: number;
}

/** Steps 1–3: the slot is held and the dial record committed; nothing has left yet. */
export type ReserveResult =
  | { kind: 'reserved'; reservation: Reservation }
  /** Not dialled: the job was taken, the lease lost, or a cancel/stop committed first. */
  | { kind: 'not_dialed' }
  /** The database counts the business's cap as full (the slot pool lost state): wait for a call to end. */
  | { kind: 'business_full' };

/** Steps 4–5. */
export type DialResult =
  | { kind: 'dialed'; attemptId: string; providerCallId: string }
  /** The provider refused this number for good; the job failed. */
  | { kind: 'rejected'; error: ProviderError }
  /** Every dial of this run will fail the same way (credentials, caller id): fail the run. */
  | { kind: 'fatal'; error: ProviderError }
  /** Not sent: too long after its record (see {@link sendDeadlineMs}); the job failed unsent. */
  | { kind: 'too_late' };

/**
 * How `business` dials, or null when it cannot (no caller id, or no provider credentials): its
 * credentials, caller id and the TwiML URL answered calls fetch.
 */
export function dialPlanFor(business: Business, config: EngineContext['config']): DialPlan | null {
  const credentials = resolveCredentials(business.provider_credentials_ref, config);
  if (!business.caller_id || !credentials) return null;
  return {
    business,
    from: business.caller_id,
    credentials,
    handlerUrl: business.call_handler_url ?? `${config.publicUrl}/webhooks/twilio/answer`,
  };
}

const MAX_PROVIDER_TRIES = 6;

/** The reason code of a job whose dial was recorded but never sent (see {@link sendDeadlineMs}). */
export const DIAL_NOT_SENT = 'DIAL_NOT_SENT';

/**
 * Steps 1–3: slot, dial record, hold. `signal` aborts a slot wait (cancel, stop, lease lost,
 * shutdown). A `reserved` attempt must then be given to {@link placeReservedCall}: its job is
 * `dialing` and holds a slot.
 */
export async function reserveDial(
  ctx: EngineContext,
  lease: LeaseHeld,
  plan: DialPlan,
  target: DialTarget,
  signal: AbortSignal,
): Promise<ReserveResult> {
  const { business } = plan;
  const attemptId = newId();

  // 1. slot
  const waitStarted = performance.now();
  ctx.metrics?.waitingRuns.inc({ business_id: business.id });
  try {
    await ctx.slots.acquire({ businessId: business.id, attemptId, limit: business.max_concurrent_calls, ttlMs: SLOT_RESERVATION_MS }, signal);
  } finally {
    ctx.metrics?.waitingRuns.dec({ business_id: business.id });
  }
  ctx.metrics?.slotWaitSeconds.observe((performance.now() - waitStarted) / 1000);

  // 2. record, before the provider hears of it
  const recordedBy = performance.now();
  let committed: CommitDialResult | undefined;
  try {
    committed = await commitDial(ctx.store.db, lease, business.id, target.jobId, attemptId);
  } finally {
    if (committed !== 'committed') await releaseQuietly(ctx, business.id, attemptId);
  }
  if (committed === 'business_full') {
    ctx.logger.warn({ businessId: business.id }, 'slot granted but the business is at its cap in the database; waiting');
    return { kind: 'business_full' };
  }
  if (committed !== 'committed') return { kind: 'not_dialed' };

  // 3. hold for the call's lifetime (a crash before this point frees the slot within 30 s)
  if (!(await holdSlotForCall(ctx, business, attemptId, signal))) {
    await onCallProgress(ctx, attemptId, { kind: 'ended', outcome: 'canceled' }, undefined);
    return { kind: 'not_dialed' };
  }
  return { kind: 'reserved', reservation: { attemptId, recordedBy } };
}

/**
 * How long after its record a dial may still be sent: half the reconciliation window. A new
 * owner marks a dial the provider has no record of `unknown` (and frees its slot) only once the
 * window has passed since the record, so a process paused between record and send (SIGSTOP, a
 * VM freeze, a long GC) must not send when it wakes: its call would be a live call the engine
 * has written off. The monotonic clock keeps running while a process is paused; the other half
 * of the window absorbs clock skew between hosts.
 */
export function sendDeadlineMs(config: EngineContext['config']): number {
  return (config.reconcileWindowSeconds * 1000) / 2;
}

/**
 * Steps 4–5 for an attempt {@link reserveDial} reserved: dial, retrying the same attempt safely,
 * then store the call id. `signal` ends the retries (the job then fails with the last error).
 */
export async function placeReservedCall(
  ctx: EngineContext,
  lease: LeaseHeld,
  plan: DialPlan,
  target: DialTarget,
  { attemptId, recordedBy }: Reservation,
  signal: AbortSignal,
): Promise<DialResult> {
  const { business } = plan;
  const deadlineMs = sendDeadlineMs(ctx.config);
  const lateByMs = performance.now() - recordedBy - deadlineMs;
  if (lateByMs > 0) {
    ctx.logger.warn({ attemptId, runId: lease.runId, lateByMs: Math.round(lateByMs) }, 'dial not sent: too long after its record');
    await failReservedDial(ctx, lease, business.id, attemptId, `${DIAL_NOT_SENT}: not sent within ${deadlineMs / 1000} s of its record (process paused or provider stalled); not retried`);
    return { kind: 'too_late' };
  }
  // 4. dial
  const request = {
    attemptId,
    to: target.phone,
    from: plan.from,
    handlerUrl: plan.handlerUrl,
    statusCallbackUrl: statusCallbackUrlFor(ctx.config.publicUrl, attemptId),
    ringTimeoutSeconds: business.ring_timeout_seconds,
    timeLimitSeconds: business.call_time_limit_seconds,
    machineDetection: business.machine_detection,
  };
  const dialStarted = new Date(); // the adapter widens the search by its own clock-skew margin
  for (let tryNumber = 1; ; tryNumber++) {
    let call: ProviderCall | null = null;
    try {
      call = await ctx.telephony.placeCall(plan.credentials, request);
    } catch (thrown) {
      const error = classifyProviderError(thrown);
      if (error.retryable && mayHaveReachedProvider(error)) {
        const found = await ctx.telephony
          .findCallByAttempt(plan.credentials, { attemptId, to: target.phone, from: plan.from, notBefore: dialStarted })
          .catch(() => null);
        if (found && 'found' in found) call = found.found;
      }
      if (!call) {
        if (error.retryable && tryNumber < MAX_PROVIDER_TRIES && !signal.aborted) {
          ctx.logger.warn({ attemptId, tryNumber, code: error.code }, 'dial failed, retrying the same attempt');
          await delay(Math.min(250 * 2 ** (tryNumber - 1), 8000));
          continue;
        }
        await failReservedDial(ctx, lease, business.id, attemptId, `${error.code}: ${error.message}`);
        return error.fatalForRun ? { kind: 'fatal', error } : { kind: 'rejected', error };
      }
    }
    // 5. call id
    await recordProviderCallId(ctx.store.db, lease, attemptId, call.providerCallId);
    ctx.metrics?.dials.inc({ outcome: 'placed' });
    return { kind: 'dialed', attemptId, providerCallId: call.providerCallId };
  }
}

/**
 * A reserved attempt that will not be (or could not be) sent: its job fails with `reason`, its
 * slot is freed and the run is told.
 */
export async function failReservedDial(ctx: EngineContext, lease: LeaseHeld, businessId: string, attemptId: string, reason: string): Promise<void> {
  await rejectDial(ctx.store.db, lease, attemptId, reason);
  await releaseQuietly(ctx, businessId, attemptId);
  ctx.metrics?.dials.inc({ outcome: 'rejected' });
  await publishRunEvent(ctx.store.notifier, { kind: 'progress', runId: lease.runId, businessId });
}

/**
 * Turns the reservation into a slot for the call's lifetime. Fails closed: while the slot backend
 * is down nothing dials; it retries until the backend answers or the dial is called off (false:
 * the attempt was never dialled).
 */
async function holdSlotForCall(ctx: EngineContext, business: Business, attemptId: string, signal: AbortSignal): Promise<boolean> {
  const ttlMs = callSlotTtlMs(business, ctx.config);
  for (let wait = 100; !signal.aborted; wait = Math.min(wait * 2, 5000)) {
    try {
      if (await ctx.slots.extend(business.id, attemptId, ttlMs)) return true;
      // The reservation lapsed meanwhile: queue for a slot again, with the same attempt.
      await ctx.slots.acquire({ businessId: business.id, attemptId, limit: business.max_concurrent_calls, ttlMs }, signal);
      return true;
    } catch (error) {
      if (signal.aborted) break;
      ctx.logger.warn({ err: error, attemptId }, 'cannot hold the call slot; not dialling until the slot backend answers');
      await delay(wait);
    }
  }
  return false;
}

/** `ignored`: a duplicate or stale status; `unknown_attempt`: no job has this attempt id. */
export type ProgressResult = 'applied' | 'ignored' | 'unknown_attempt';

/**
 * Steps 6–7, from whichever process learns of the call's progress: the status webhook, or a
 * reconciler that fetched the call. Applies forward only; on a final status releases the slot,
 * and ends the run if it was waiting for its last call to finish a cancel or stop.
 */
export async function onCallProgress(
  ctx: EngineContext,
  attemptId: string,
  progress: CallProgress,
  providerCallId: string | undefined,
): Promise<ProgressResult> {
  const { job, ...rest } = await applyCallProgress(ctx.store.db, attemptId, progress, providerCallId);
  if (!job) return 'attemptKnown' in rest && rest.attemptKnown ? 'ignored' : 'unknown_attempt';
  const callEnded = isTerminalJob(job.status);
  if (callEnded) {
    await releaseQuietly(ctx, job.business_id, attemptId);
    ctx.metrics?.dials.inc({ outcome: job.status });
    if (job.run_winding_down && (await finalizeRequestedRun(ctx.store.db, job.business_id, job.run_id))) {
      await publishRunEvent(ctx.store.notifier, { kind: 'ended', runId: job.run_id, businessId: job.business_id });
    }
  }
  // The `progress` run event was sent by the statement that applied the change.
  return 'applied';
}

/**
 * Stop: hangs up every live call of the run that has a provider call id (completed if answered,
 * canceled while ringing: the adapter decides). The final webhooks then end the jobs. `done`
 * remembers calls already hung up, so a caller that repeats this on every wake-up asks once per
 * call; a failed hang-up is forgotten and retried next time.
 */
export async function hangUpLiveCalls(
  ctx: Pick<EngineContext, 'store' | 'telephony' | 'logger'>,
  run: { runId: string; businessId: string },
  credentials: ProviderCredentials,
  done: Set<string> = new Set(),
): Promise<void> {
  const live = await liveJobsOfRun(ctx.store.db, run.runId, run.businessId);
  await Promise.all(
    live.map(async ({ provider_call_id: callId }) => {
      if (!callId || done.has(callId)) return;
      done.add(callId);
      await ctx.telephony.hangUp(credentials, callId).catch((error: unknown) => {
        done.delete(callId);
        ctx.logger.warn({ err: error, providerCallId: callId }, 'hang-up failed; will retry');
      });
    }),
  );
}

/**
 * Releases a slot; if the slot backend is down, keeps trying in the background for a while.
 * Failing that, the slot's own expiry frees it (never before the call can have ended).
 */
export async function releaseQuietly(ctx: EngineContext, businessId: string, attemptId: string): Promise<void> {
  try {
    await ctx.slots.release(businessId, attemptId);
  } catch (error) {
    ctx.logger.warn({ err: error, businessId, attemptId }, 'slot release failed; retrying in the background');
    void (async () => {
      for (let wait = 500; wait <= 32_000; wait *= 2) {
        await delay(wait);
        try {
          await ctx.slots.release(businessId, attemptId);
          return;
        } catch {
          // Still down: the next try, or finally the slot's own expiry.
        }
      }
    })();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
