/**
 * Operations: `GET /healthz` (the process answers), `GET /readyz` (the database answers, and the
 * call-slot backend when one is configured; 503 otherwise), `GET /metrics` (Prometheus text).
 * Public: load balancers and scrapers carry no token.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import { createMetrics, runsByStateFromDatabase } from '../../metrics.ts';
import type { AppDeps } from '../context.ts';

/** A probe slower than this counts as down: a hung database must fail readiness, not hang it. */
const PROBE_TIMEOUT_MS = 2_000;
/** Asking how many slots a business that cannot exist holds is a cheap round trip to the backend. */
const PROBE_BUSINESS_ID = '00000000-0000-0000-0000-000000000000';

type CheckResult = 'ok' | 'failed' | 'not_configured';

async function probe(check: () => Promise<unknown>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'ok';
  } catch {
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}

const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({
    database: Type.String({ description: 'ok | failed' }),
    slots: Type.String({ description: 'ok | failed | not_configured (in-process slots need no probe)' }),
  }),
});

export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const metrics = deps.metrics ?? createMetrics({ collectRunsByState: runsByStateFromDatabase(deps.store.db) });
  const tags = ['operations'];

  app.get(
    '/healthz',
    { schema: { tags, summary: 'The process is up', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags,
        summary: 'The database (and Redis, when configured) answer; 503 when not',
        security: [],
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (request, reply) => {
      const slots = deps.slots;
      const [database, slotsCheck] = await Promise.all([
        probe(() => sql`SELECT 1`.execute(deps.store.db)),
        slots ? probe(() => slots.held(PROBE_BUSINESS_ID)) : Promise.resolve<CheckResult>('not_configured'),
      ]);
      const ready = database === 'ok' && slotsCheck !== 'failed';
      if (!ready) request.log.warn({ database, slots: slotsCheck }, 'not ready');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: { database, slots: slotsCheck } });
    },
  );

  app.get('/metrics', { schema: { tags, summary: 'Prometheus metrics', security: [] } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
};
