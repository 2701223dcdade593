/**
 * Businesses. A business is the tenant itself: tenant code reads only its own row
 * ({@link getOwnBusiness}); listing, reading and changing any business is the system admin's,
 * and those functions say so in their names.
 */
import type { Kysely, Updateable } from 'kysely';
import type { Page } from './runs.ts';
import type { Business, BusinessesTable, Database } from './schema.ts';

/** The settings a business is created or patched with (snake_case, as in the API). */
export interface BusinessSettings {
  name: string;
  max_concurrent_calls?: number;
  caller_id?: string | null;
  timezone?: string;
  default_region?: string;
  call_handler_url?: string | null;
  ring_timeout_seconds?: number;
  call_time_limit_seconds?: number;
  machine_detection?: boolean;
  provider_credentials_ref?: string | null;
}

export async function insertBusiness(db: Kysely<Database>, id: string, settings: BusinessSettings): Promise<Business> {
  return db.insertInto('businesses').values({ id, ...settings }).returningAll().executeTakeFirstOrThrow();
}

/** The caller's own business (tenant code): the id comes from the token, never from input. */
export async function getOwnBusiness(db: Kysely<Database>, businessId: string): Promise<Business | undefined> {
  return db.selectFrom('businesses').selectAll().where('id', '=', businessId).executeTakeFirst();
}

/** System admin only: any business by id. */
export async function getBusinessForAdmin(db: Kysely<Database>, id: string): Promise<Business | undefined> {
  return db.selectFrom('businesses').selectAll().where('id', '=', id).executeTakeFirst();
}

/** System admin only: every business, newest first; the cursor is the last id seen. */
export async function listBusinessesForAdmin(db: Kysely<Database>, options: { cursor?: string; limit: number }): Promise<Page<Business>> {
  let query = db.selectFrom('businesses').selectAll();
  if (options.cursor) query = query.where('id', '<', options.cursor);
  const rows = await query.orderBy('id', 'desc').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
}

/** System admin only: changes the given settings; undefined when there is no such business. */
export async function updateBusinessForAdmin(
  db: Kysely<Database>,
  id: string,
  patch: Partial<BusinessSettings>,
): Promise<Business | undefined> {
  const changes: Updateable<BusinessesTable> = patch;
  if (Object.keys(changes).length === 0) return getBusinessForAdmin(db, id);
  return db.updateTable('businesses').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
}
