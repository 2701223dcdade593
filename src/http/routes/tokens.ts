/**
 * API tokens of the business, for owners and admins: create one for a user
 * (`POST /api/users/:id/tokens`, the secret is in that response only), list them (display prefix
 * only), revoke one (`POST /api/tokens/:id/revoke`, idempotent). Any user may also revoke their
 * own token. Nobody manages the tokens of a role above their own.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createToken, revokeToken } from '../../admin/service.ts';
import { ForbiddenError } from '../../domain/errors.ts';
import { mayManageRole } from '../../domain/roles.ts';
import { getApiToken, listApiTokens } from '../../store/tokens.ts';
import { getUser } from '../../store/users.ts';
import type { User } from '../../store/schema.ts';
import { CreatedTokenSchema, CreateTokenBody, IdParams, PageQuery, serializeCreatedToken, serializeToken, TokenSchema } from '../account-schemas.ts';
import type { TypeBoxTypeProvider } from '../app.ts';
import { actorOf, requireRole } from '../auth.ts';
import type { AppDeps, AuthContext } from '../context.ts';
import { pageOf, Uuid } from '../schemas.ts';
import { notFoundUnlessOwned } from '../security.ts';

const tags = ['tokens'];

const ListTokensQuery = Type.Composite([PageQuery, Type.Object({ user_id: Type.Optional(Uuid('only this user\'s tokens')) })]);

function assertMayManage(auth: AuthContext, user: User, action: string): void {
  if (!mayManageRole(auth.role, user.role)) throw new ForbiddenError(action);
}

export const tokenRoutes: FastifyPluginAsync<AppDeps> = async (instance, deps) => {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();

  const userOfBusiness = async (request: FastifyRequest, auth: AuthContext, userId: string): Promise<User> =>
    notFoundUnlessOwned(deps, request, 'user', userId, await getUser(deps.store.db, auth.businessId, userId));

  app.post(
    '/api/users/:id/tokens',
    {
      schema: {
        tags,
        summary: 'Create an API token for a user of the business (owner and admin); the token is shown once',
        params: IdParams,
        body: CreateTokenBody,
        response: { 201: CreatedTokenSchema },
      },
      // The body is optional: no body means no name.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'admin', 'create tokens');
      const user = await userOfBusiness(request, auth, request.params.id);
      assertMayManage(auth, user, `create a token for a user with role ${user.role}`);
      const created = await createToken(deps.store.db, { userId: user.id, businessId: auth.businessId, name: request.body.name ?? null }, actorOf(auth));
      return reply.code(201).send(serializeCreatedToken(created));
    },
  );

  app.get(
    '/api/tokens',
    {
      schema: { tags, summary: "The business's tokens, newest first (owner and admin); prefix only", querystring: ListTokensQuery, response: { 200: pageOf(TokenSchema, 'pass as cursor for the next page') } },
    },
    async (request) => {
      const auth = requireRole(request, 'admin', 'list tokens');
      const { cursor, limit = 100, user_id: userId } = request.query;
      const page = await listApiTokens(deps.store.db, auth.businessId, {
        limit,
        ...(cursor === undefined ? {} : { cursor }),
        ...(userId === undefined ? {} : { userId }),
      });
      return { items: page.items.map(serializeToken), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/api/tokens/:id/revoke',
    {
      schema: {
        tags,
        summary: 'Revoke a token (owner and admin, or the token\'s own user); takes effect on the next request; idempotent',
        params: IdParams,
        response: { 200: TokenSchema },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const tokenId = request.params.id;
      const token = await notFoundUnlessOwned(deps, request, 'token', tokenId, await getApiToken(deps.store.db, auth.businessId, tokenId));
      if (token.user_id !== auth.userId) {
        requireRole(request, 'admin', 'revoke the tokens of other users');
        const owner = await userOfBusiness(request, auth, token.user_id);
        assertMayManage(auth, owner, `revoke a token of a user with role ${owner.role}`);
      }
      return serializeToken(await revokeToken(deps.store.db, { tokenId, businessId: auth.businessId }, actorOf(auth)));
    },
  );
};
