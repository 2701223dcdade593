/**
 * TypeBox schemas and serializers of the account resources: businesses, users, API tokens, and
 * the request bodies that create them. Serializers return exactly the schemas' shapes, so the
 * OpenAPI document and the responses cannot drift apart. Secrets never appear here: a token
 * record carries only its display prefix; the token itself is returned once, at creation.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ROLES } from '../domain/roles.ts';
import type { ApiToken, Business, User } from '../store/schema.ts';
import { Nullable, SafeText, Uuid } from './schemas.ts';

const IsoTime = Type.String({ format: 'date-time' });
const iso = (value: Date | null): string | null => (value ? value.toISOString() : null);

export const RoleSchema = Type.Union(ROLES.map((role) => Type.Literal(role)));
export const IdParams = Type.Object({ id: Uuid() });

export const PageQuery = Type.Object({
  cursor: Type.Optional(Uuid('next_cursor of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});

const E164 = Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164, e.g. +972501234567' });

/** Writable business settings; every one optional (PATCH), `name` required on create. */
const businessSettings = {
  max_concurrent_calls: Type.Integer({ minimum: 1, maximum: 100, description: 'live calls at once, across all runs (default 3)' }),
  caller_id: Nullable(E164),
  timezone: Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone (default Asia/Jerusalem)' }),
  default_region: Type.String({ pattern: '^[A-Z]{2}$', description: 'phone numbers without a country code are read in this region (default IL)' }),
  call_handler_url: Nullable(Type.String({ maxLength: 2000, pattern: '^https?://[^\\s\\u0000]+$', description: 'TwiML URL fetched when a lead answers' })),
  ring_timeout_seconds: Type.Integer({ minimum: 5, maximum: 600 }),
  call_time_limit_seconds: Type.Integer({ minimum: 1, maximum: 14_400 }),
  machine_detection: Type.Boolean(),
  provider_credentials_ref: Nullable(Type.String({ pattern: '^env:[A-Z][A-Z0-9_]*$', maxLength: 200, description: '"env:PREFIX": credentials from PREFIX_* env vars; null = global TWILIO_*' })),
};

export const CreateBusinessBody = Type.Composite(
  [Type.Object({ name: SafeText(200, { minLength: 1 }) }), Type.Partial(Type.Object(businessSettings))],
  { additionalProperties: false },
);
export type CreateBusinessBody = Static<typeof CreateBusinessBody>;
export const PatchBusinessBody = Type.Partial(CreateBusinessBody, { additionalProperties: false, minProperties: 1 });
export type PatchBusinessBody = Static<typeof PatchBusinessBody>;

export const BusinessSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  max_concurrent_calls: Type.Integer(),
  caller_id: Nullable(Type.String()),
  timezone: Type.String(),
  default_region: Type.String(),
  call_handler_url: Nullable(Type.String()),
  ring_timeout_seconds: Type.Integer(),
  call_time_limit_seconds: Type.Integer(),
  machine_detection: Type.Boolean(),
  provider_credentials_ref: Nullable(Type.String()),
  created_at: IsoTime,
});
export type BusinessJson = Static<typeof BusinessSchema>;

export function serializeBusiness(business: Business): BusinessJson {
  return {
    id: business.id,
    name: business.name,
    max_concurrent_calls: business.max_concurrent_calls,
    caller_id: business.caller_id,
    timezone: business.timezone,
    default_region: business.default_region,
    call_handler_url: business.call_handler_url,
    ring_timeout_seconds: business.ring_timeout_seconds,
    call_time_limit_seconds: business.call_time_limit_seconds,
    machine_detection: business.machine_detection,
    provider_credentials_ref: business.provider_credentials_ref,
    created_at: business.created_at.toISOString(),
  };
}

export const CreateUserBody = Type.Object(
  {
    email: Type.String({ maxLength: 254, pattern: '^[^@\\s\\u0000]+@[^@\\s\\u0000]+$' }),
    name: Type.Optional(Nullable(SafeText(200))),
    role: RoleSchema,
  },
  { additionalProperties: false },
);
export type CreateUserBody = Static<typeof CreateUserBody>;

export const UserSchema = Type.Object({
  id: Type.String(),
  business_id: Type.String(),
  email: Type.String(),
  name: Nullable(Type.String()),
  role: RoleSchema,
  created_at: IsoTime,
});
export type UserJson = Static<typeof UserSchema>;

export function serializeUser(user: User): UserJson {
  return { id: user.id, business_id: user.business_id, email: user.email, name: user.name, role: user.role, created_at: user.created_at.toISOString() };
}

export const CreateTokenBody = Type.Object({ name: Type.Optional(Nullable(SafeText(200))) }, { additionalProperties: false });
export type CreateTokenBody = Static<typeof CreateTokenBody>;

export const TokenSchema = Type.Object({
  id: Type.String(),
  user_id: Type.String(),
  business_id: Type.String(),
  prefix: Type.String({ description: 'the first characters of the token, for recognising it' }),
  name: Nullable(Type.String()),
  created_at: IsoTime,
  last_used_at: Nullable(IsoTime),
  revoked_at: Nullable(IsoTime),
});
export type TokenJson = Static<typeof TokenSchema>;

export function serializeToken(token: ApiToken): TokenJson {
  return {
    id: token.id,
    user_id: token.user_id,
    business_id: token.business_id,
    prefix: token.prefix,
    name: token.name,
    created_at: token.created_at.toISOString(),
    last_used_at: iso(token.last_used_at),
    revoked_at: iso(token.revoked_at),
  };
}

export const CreatedTokenSchema = Type.Composite([
  TokenSchema,
  Type.Object({ token: Type.String({ description: 'the secret: shown this once, never again' }) }),
]);
export type CreatedTokenJson = Static<typeof CreatedTokenSchema>;

export function serializeCreatedToken(created: { token: string; record: ApiToken }): CreatedTokenJson {
  return { ...serializeToken(created.record), token: created.token };
}
