/**
 * The old system's outbound paths, so its clients keep working: same paths, same field names,
 * same Hebrew messages. `job_id` in them is the run id. A foreign run id answers 404 exactly as a
 * missing one (the old system's 403 told an attacker the id existed).
 * `GET /api/outbound/runs/:id` is served by runs.ts: it is the same resource.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ConflictError } from '../../domain/errors.ts';
import type { RunStatus } from '../../domain/run-state.ts';
import { getOwnBusiness } from '../../store/businesses.ts';
import { countLiveCalls, findActiveRun } from '../../store/runs.ts';
import type { AppDeps } from '../context.ts';
import {
  BulkEnqueueBody,
  BulkEnqueueConflict,
  BulkEnqueueResponse,
  CancelResponse,
  CountsResponse,
  LegacyActiveResponse,
  LegacyRunIdParams,
  LegacyStatusResponse,
  StopQueueBody,
  StopQueueResponse,
} from '../legacy-schemas.ts';
import { requireRole } from '../auth.ts';
import { controlRun, loadRun, noStore } from '../run-access.ts';
import { createRunForCaller, DEFAULT_RUN_CONCURRENCY } from '../run-create.ts';
import { RUN_CREATE_BODY_LIMIT } from '../schemas.ts';
import { serializeLegacyActive, serializeLegacyStatus } from '../serialize.ts';

const tags = ['old system paths'];
const MIN_CONCURRENCY = 1;
const MAX_CONCURRENCY = 10;

const legacyMessages = {
  missingRunId: 'חסר run_id',
  badConcurrency: `מספר שיחות במקביל חייב להיות בין ${MIN_CONCURRENCY} ל-${MAX_CONCURRENCY}`,
  activeRunExists: 'תור שיחות פעיל כבר קיים - יש לבטל אותו או להמתין לסיומו',
  cancelSent: 'בקשת ביטול נשלחה - התור יופסק בקרוב',
  stopped: (cancelled: number) => `התור נעצר (${cancelled} שיחות בוטלו, שיחות פעילות יסתיימו)`,
  alreadyEnded: (status: string) => `התור כבר הסתיים (סטטוס: ${status})`,
  alreadyInState: (status: string) => `התור כבר במצב ${status}`,
};

function legacyFailure(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return reply.code(status).send({ success: false, error: message, message, code, ...extra });
}

/** The status of an ended run from RunControl's `run_already_ended` conflict, or undefined for any other error. */
function endedStatusOf(error: unknown): RunStatus | undefined {
  if (error instanceof ConflictError && error.code === 'run_already_ended') return error.details?.status as RunStatus;
  return undefined;
}

export const legacyRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.addHook('onSend', noStore);

  app.post<{ Body: StopQueueBody }>(
    '/api/outbound/stop-queue',
    {
      // The old clients may post no body at all: that is a missing run_id, not a bad body.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags,
        summary: 'Stop a run now (old path); agent and above',
        body: StopQueueBody,
        response: { 200: StopQueueResponse },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent');
      const runId = request.body.run_id;
      if (!runId) return legacyFailure(reply, 400, 'validation_failed', legacyMessages.missingRunId, { details: { field: 'run_id' } });
      try {
        const { run, cancelledJobs } = await controlRun(deps, request, auth, 'stop', runId);
        return {
          success: true,
          message: legacyMessages.stopped(cancelledJobs),
          cancelled_jobs: cancelledJobs,
          run_id: run.id,
          status: run.status,
          already_ended: false,
        };
      } catch (error) {
        const status = endedStatusOf(error);
        if (!status) throw error;
        return { success: true, message: legacyMessages.alreadyEnded(status), cancelled_jobs: 0, run_id: runId, status, already_ended: true };
      }
    },
  );

  app.post<{ Params: LegacyRunIdParams }>(
    '/api/outbound_calls/jobs/:run_id/cancel',
    {
      schema: {
        tags,
        summary: 'Cancel a run gracefully (old path); agent and above',
        params: LegacyRunIdParams,
        response: { 200: CancelResponse },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent');
      const runId = request.params.run_id;
      try {
        const { run, cancelledJobs } = await controlRun(deps, request, auth, 'cancel', runId, 'queue');
        return { success: true, message: legacyMessages.cancelSent, run_id: run.id, job_id: run.id, status: run.status, cancelled_jobs: cancelledJobs };
      } catch (error) {
        const status = endedStatusOf(error);
        if (!status) throw error;
        return legacyFailure(reply, 400, 'run_already_ended', legacyMessages.alreadyInState(status), { status });
      }
    },
  );

  app.post<{ Body: BulkEnqueueBody }>(
    '/api/outbound/bulk-enqueue',
    {
      bodyLimit: RUN_CREATE_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Create a run over lead_ids (old path); refused while the business has an active run; agent and above',
        description: 'outbound_list_id and project_id are accepted for compatibility and ignored.',
        body: BulkEnqueueBody,
        response: { 202: BulkEnqueueResponse, 409: BulkEnqueueConflict },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent');
      const concurrency = request.body.concurrency ?? DEFAULT_RUN_CONCURRENCY;
      if (concurrency < MIN_CONCURRENCY || concurrency > MAX_CONCURRENCY) {
        return legacyFailure(reply, 400, 'validation_failed', legacyMessages.badConcurrency, { details: { field: 'concurrency' } });
      }
      try {
        const run = await createRunForCaller(deps, request, auth, {
          leads: { ids: request.body.lead_ids },
          name: null,
          concurrency,
          source: 'bulk-enqueue',
          refuseIfActive: true,
        });
        return reply.code(202).send({ success: true, run_id: run.id, job_id: run.id, queued: run.total_jobs, status: run.status });
      } catch (error) {
        if (!(error instanceof ConflictError) || error.code !== 'active_run_exists') throw error;
        const activeId = String(error.details?.active_run_id);
        return legacyFailure(reply, 409, error.code, legacyMessages.activeRunExists, {
          active_job_id: activeId,
          active_run_id: activeId,
          active_job_status: String(error.details?.active_run_status),
        });
      }
    },
  );

  app.get<{ Params: LegacyRunIdParams }>(
    '/api/outbound_calls/jobs/:run_id/status',
    {
      // Polled by the old UI: the token look-up reads the run too (one round trip).
      config: { authReadsRun: 'run_id' },
      schema: { tags, summary: "A run's progress (old path)", params: LegacyRunIdParams, response: { 200: LegacyStatusResponse } },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      return serializeLegacyStatus(await loadRun(deps, request, auth, request.params.run_id, 'queue'));
    },
  );

  app.get(
    '/api/outbound_calls/jobs/active',
    {
      schema: { tags, summary: "The business's most recent active run, or active:false (old path; always 200)", response: { 200: LegacyActiveResponse } },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      return serializeLegacyActive(await findActiveRun(deps.store.db, auth.businessId));
    },
  );

  app.get(
    '/api/outbound_calls/counts',
    {
      schema: { tags, summary: "Live calls now and the business's cap (old path)", response: { 200: CountsResponse } },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const [live, business] = await Promise.all([countLiveCalls(deps.store.db, auth.businessId), getOwnBusiness(deps.store.db, auth.businessId)]);
      const max = business?.max_concurrent_calls ?? 0;
      // Every call this product makes is outbound: both pairs are the same numbers.
      return { active_total: live, active_outbound: live, max_total: max, max_outbound: max };
    },
  );
};
