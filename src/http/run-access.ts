/**
 * Every run route reads its run through here: the business-scoped store look-up, and on a miss
 * the security report and the same 404 a missing run gets, so the caller cannot tell "not
 * yours" from "does not exist".
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError } from '../domain/errors.ts';
import { getRun } from '../store/runs.ts';
import type { Run } from '../store/schema.ts';
import type { StopResult } from '../engine/run-control.ts';
import { actorOf } from './auth.ts';
import type { AppDeps, AuthContext } from './context.ts';
import { reportForeignAccess } from './security.ts';

/** `queue` words the 404 as the old `/api/outbound_calls/jobs/...` paths did ("תור לא נמצא"). */
export type RunNoun = 'run' | 'queue';

/** Reports the id (a security event if another business owns it), then fails with 404. */
export async function runNotFound(deps: AppDeps, request: FastifyRequest, runId: string, noun: RunNoun = 'run'): Promise<never> {
  await reportForeignAccess(deps, request, 'run', runId);
  throw new NotFoundError(noun);
}

/**
 * The caller's run, or the 404 of {@link runNotFound}. On an `authReadsRun` route the auth
 * look-up has already read it (same business scope, same request): no second query.
 */
export async function loadRun(deps: AppDeps, request: FastifyRequest, auth: AuthContext, runId: string, noun: RunNoun = 'run'): Promise<Run> {
  const read = request.authRunRead;
  const run = read?.id === runId ? read.run : await getRun(deps.store.db, auth.businessId, runId);
  return run ?? runNotFound(deps, request, runId, noun);
}

/**
 * Cancels or stops the caller's run. The run control's own business-scoped look-up is the
 * ownership check (no read before it): a miss is reported and answered exactly as {@link loadRun}.
 */
export async function controlRun(
  deps: AppDeps,
  request: FastifyRequest,
  auth: AuthContext,
  action: 'cancel' | 'stop',
  runId: string,
  noun: RunNoun = 'run',
): Promise<StopResult> {
  try {
    return await deps.runControl[action](auth.businessId, runId, actorOf(auth));
  } catch (error) {
    if (error instanceof NotFoundError) return runNotFound(deps, request, runId, noun);
    throw error;
  }
}

/**
 * `onSend` hook for every run route: run state changes every second while dialling, and a
 * cached copy is a "ghost queue" (old bug #15).
 */
export async function noStore(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('cache-control', 'no-store');
}
