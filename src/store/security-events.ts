/**
 * The system-level security log: cross-business access attempts. No tenant reads it.
 * {@link findOwnerOfIdForSecurityLog} is deliberately unscoped, and only for this log: it answers
 * "whose is this id?" after a tenant-scoped look-up found nothing. Its answer never reaches the caller.
 */
import type { Kysely, Selectable } from 'kysely';
import { newId } from './ids.ts';
import type { Database, SecurityEventsTable } from './schema.ts';

/** The kinds of object a tenant route looks up by id. */
export type SecuredTarget = 'run' | 'job' | 'lead' | 'user' | 'token' | 'business';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Security log only: the business owning `targetId`, or null when no such object exists. */
export async function findOwnerOfIdForSecurityLog(db: Kysely<Database>, targetType: SecuredTarget, targetId: string): Promise<string | null> {
  if (!UUID.test(targetId)) return null;
  const owner = (row: { business_id: string } | undefined): string | null => row?.business_id ?? null;
  switch (targetType) {
    case 'run':
      return owner(await db.selectFrom('runs').select('business_id').where('id', '=', targetId).executeTakeFirst());
    case 'job':
      return owner(await db.selectFrom('jobs').select('business_id').where('id', '=', targetId).executeTakeFirst());
    case 'lead':
      return owner(await db.selectFrom('leads').select('business_id').where('id', '=', targetId).executeTakeFirst());
    case 'user':
      return owner(await db.selectFrom('users').select('business_id').where('id', '=', targetId).executeTakeFirst());
    case 'token':
      return owner(await db.selectFrom('api_tokens').select('business_id').where('id', '=', targetId).executeTakeFirst());
    case 'business':
      return (await db.selectFrom('businesses').select('id').where('id', '=', targetId).executeTakeFirst())?.id ?? null;
  }
}

export interface SecurityEventInput {
  kind: string;
  actorUserId: string | null;
  actorBusinessId: string | null;
  targetType: string;
  targetId: string;
  ownerBusinessId: string | null;
  route: string | null;
}

export async function insertSecurityEvent(db: Kysely<Database>, event: SecurityEventInput): Promise<void> {
  await db
    .insertInto('security_events')
    .values({
      id: newId(),
      kind: event.kind,
      actor_user_id: event.actorUserId,
      actor_business_id: event.actorBusinessId,
      target_type: event.targetType,
      target_id: event.targetId.slice(0, 200),
      owner_business_id: event.ownerBusinessId,
      route: event.route,
    })
    .execute();
}

/** System admin (and tests) only: the latest security events, newest first. */
export async function listSecurityEventsForAdmin(db: Kysely<Database>, options: { limit: number }): Promise<Array<Selectable<SecurityEventsTable>>> {
  return db.selectFrom('security_events').selectAll().orderBy('id', 'desc').limit(options.limit).execute();
}
