/**
 * Leads. Every function takes the business id and puts it in its WHERE.
 * Bulk upsert is set-based: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT` per chunk, so
 * 100,000 leads cost a handful of statements, not 100,000.
 */
import { sql, type Kysely } from 'kysely';
import type { Page } from './runs.ts';
import type { Database, Lead } from './schema.ts';

export interface LeadUpsertRow {
  /** A fresh id, used when the row is inserted; an update keeps the existing lead's id. */
  id: string;
  phoneE164: string;
  name: string | null;
  externalId: string | null;
  /** A JSON object, serialised. */
  attributesJson: string;
}

export interface LeadUpsertResult {
  id: string;
  external_id: string | null;
  /** False when an existing lead (same external_id) was updated. */
  inserted: boolean;
}

/** Rows per statement: big enough to amortise the round trip, small enough for quick parameter encoding. */
const UPSERT_CHUNK = 5_000;

/**
 * Inserts the rows, or updates the lead with the same `external_id`: its phone is replaced, a
 * given name replaces the old one (an absent one keeps it), attributes are merged (new keys win).
 * Rows must not repeat an external_id (the caller de-duplicates). Run it inside a transaction to
 * make an import all-or-nothing.
 */
export async function upsertLeads(db: Kysely<Database>, businessId: string, rows: readonly LeadUpsertRow[]): Promise<LeadUpsertResult[]> {
  const results: LeadUpsertResult[] = [];
  for (let start = 0; start < rows.length; start += UPSERT_CHUNK) {
    const chunk = rows.slice(start, start + UPSERT_CHUNK);
    const { rows: returned } = await sql<LeadUpsertResult>`
      INSERT INTO leads (id, business_id, phone_e164, name, external_id, attributes)
      SELECT t.id, ${businessId}::uuid, t.phone, t.name, t.external_id, t.attributes::jsonb
        FROM unnest(${chunk.map((r) => r.id)}::uuid[], ${chunk.map((r) => r.phoneE164)}::text[],
                    ${chunk.map((r) => r.name)}::text[], ${chunk.map((r) => r.externalId)}::text[],
                    ${chunk.map((r) => r.attributesJson)}::text[])
             AS t(id, phone, name, external_id, attributes)
      ON CONFLICT (business_id, external_id) DO UPDATE SET
        phone_e164 = EXCLUDED.phone_e164,
        name = COALESCE(EXCLUDED.name, leads.name),
        attributes = leads.attributes || EXCLUDED.attributes,
        updated_at = now()
      RETURNING id, external_id, (xmax = 0) AS inserted`.execute(db);
    results.push(...returned);
  }
  return results;
}

export async function getLead(db: Kysely<Database>, businessId: string, leadId: string): Promise<Lead | undefined> {
  return db.selectFrom('leads').selectAll().where('business_id', '=', businessId).where('id', '=', leadId).executeTakeFirst();
}

export interface LeadSearch {
  /** Case-insensitive substring of the name or external id. */
  text?: string;
  /** An exact phone (E.164), when the search text was a phone number. */
  phoneE164?: string;
  /** Digits found in the phone, when the search text looked like part of a number. */
  phoneDigits?: string;
}

function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Newest first; the cursor is the last id seen (ids are time-ordered). */
export async function listLeads(
  db: Kysely<Database>,
  businessId: string,
  options: { cursor?: string; limit: number; search?: LeadSearch },
): Promise<Page<Lead>> {
  let query = db.selectFrom('leads').selectAll().where('business_id', '=', businessId);
  const search = options.search;
  if (search) {
    query = query.where((eb) => {
      const any = [];
      if (search.text !== undefined) {
        const pattern = likePattern(search.text);
        any.push(eb('name', 'ilike', pattern), eb('external_id', 'ilike', pattern));
      }
      if (search.phoneE164 !== undefined) any.push(eb('phone_e164', '=', search.phoneE164));
      if (search.phoneDigits !== undefined) any.push(eb('phone_e164', 'like', likePattern(search.phoneDigits)));
      return eb.or(any);
    });
  }
  if (options.cursor) query = query.where('id', '<', options.cursor);
  const rows = await query.orderBy('id', 'desc').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.id ?? null) : null };
}
