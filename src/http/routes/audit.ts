/**
 * `GET /api/audit`: the business's audit trail, newest first. Owner and admin only: it names
 * every user and worker that acted, which is management information, not campaign data.
 */
import type { FastifyPluginAsync } from 'fastify';
import { listAudit } from '../../store/audit.ts';
import type { AppDeps } from '../context.ts';
import { requireRole } from '../auth.ts';
import { AuditEventSchema, ListAuditQuery, pageOf } from '../schemas.ts';
import { serializeAuditEvent } from '../serialize.ts';

export const auditRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get<{ Querystring: ListAuditQuery }>(
    '/api/audit',
    {
      schema: {
        tags: ['audit'],
        summary: "The business's audit events, newest first; owner and admin only",
        querystring: ListAuditQuery,
        response: { 200: pageOf(AuditEventSchema, 'pass as cursor for the next page') },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'admin');
      const { cursor, limit = 50 } = request.query;
      const page = await listAudit(deps.store.db, auth.businessId, { cursor, limit });
      return { items: page.items.map(serializeAuditEvent), next_cursor: page.nextCursor };
    },
  );
};
