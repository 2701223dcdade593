/** The audit trail: append-only (a trigger refuses UPDATE and DELETE), read per business. */
import type { Kysely } from 'kysely';
import { newId } from './ids.ts';
import type { AuditEvent, Database } from './schema.ts';

export interface Actor {
  type: 'user' | 'worker' | 'admin' | 'system';
  /** A user id, a worker id (`hostname:pid`), or `admin`. */
  id: string;
}

export interface AuditEntry {
  businessId: string | null;
  actor: Actor;
  action: string;
  targetType: string;
  targetId: string;
  /** Before/after status and whatever else explains the action. */
  data?: Record<string, unknown>;
}

export async function appendAudit(db: Kysely<Database>, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      id: newId(),
      business_id: entry.businessId,
      actor_type: entry.actor.type,
      actor_id: entry.actor.id,
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId,
      data: JSON.stringify(entry.data ?? {}),
    })
    .execute();
}

/** Newest first; the cursor is the last id seen. */
export async function listAudit(
  db: Kysely<Database>,
  businessId: string,
  options: { cursor?: string; limit: number },
): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
  let query = db.selectFrom('audit_events').selectAll().where('business_id', '=', businessId);
  if (options.cursor) query = query.where('id', '<', options.cursor);
  const rows = await query.orderBy('id', 'desc').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
}
