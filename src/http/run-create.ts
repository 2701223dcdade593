/**
 * Creating a run for an API caller, shared by `POST /api/outbound/runs` and the old
 * `POST /api/outbound/bulk-enqueue`: the run, its jobs and its audit event commit together; then
 * workers are woken.
 */
import type { FastifyRequest } from 'fastify';
import { NotFoundError } from '../domain/errors.ts';
import { publishRunEvent } from '../engine/run-events.ts';
import { appendAudit } from '../store/audit.ts';
import { getOwnBusiness } from '../store/businesses.ts';
import { createRunWith, leadIdsNotInBusiness, type CreateRunInput } from '../store/runs.ts';
import type { Run } from '../store/schema.ts';
import type { AppDeps, AuthContext } from './context.ts';
import { actorOf } from './auth.ts';
import { reportForeignAccess } from './security.ts';

export const DEFAULT_RUN_CONCURRENCY = 3;
/** Security events written for one request naming leads it cannot see: enough to see the pattern. */
const MAX_REPORTED_LEADS = 10;

export interface RunRequest {
  leads: CreateRunInput['leads'];
  name: string | null;
  /** Omitted: min(3, the business's max_concurrent_calls). */
  concurrency: number | undefined;
  /** Which endpoint created it, for the audit trail. */
  source: 'api' | 'bulk-enqueue';
  /** The old bulk-enqueue rule: one active run per business. */
  refuseIfActive?: boolean;
}

export async function createRunForCaller(deps: AppDeps, request: FastifyRequest, auth: AuthContext, input: RunRequest): Promise<Run> {
  const db = deps.store.db;
  const concurrency =
    input.concurrency ?? Math.min(DEFAULT_RUN_CONCURRENCY, (await getOwnBusiness(db, auth.businessId))?.max_concurrent_calls ?? DEFAULT_RUN_CONCURRENCY);
  let run: Run;
  try {
    run = await createRunWith(
      db,
      { businessId: auth.businessId, createdByUserId: auth.userId, name: input.name, concurrency, leads: input.leads },
      {
        refuseIfActive: input.refuseIfActive ?? false,
        inTransaction: (trx, created) =>
          appendAudit(trx, {
            businessId: auth.businessId,
            actor: actorOf(auth),
            action: 'run.create',
            targetType: 'run',
            targetId: created.id,
            data: { before: null, after: created.status, total: created.total_jobs, concurrency, name: input.name, source: input.source },
          }),
      },
    );
  } catch (error) {
    if (error instanceof NotFoundError && 'ids' in input.leads) await reportUnseenLeads(deps, request, auth, input.leads.ids);
    throw error;
  }
  // After commit: a worker woken earlier would not see the run. A lost notification only delays
  // the start until the workers' safety poll.
  await publishRunEvent(deps.store.notifier, { kind: 'created', runId: run.id, businessId: auth.businessId }).catch((error: unknown) =>
    deps.logger.warn({ err: error, runId: run.id }, 'run created but the wake-up notification failed'),
  );
  return run;
}

async function reportUnseenLeads(deps: AppDeps, request: FastifyRequest, auth: AuthContext, leadIds: readonly string[]): Promise<void> {
  const unseen = await leadIdsNotInBusiness(deps.store.db, auth.businessId, leadIds, MAX_REPORTED_LEADS);
  for (const leadId of unseen) await reportForeignAccess(deps, request, 'lead', leadId);
}
