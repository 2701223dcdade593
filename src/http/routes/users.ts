/**
 * The caller and their business's users: `GET /api/me` (any role), and for owners and admins
 * `GET /api/users`, `POST /api/users`, `GET /api/users/:id`. Nobody grants a role above their
 * own: an admin cannot create an owner.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { createUser } from '../../admin/service.ts';
import { ForbiddenError, NotFoundError } from '../../domain/errors.ts';
import { mayManageRole } from '../../domain/roles.ts';
import { getOwnBusiness } from '../../store/businesses.ts';
import { getUser, listUsers } from '../../store/users.ts';
import { BusinessSchema, CreateUserBody, IdParams, PageQuery, serializeBusiness, serializeUser, UserSchema } from '../account-schemas.ts';
import type { TypeBoxTypeProvider } from '../app.ts';
import { actorOf, requireRole } from '../auth.ts';
import type { AppDeps } from '../context.ts';
import { pageOf } from '../schemas.ts';
import { notFoundUnlessOwned } from '../security.ts';

const tags = ['users'];

export const userRoutes: FastifyPluginAsync<AppDeps> = async (instance, deps) => {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/api/me',
    {
      schema: {
        tags,
        summary: 'Who the token belongs to, and their business',
        response: { 200: Type.Object({ user: UserSchema, business: BusinessSchema, token_id: Type.String() }) },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const [user, business] = await Promise.all([getUser(deps.store.db, auth.businessId, auth.userId), getOwnBusiness(deps.store.db, auth.businessId)]);
      if (!user) throw new NotFoundError('user');
      if (!business) throw new NotFoundError('business');
      return { user: serializeUser(user), business: serializeBusiness(business), token_id: auth.tokenId };
    },
  );

  app.get(
    '/api/users',
    { schema: { tags, summary: "The business's users (owner and admin)", querystring: PageQuery, response: { 200: pageOf(UserSchema, 'pass as cursor for the next page') } } },
    async (request) => {
      const auth = requireRole(request, 'admin', 'list users');
      const { cursor, limit = 100 } = request.query;
      const page = await listUsers(deps.store.db, auth.businessId, { limit, ...(cursor === undefined ? {} : { cursor }) });
      return { items: page.items.map(serializeUser), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/api/users',
    { schema: { tags, summary: 'Create a user in the business (owner and admin; no role above your own)', body: CreateUserBody, response: { 201: UserSchema } } },
    async (request, reply) => {
      const auth = requireRole(request, 'admin', 'create users');
      if (!mayManageRole(auth.role, request.body.role)) throw new ForbiddenError(`create a user with role ${request.body.role}`);
      const user = await createUser(
        deps.store.db,
        { businessId: auth.businessId, email: request.body.email, name: request.body.name ?? null, role: request.body.role },
        actorOf(auth),
      );
      return reply.code(201).send(serializeUser(user));
    },
  );

  app.get(
    '/api/users/:id',
    { schema: { tags, summary: 'One user of the business (owner and admin)', params: IdParams, response: { 200: UserSchema } } },
    async (request) => {
      const auth = requireRole(request, 'admin', 'read users');
      const user = await getUser(deps.store.db, auth.businessId, request.params.id);
      return serializeUser(await notFoundUnlessOwned(deps, request, 'user', request.params.id, user));
    },
  );
};
