/**
 * The run API: create, list, read, list jobs, cancel, stop. `GET /api/outbound/runs/:id` is also
 * the old system's path of the same name (its field names are aliases in the run object).
 */
import type { FastifyPluginAsync } from 'fastify';
import { ValidationError } from '../../domain/errors.ts';
import { listJobs, listRuns } from '../../store/runs.ts';
import type { AppDeps } from '../context.ts';
import { requireRole } from '../auth.ts';
import { controlRun, loadRun, noStore, runNotFound } from '../run-access.ts';
import { createRunForCaller } from '../run-create.ts';
import {
  CreateRunBody,
  JobSchema,
  ListJobsQuery,
  ListRunsQuery,
  pageOf,
  RUN_CREATE_BODY_LIMIT,
  RunControlResponse,
  RunIdParams,
  RunSchema,
} from '../schemas.ts';
import { serializeJob, serializeRun } from '../serialize.ts';

const tags = ['runs'];

export const runRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.addHook('onSend', noStore);

  app.post<{ Body: CreateRunBody }>(
    '/api/outbound/runs',
    {
      bodyLimit: RUN_CREATE_BODY_LIMIT,
      schema: {
        tags,
        summary: 'Create a run over the given leads (or all leads); agent and above',
        body: CreateRunBody,
        response: { 201: RunSchema },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent');
      const { lead_ids: leadIds, all_leads: allLeads, name, concurrency } = request.body;
      if ((leadIds === undefined) === (allLeads !== true)) {
        throw new ValidationError(
          { en: 'give either lead_ids or all_leads: true', he: 'יש לשלוח lead_ids או all_leads: true (אחד מהם)' },
          { field: 'lead_ids' },
        );
      }
      const run = await createRunForCaller(deps, request, auth, {
        leads: leadIds ? { ids: leadIds } : { all: true },
        name: name ?? null,
        concurrency,
        source: 'api',
      });
      return reply.code(201).send(serializeRun(run));
    },
  );

  app.get<{ Querystring: ListRunsQuery }>(
    '/api/outbound/runs',
    {
      schema: {
        tags,
        summary: "The business's runs, newest first",
        querystring: ListRunsQuery,
        response: { 200: pageOf(RunSchema, 'pass as cursor for the next page') },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const { status, cursor, limit = 50 } = request.query;
      const page = await listRuns(deps.store.db, auth.businessId, { status, cursor, limit });
      return { items: page.items.map(serializeRun), next_cursor: page.nextCursor };
    },
  );

  app.get<{ Params: RunIdParams }>(
    '/api/outbound/runs/:id',
    {
      // Polled by dashboards: the token look-up reads the run too (one round trip).
      config: { authReadsRun: 'id' },
      schema: {
        tags,
        summary: 'One run, every field at the top level (also the old path of the same name)',
        params: RunIdParams,
        response: { 200: RunSchema },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      return serializeRun(await loadRun(deps, request, auth, request.params.id));
    },
  );

  app.get<{ Params: RunIdParams; Querystring: ListJobsQuery }>(
    '/api/outbound/runs/:id/jobs',
    {
      schema: {
        tags,
        summary: "A run's jobs in dial order, with the lead's phone and name",
        params: RunIdParams,
        querystring: ListJobsQuery,
        response: { 200: pageOf(JobSchema, 'a position; pass as cursor for the next page') },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const { status, cursor, limit = 100 } = request.query;
      const page = await listJobs(deps.store.db, auth.businessId, request.params.id, { status, cursor, limit });
      if (!page) return runNotFound(deps, request, request.params.id);
      return { items: page.items.map(serializeJob), next_cursor: page.nextCursor === null ? null : String(page.nextCursor) };
    },
  );

  for (const action of ['cancel', 'stop'] as const) {
    app.post<{ Params: RunIdParams }>(
      `/api/outbound/runs/:id/${action}`,
      {
        schema: {
          tags,
          summary:
            action === 'cancel'
              ? 'Cancel gracefully: no new dial, queued jobs cancelled, live calls finish (202); agent and above'
              : 'Stop now: as cancel, and live calls are hung up (200); agent and above',
          params: RunIdParams,
          response: { [action === 'cancel' ? 202 : 200]: RunControlResponse },
        },
      },
      async (request, reply) => {
        const auth = requireRole(request, 'agent');
        const result = await controlRun(deps, request, auth, action, request.params.id);
        return reply.code(action === 'cancel' ? 202 : 200).send({ ...serializeRun(result.run), cancelled_jobs: result.cancelledJobs });
      },
    );
  }
};
