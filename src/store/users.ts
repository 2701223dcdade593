/** Users. Tenant functions take the business id and put it in their WHERE; the admin look-up says so in its name. */
import type { Kysely } from 'kysely';
import type { RoleName } from '../domain/roles.ts';
import type { Page } from './runs.ts';
import type { Database, User } from './schema.ts';

export interface NewUser {
  id: string;
  businessId: string;
  email: string;
  name: string | null;
  role: RoleName;
}

/** @throws the driver's unique violation (23505) when the email is taken in this business. */
export async function insertUser(db: Kysely<Database>, user: NewUser): Promise<User> {
  return db
    .insertInto('users')
    .values({ id: user.id, business_id: user.businessId, email: user.email, name: user.name, role: user.role })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function getUser(db: Kysely<Database>, businessId: string, userId: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('business_id', '=', businessId).where('id', '=', userId).executeTakeFirst();
}

/** Oldest first (owners usually come first); the cursor is the last id seen. */
export async function listUsers(db: Kysely<Database>, businessId: string, options: { cursor?: string; limit: number }): Promise<Page<User>> {
  let query = db.selectFrom('users').selectAll().where('business_id', '=', businessId);
  if (options.cursor) query = query.where('id', '>', options.cursor);
  const rows = await query.orderBy('id').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
}

/** System admin (and CLI) only: a user of any business. */
export async function getUserForAdmin(db: Kysely<Database>, userId: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
}
