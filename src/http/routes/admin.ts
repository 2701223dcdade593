/**
 * The system admin API, `/api/admin/*`, authenticated by `OCQ_ADMIN_TOKEN` (absent, 404, when
 * that is unset): businesses (create, list, read, patch), their users, tokens for any user,
 * token revocation, and the cross-business security log. The admin sees every business, so a
 * missing id here is a plain 404 with no security event.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { createBusiness, createToken, createUser, revokeToken, SYSTEM_ADMIN, updateBusiness } from '../../admin/service.ts';
import { NotFoundError } from '../../domain/errors.ts';
import { getBusinessForAdmin, listBusinessesForAdmin } from '../../store/businesses.ts';
import { listSecurityEventsForAdmin } from '../../store/security-events.ts';
import { listUsers } from '../../store/users.ts';
import {
  BusinessSchema,
  CreateBusinessBody,
  CreatedTokenSchema,
  CreateTokenBody,
  CreateUserBody,
  IdParams,
  PageQuery,
  PatchBusinessBody,
  serializeBusiness,
  serializeCreatedToken,
  serializeToken,
  serializeUser,
  TokenSchema,
  UserSchema,
} from '../account-schemas.ts';
import type { TypeBoxTypeProvider } from '../app.ts';
import type { AppDeps } from '../context.ts';
import { Nullable, pageOf } from '../schemas.ts';

const tags = ['admin'];
const security = [{ adminToken: [] }];

const SecurityEventSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  actor_user_id: Nullable(Type.String()),
  actor_business_id: Nullable(Type.String()),
  target_type: Type.String(),
  target_id: Type.String(),
  owner_business_id: Nullable(Type.String()),
  route: Nullable(Type.String()),
  at: Type.String({ format: 'date-time' }),
});

export const adminRoutes: FastifyPluginAsync<AppDeps> = async (instance, deps) => {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  app.post(
    '/api/admin/businesses',
    { schema: { tags, security, summary: 'Create a business', body: CreateBusinessBody, response: { 201: BusinessSchema } } },
    async (request, reply) => reply.code(201).send(serializeBusiness(await createBusiness(db, request.body, SYSTEM_ADMIN))),
  );

  app.get(
    '/api/admin/businesses',
    { schema: { tags, security, summary: 'Every business, newest first', querystring: PageQuery, response: { 200: pageOf(BusinessSchema, 'pass as cursor for the next page') } } },
    async (request) => {
      const { cursor, limit = 100 } = request.query;
      const page = await listBusinessesForAdmin(db, { limit, ...(cursor === undefined ? {} : { cursor }) });
      return { items: page.items.map(serializeBusiness), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/api/admin/businesses/:id',
    { schema: { tags, security, summary: 'One business', params: IdParams, response: { 200: BusinessSchema } } },
    async (request) => {
      const business = await getBusinessForAdmin(db, request.params.id);
      if (!business) throw new NotFoundError('business');
      return serializeBusiness(business);
    },
  );

  app.patch(
    '/api/admin/businesses/:id',
    { schema: { tags, security, summary: 'Change business settings (null clears caller_id, call_handler_url, provider_credentials_ref)', params: IdParams, body: PatchBusinessBody, response: { 200: BusinessSchema } } },
    async (request) => serializeBusiness(await updateBusiness(db, request.params.id, request.body, SYSTEM_ADMIN)),
  );

  app.get(
    '/api/admin/businesses/:id/users',
    { schema: { tags, security, summary: "A business's users", params: IdParams, querystring: PageQuery, response: { 200: pageOf(UserSchema, 'pass as cursor for the next page') } } },
    async (request) => {
      if (!(await getBusinessForAdmin(db, request.params.id))) throw new NotFoundError('business');
      const { cursor, limit = 100 } = request.query;
      const page = await listUsers(db, request.params.id, { limit, ...(cursor === undefined ? {} : { cursor }) });
      return { items: page.items.map(serializeUser), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/api/admin/businesses/:id/users',
    { schema: { tags, security, summary: 'Create a user (any role, owner included) in a business', params: IdParams, body: CreateUserBody, response: { 201: UserSchema } } },
    async (request, reply) => {
      const { email, name, role } = request.body;
      const user = await createUser(db, { businessId: request.params.id, email, name: name ?? null, role }, SYSTEM_ADMIN);
      return reply.code(201).send(serializeUser(user));
    },
  );

  app.post(
    '/api/admin/users/:id/tokens',
    {
      schema: { tags, security, summary: 'Create an API token for any user; the token is shown once', params: IdParams, body: CreateTokenBody, response: { 201: CreatedTokenSchema } },
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const created = await createToken(db, { userId: request.params.id, name: request.body.name ?? null }, SYSTEM_ADMIN);
      return reply.code(201).send(serializeCreatedToken(created));
    },
  );

  app.post(
    '/api/admin/tokens/:id/revoke',
    { schema: { tags, security, summary: 'Revoke any token; idempotent', params: IdParams, response: { 200: TokenSchema } } },
    async (request) => serializeToken(await revokeToken(db, { tokenId: request.params.id }, SYSTEM_ADMIN)),
  );

  app.get(
    '/api/admin/security-events',
    {
      schema: {
        tags,
        security,
        summary: 'The latest cross-business access attempts, newest first',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }),
        response: { 200: Type.Object({ items: Type.Array(SecurityEventSchema) }) },
      },
    },
    async (request) => {
      const rows = await listSecurityEventsForAdmin(db, { limit: request.query.limit ?? 100 });
      return { items: rows.map((row) => ({ ...row, at: row.at.toISOString() })) };
    },
  );
};
