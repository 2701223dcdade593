/**
 * Creating businesses, users and tokens, and revoking tokens: one implementation for the system
 * admin API, the tenant owner/admin API and the CLI. Each change and its audit event commit together.
 */
import type { Kysely } from 'kysely';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { isSupportedRegion } from '../domain/phone.ts';
import type { RoleName } from '../domain/roles.ts';
import { appendAudit, type Actor } from '../store/audit.ts';
import { getBusinessForAdmin, insertBusiness, updateBusinessForAdmin, type BusinessSettings } from '../store/businesses.ts';
import { newId } from '../store/ids.ts';
import type { ApiToken, Business, Database, User } from '../store/schema.ts';
import { generateApiToken, getApiToken, getApiTokenForAdmin, insertApiToken, revokeApiToken } from '../store/tokens.ts';
import { getUser, getUserForAdmin, insertUser } from '../store/users.ts';

/** The actor of system-admin actions (API admin token or CLI). */
export const SYSTEM_ADMIN: Actor = { type: 'admin', id: 'admin' };

function invalid(field: string, en: string, he: string): ValidationError {
  return new ValidationError({ en: `${field}: ${en}`, he: `${field}: ${he}` }, { field });
}

/** Checks what the JSON schema cannot: a real IANA zone and a region libphonenumber knows. */
function checkSettings(settings: Partial<BusinessSettings>): void {
  if (settings.timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: settings.timezone });
    } catch {
      throw invalid('timezone', `unknown IANA time zone "${settings.timezone}"`, `אזור זמן לא מוכר "${settings.timezone}"`);
    }
  }
  if (settings.default_region !== undefined && !isSupportedRegion(settings.default_region)) {
    throw invalid('default_region', `unknown region "${settings.default_region}" (ISO 3166 alpha-2, e.g. IL)`, `אזור לא מוכר "${settings.default_region}"`);
  }
}

export async function createBusiness(db: Kysely<Database>, settings: BusinessSettings, actor: Actor = SYSTEM_ADMIN): Promise<Business> {
  checkSettings(settings);
  return db.transaction().execute(async (trx) => {
    const business = await insertBusiness(trx, newId(), settings);
    await appendAudit(trx, { businessId: business.id, actor, action: 'business.create', targetType: 'business', targetId: business.id, data: { after: settings } });
    return business;
  });
}

/** @throws NotFoundError('business') */
export async function updateBusiness(db: Kysely<Database>, businessId: string, patch: Partial<BusinessSettings>, actor: Actor = SYSTEM_ADMIN): Promise<Business> {
  checkSettings(patch);
  return db.transaction().execute(async (trx) => {
    const before = await getBusinessForAdmin(trx, businessId);
    if (!before) throw new NotFoundError('business');
    const after = await updateBusinessForAdmin(trx, businessId, patch);
    if (!after) throw new NotFoundError('business');
    const changed = Object.fromEntries(Object.keys(patch).map((key) => [key, before[key as keyof Business]]));
    await appendAudit(trx, { businessId, actor, action: 'business.update', targetType: 'business', targetId: businessId, data: { before: changed, after: patch } });
    return after;
  });
}

export interface CreateUserInput {
  businessId: string;
  email: string;
  name?: string | null;
  role: RoleName;
}

const UNIQUE_VIOLATION = '23505';

/**
 * @throws NotFoundError('business'); ConflictError `email_taken` when the business already has the email.
 */
export async function createUser(db: Kysely<Database>, input: CreateUserInput, actor: Actor = SYSTEM_ADMIN): Promise<User> {
  const email = input.email.trim().toLowerCase();
  return db.transaction().execute(async (trx) => {
    if (!(await getBusinessForAdmin(trx, input.businessId))) throw new NotFoundError('business');
    let user: User;
    try {
      user = await insertUser(trx, { id: newId(), businessId: input.businessId, email, name: input.name ?? null, role: input.role });
    } catch (error) {
      if ((error as { code?: unknown }).code === UNIQUE_VIOLATION) {
        throw new ConflictError('email_taken', { en: `a user with email ${email} already exists`, he: `כבר קיים משתמש עם הדוא"ל ${email}` }, { field: 'email' });
      }
      throw error;
    }
    await appendAudit(trx, { businessId: user.business_id, actor, action: 'user.create', targetType: 'user', targetId: user.id, data: { after: { email, role: user.role } } });
    return user;
  });
}

export interface CreatedToken {
  /** The secret, shown once. */
  token: string;
  record: ApiToken;
}

/**
 * A new token for a user. With `businessId` the user is looked up in that business only (tenant
 * routes); without it, in any business (system admin and CLI).
 *
 * @throws NotFoundError('user')
 */
export async function createToken(
  db: Kysely<Database>,
  input: { userId: string; businessId?: string; name?: string | null },
  actor: Actor = SYSTEM_ADMIN,
): Promise<CreatedToken> {
  return db.transaction().execute(async (trx) => {
    const user = input.businessId ? await getUser(trx, input.businessId, input.userId) : await getUserForAdmin(trx, input.userId);
    if (!user) throw new NotFoundError('user');
    const generated = generateApiToken();
    const record = await insertApiToken(trx, {
      id: newId(),
      userId: user.id,
      businessId: user.business_id,
      sha256: generated.sha256,
      prefix: generated.prefix,
      name: input.name ?? null,
    });
    await appendAudit(trx, { businessId: user.business_id, actor, action: 'token.create', targetType: 'token', targetId: record.id, data: { user_id: user.id, prefix: record.prefix } });
    return { token: generated.token, record };
  });
}

/**
 * Revokes a token; idempotent (an already revoked token is returned as is, with no new audit
 * event). With `businessId` the token is looked up in that business only.
 *
 * @throws NotFoundError('token')
 */
export async function revokeToken(db: Kysely<Database>, input: { tokenId: string; businessId?: string }, actor: Actor = SYSTEM_ADMIN): Promise<ApiToken> {
  return db.transaction().execute(async (trx) => {
    const existing = input.businessId ? await getApiToken(trx, input.businessId, input.tokenId) : await getApiTokenForAdmin(trx, input.tokenId);
    if (!existing) throw new NotFoundError('token');
    if (existing.revoked_at) return existing;
    const revoked = await revokeApiToken(trx, existing.business_id, existing.id);
    // Revoked meanwhile by a concurrent request: same outcome, and that request audited it.
    if (!revoked) return (await getApiToken(trx, existing.business_id, existing.id)) ?? existing;
    await appendAudit(trx, {
      businessId: revoked.business_id,
      actor,
      action: 'token.revoke',
      targetType: 'token',
      targetId: revoked.id,
      data: { user_id: revoked.user_id, prefix: revoked.prefix, before: { revoked: false }, after: { revoked: true } },
    });
    return revoked;
  });
}
