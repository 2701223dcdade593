/**
 * Every run route reads its run through here: the business-scoped store look-up, and on a miss
 * the security report and the same 404 a missing run gets, so the caller cannot tell "not
 * yours" from "does not exist".
 */
import type { FastifyRequest } from 'fastify';
import { NotFoundError } from '../domain/errors.ts';
import { getRun } from '../store/runs.ts';
import type { Run } from '../store/schema.ts';
import type { AppDeps, AuthContext } from './context.ts';
import { reportForeignAccess } from './security.ts';

/** `queue` words the 404 as the old `/api/outbound_calls/jobs/...` paths did ("תור לא נמצא"). */
export type RunNoun = 'run' | 'queue';

/** Reports the id (a security event if another business owns it), then fails with 404. */
export async function runNotFound(deps: AppDeps, request: FastifyRequest, runId: string, noun: RunNoun = 'run'): Promise<never> {
  await reportForeignAccess(deps, request, 'run', runId);
  throw new NotFoundError(noun);
}

/** The caller's run, or the 404 of {@link runNotFound}. */
export async function loadRun(deps: AppDeps, request: FastifyRequest, auth: AuthContext, runId: string, noun: RunNoun = 'run'): Promise<Run> {
  const run = await getRun(deps.store.db, auth.businessId, runId);
  return run ?? runNotFound(deps, request, runId, noun);
}
