/** The {@link RunControl} every API process uses; semantics are documented in run-control.ts. */
import { ConflictError, NotFoundError } from '../domain/errors.ts';
import type { Actor } from '../store/audit.ts';
import { loadBusinessForDispatch } from '../store/dispatch.ts';
import { hangUpLiveCalls } from './call-life.ts';
import { countDialsInFlight, finalizeRequestedRun, requestRunFlag, type RunFlag } from '../store/run-flags.ts';
import { getRun } from '../store/runs.ts';
import type { EngineContext } from './context.ts';
import { resolveCredentials } from './credentials.ts';
import { publishRunEvent } from './run-events.ts';
import type { RunControl, StopResult } from './run-control.ts';

/** Longest a cancel/stop response waits for dials already committed to reach the provider. */
const IN_FLIGHT_WAIT_MS = 5000;

export function createRunControl(ctx: Omit<EngineContext, 'slots'>): RunControl {
  async function request(businessId: string, runId: string, flag: RunFlag, actor: Actor): Promise<StopResult> {
    const result = await requestRunFlag(ctx.store.db, businessId, runId, flag, actor);
    if (result.kind === 'not_found') throw new NotFoundError('run');
    if (result.kind === 'already_ended') {
      throw new ConflictError(
        'run_already_ended',
        { en: `the run has already ended (status: ${result.run.status})`, he: `ההרצה כבר הסתיימה (סטטוס: ${result.run.status})` },
        { status: result.run.status },
      );
    }
    await publishRunEvent(ctx.store.notifier, { kind: flag === 'cancel' ? 'cancel_requested' : 'stop_requested', runId, businessId });
    await waitForDialsInFlight(businessId, runId, result.flagAt);
    if (flag === 'stop') await hangUpRun(businessId, runId);
    const ended = await finalizeRequestedRun(ctx.store.db, businessId, runId);
    if (ended) await publishRunEvent(ctx.store.notifier, { kind: 'ended', runId, businessId });
    // The run's worker may have ended it meanwhile: answer with the run as it is now.
    const current = ended ?? (await getRun(ctx.store.db, businessId, runId)) ?? result.run;
    return { run: current, cancelledJobs: result.cancelledJobs };
  }

  /**
   * Dials committed before the flag may still be on their way to the provider. Wait (bounded)
   * until each has its provider call id, so no dial leaves after the response.
   */
  async function waitForDialsInFlight(businessId: string, runId: string, flagAt: Date): Promise<void> {
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    for (let pause = 5; Date.now() < deadline; pause = Math.min(pause * 2, 100)) {
      if ((await countDialsInFlight(ctx.store.db, businessId, runId, flagAt)) === 0) return;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    ctx.logger.warn({ runId }, 'dials committed before the request have not reached the provider yet');
  }

  /** Stop hangs up every call it can see; the worker (or a takeover) repeats it for later ones. */
  async function hangUpRun(businessId: string, runId: string): Promise<void> {
    const business = await loadBusinessForDispatch(ctx.store.db, businessId);
    const credentials = business && resolveCredentials(business.provider_credentials_ref, ctx.config);
    if (credentials) await hangUpLiveCalls(ctx, { runId, businessId }, credentials);
  }

  return {
    cancel: (businessId, runId, actor) => request(businessId, runId, 'cancel', actor),
    stop: (businessId, runId, actor) => request(businessId, runId, 'stop', actor),
  };
}
