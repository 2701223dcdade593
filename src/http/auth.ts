/**
 * Authentication and roles.
 *
 * - `/api/*` (tenant routes): `Authorization: Bearer ocq_…`. The token's SHA-256 is looked up on
 *   every request, with no cache, so revocation applies to the very next request. The token's
 *   user fixes the business (`request.auth`); nothing in a body or query can change it.
 * - `/api/admin/*`: the system admin token (`OCQ_ADMIN_TOKEN`), compared in constant time. When
 *   it is unset, the admin API does not exist (404, as for any unknown route).
 * - Everything else (health, metrics, docs, provider webhooks) is public here; webhooks verify
 *   their own signatures.
 *
 * Routes are classified by their matched route pattern, never by the raw URL, so an encoded
 * path (`/api/%61dmin/...`) cannot slip an admin route past the admin check.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthenticatedError } from '../domain/errors.ts';
import { roleAtLeast } from '../domain/roles.ts';
import type { Actor } from '../store/audit.ts';
import { findActiveTokenByHashForAuth, hashApiToken, findActiveTokenWithRunForAuth, TOKEN_PATTERN, touchTokenLastUsed, type TokenIdentity } from '../store/tokens.ts';
import type { AppDeps, AuthContext } from './context.ts';
import { routeNotFound } from './errors.ts';

/** last_used_at is written at most this often per token. */
const LAST_USED_RESOLUTION_MS = 60_000;

export const ADMIN_PREFIX = '/api/admin';

export type RouteAccess = 'public' | 'tenant' | 'admin';

/** Which credential a route pattern (or, for an unmatched request, its path) requires. */
export function routeAccess(pathOrPattern: string): RouteAccess {
  if (pathOrPattern === ADMIN_PREFIX || pathOrPattern.startsWith(`${ADMIN_PREFIX}/`)) return 'admin';
  if (pathOrPattern === '/api' || pathOrPattern.startsWith('/api/')) return 'tenant';
  return 'public';
}

function patternOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? request.url.split('?')[0] ?? request.url;
}

/** The bearer credential, or undefined when the header is absent or not `Bearer <token>`. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? '');
  return match?.[1];
}

interface PresentedToken {
  token: string;
  sha256: string;
}

/** Per request: the rate limiter (onRequest) and auth (preParsing) both need the hash; it is computed once. */
const presentedTokens = new WeakMap<FastifyRequest, PresentedToken | null>();

/** The bearer credential and its SHA-256, or null when there is none; whatever its shape (the rate limiter buckets malformed ones too). */
function presentedToken(request: FastifyRequest): PresentedToken | null {
  let presented = presentedTokens.get(request);
  if (presented === undefined) {
    const token = bearerToken(request);
    presented = token ? { token, sha256: hashApiToken(token) } : null;
    presentedTokens.set(request, presented);
  }
  return presented;
}

/** As the `format: 'uuid'` of the id params, minus the `urn:uuid:` form; anything else is left to validation (400). */
const UUID_PATTERN = /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i;

/** The route's run id when it declares `config.authReadsRun` and the param is a UUID. */
function runIdToRead(request: FastifyRequest): string | undefined {
  const param = request.routeOptions.config.authReadsRun;
  if (!param) return undefined;
  const value = (request.params as Record<string, unknown> | undefined)?.[param];
  return typeof value === 'string' && UUID_PATTERN.test(value) ? value : undefined;
}

/** The token's identity, and on `authReadsRun` routes the run too, in one statement (then `request.authRunRead`). */
async function lookUpToken(deps: AppDeps, request: FastifyRequest, sha256: string): Promise<TokenIdentity | undefined> {
  const runId = runIdToRead(request);
  if (runId === undefined) return findActiveTokenByHashForAuth(deps.store.db, sha256);
  const found = await findActiveTokenWithRunForAuth(deps.store.db, sha256, runId);
  if (!found) return undefined;
  request.authRunRead = { id: runId, run: found.run };
  return found.identity;
}

/** Resolves the tenant token into `request.auth`; throws 401 for a missing, malformed, unknown or revoked token. */
export async function authenticateTenant(deps: AppDeps, request: FastifyRequest): Promise<AuthContext> {
  const presented = presentedToken(request);
  if (!presented || !TOKEN_PATTERN.test(presented.token)) throw new UnauthenticatedError();
  const identity = await lookUpToken(deps, request, presented.sha256);
  if (!identity) throw new UnauthenticatedError();
  const auth: AuthContext = { userId: identity.userId, businessId: identity.businessId, role: identity.role, tokenId: identity.tokenId };
  request.auth = auth;
  if (!identity.lastUsedAt || Date.now() - identity.lastUsedAt.getTime() >= LAST_USED_RESOLUTION_MS) {
    await touchTokenLastUsed(deps.store.db, identity.businessId, identity.tokenId);
  }
  return auth;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Constant-time check of the system admin token; the admin API is absent (404) when none is configured. */
export function authenticateAdmin(deps: AppDeps, request: FastifyRequest): void {
  const expected = deps.config.adminToken;
  if (!expected) throw routeNotFound(request.method, request.url);
  const given = bearerToken(request);
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  if (!given || !timingSafeEqual(sha256(given), sha256(expected))) throw new UnauthenticatedError();
}

/**
 * Installs authentication as a `preParsing` hook: after the rate limiter (an `onRequest` hook),
 * before any body is read, so an unauthenticated caller cannot make us parse a large body.
 */
export function registerAuth(app: FastifyInstance, deps: AppDeps): void {
  app.addHook('preParsing', async (request) => {
    const access = routeAccess(patternOf(request));
    if (access === 'tenant') await authenticateTenant(deps, request);
    else if (access === 'admin') authenticateAdmin(deps, request);
  });
}

/**
 * The caller's auth context, provided their role is at least `minimum`
 * (owner ⊇ admin ⊇ agent ⊇ viewer).
 *
 * @throws UnauthenticatedError (401) when the request carries no tenant auth; ForbiddenError (403) for a lesser role.
 * @example
 * const auth = requireRole(request, 'agent'); // agents, admins and owners may import leads
 */
export function requireRole(request: FastifyRequest, minimum: 'viewer' | 'agent' | 'admin', action?: string): AuthContext {
  const auth = request.auth;
  if (!auth) throw new UnauthenticatedError();
  if (!roleAtLeast(auth.role, minimum)) {
    throw new ForbiddenError(action ?? `${request.method} ${request.routeOptions.url ?? request.url} (requires ${minimum})`);
  }
  return auth;
}

/** The audit actor for an authenticated request. */
export function actorOf(auth: AuthContext): Actor {
  return { type: 'user', id: auth.userId };
}

/** The rate-limit bucket: the presented credential's hash, or the client address when there is none. */
export function rateLimitKey(request: FastifyRequest): string {
  const presented = presentedToken(request);
  return presented ? `token:${presented.sha256}` : `ip:${request.ip}`;
}
