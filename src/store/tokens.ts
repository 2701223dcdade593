/**
 * API tokens: the token format, its stored form, and the queries. A token is `ocq_` + base64url
 * of 32 random bytes; only its SHA-256 (hex) is stored, with a short display prefix.
 *
 * {@link findActiveTokenByHashForAuth} (and {@link findActiveTokenWithRunForAuth}, the same look-up with a run
 * beside it) is the one unscoped look-up here, on purpose: it is how a request finds its business
 * in the first place.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { RoleName } from '../domain/roles.ts';
import type { ApiToken, Database, Run } from './schema.ts';

export const TOKEN_PREFIX = 'ocq_';
/** `ocq_` + 43 base64url characters (32 bytes). Anything else is refused before any query. */
export const TOKEN_PATTERN = /^ocq_[A-Za-z0-9_-]{43}$/;
/** How many leading characters of a token are kept for display. */
const DISPLAY_PREFIX_LENGTH = 12;

export interface GeneratedToken {
  /** The secret: shown once, never stored. */
  token: string;
  sha256: string;
  prefix: string;
}

export function generateApiToken(): GeneratedToken {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, sha256: hashApiToken(token), prefix: token.slice(0, DISPLAY_PREFIX_LENGTH) };
}

export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface NewApiToken {
  id: string;
  userId: string;
  businessId: string;
  sha256: string;
  prefix: string;
  name: string | null;
}

export async function insertApiToken(db: Kysely<Database>, token: NewApiToken): Promise<ApiToken> {
  return db
    .insertInto('api_tokens')
    .values({
      id: token.id,
      user_id: token.userId,
      business_id: token.businessId,
      token_sha256: token.sha256,
      prefix: token.prefix,
      name: token.name,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export interface TokenIdentity {
  tokenId: string;
  userId: string;
  businessId: string;
  role: RoleName;
  lastUsedAt: Date | null;
}

/**
 * Auth only, unscoped by design: the live (unrevoked) token with this hash and its user's current
 * role. Read on every request (no cache), so a revocation or role change applies to the next one.
 */
export async function findActiveTokenByHashForAuth(db: Kysely<Database>, sha256: string): Promise<TokenIdentity | undefined> {
  const row = await db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', (join) => join.onRef('u.id', '=', 't.user_id').onRef('u.business_id', '=', 't.business_id'))
    .select(['t.id', 't.user_id', 't.business_id', 't.last_used_at', 'u.role'])
    .where('t.token_sha256', '=', sha256)
    .where('t.revoked_at', 'is', null)
    .executeTakeFirst();
  return row && { tokenId: row.id, userId: row.user_id, businessId: row.business_id, role: row.role, lastUsedAt: row.last_used_at };
}

export interface TokenIdentityWithRun {
  identity: TokenIdentity;
  /** The run with that id in the token's business; undefined when there is none there (missing, or another business's). */
  run: Run | undefined;
}

/** Stand-ins the query below is compiled with, swapped for each call's values. */
const SHA256_PARAM = '\u0000sha256';
const RUN_ID_PARAM = '\u0000run_id';

function tokenWithRunQuery(db: Kysely<Database>) {
  return db
    .selectFrom('api_tokens as t')
    .innerJoin('users as u', (join) => join.onRef('u.id', '=', 't.user_id').onRef('u.business_id', '=', 't.business_id'))
    .leftJoin('runs as r', (join) => join.onRef('r.business_id', '=', 't.business_id').on('r.id', '=', RUN_ID_PARAM))
    .select(['t.id as auth_token_id', 't.user_id as auth_user_id', 't.business_id as auth_business_id', 't.last_used_at as auth_last_used_at', 'u.role as auth_role'])
    .selectAll('r')
    .where('t.token_sha256', '=', SHA256_PARAM)
    .where('t.revoked_at', 'is', null);
}

type CompiledTokenWithRun = ReturnType<ReturnType<typeof tokenWithRunQuery>['compile']>;

/** Compiled once per database handle: building and compiling it cost ~35 µs a call, on a route polled hundreds of times a second. */
const compiledTokenWithRun = new WeakMap<Kysely<Database>, CompiledTokenWithRun>();

/**
 * {@link findActiveTokenByHashForAuth} and the run `runId` of the token's business, in one
 * statement: the polled `GET` of a run costs one database round trip. The run is joined on the
 * token's own business_id, so it is as scoped as `getRun(db, businessId, runId)`. `runId` must be
 * a UUID (PostgreSQL rejects anything else).
 */
export async function findActiveTokenWithRunForAuth(db: Kysely<Database>, sha256: string, runId: string): Promise<TokenIdentityWithRun | undefined> {
  let compiled = compiledTokenWithRun.get(db);
  if (!compiled) {
    compiled = tokenWithRunQuery(db).compile();
    compiledTokenWithRun.set(db, compiled);
  }
  const query: CompiledTokenWithRun = {
    ...compiled,
    parameters: compiled.parameters.map((value) => (value === SHA256_PARAM ? sha256 : value === RUN_ID_PARAM ? runId : value)),
  };
  const row = (await db.executeQuery(query)).rows[0];
  if (!row) return undefined;
  const { auth_token_id: tokenId, auth_user_id: userId, auth_business_id: businessId, auth_last_used_at: lastUsedAt, auth_role: role, ...run } = row;
  // The left join's columns are all null when no run matched; with its primary key present, the row is a whole run.
  return { identity: { tokenId, userId, businessId, role, lastUsedAt }, run: run.id === null ? undefined : (run as Run) };
}

/** Sets last_used_at unless another request (or process) did so in the last minute. */
export async function touchTokenLastUsed(db: Kysely<Database>, businessId: string, tokenId: string): Promise<void> {
  await db
    .updateTable('api_tokens')
    .set({ last_used_at: sql<Date>`now()` })
    .where('business_id', '=', businessId)
    .where('id', '=', tokenId)
    .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]))
    .execute();
}

export async function getApiToken(db: Kysely<Database>, businessId: string, tokenId: string): Promise<ApiToken | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('business_id', '=', businessId).where('id', '=', tokenId).executeTakeFirst();
}

/** System admin (and CLI) only: a token of any business. */
export async function getApiTokenForAdmin(db: Kysely<Database>, tokenId: string): Promise<ApiToken | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('id', '=', tokenId).executeTakeFirst();
}

/** Newest first; the cursor is the last id seen. */
export async function listApiTokens(
  db: Kysely<Database>,
  businessId: string,
  options: { userId?: string; cursor?: string; limit: number },
): Promise<{ items: ApiToken[]; nextCursor: string | null }> {
  let query = db.selectFrom('api_tokens').selectAll().where('business_id', '=', businessId);
  if (options.userId) query = query.where('user_id', '=', options.userId);
  if (options.cursor) query = query.where('id', '<', options.cursor);
  const rows = await query.orderBy('id', 'desc').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
}

/** Revokes a live token; undefined when it is missing, not this business's, or already revoked. */
export async function revokeApiToken(db: Kysely<Database>, businessId: string, tokenId: string): Promise<ApiToken | undefined> {
  return db
    .updateTable('api_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('business_id', '=', businessId)
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
}
