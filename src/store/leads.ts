/**
 * Leads. Every function takes the business id and puts it in its WHERE.
 * Bulk upsert is set-based: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT` per chunk, so
 * 100,000 leads cost a few dozen statements, not 100,000. The arrays travel as prebuilt array
 * literals (one text parameter each), which is cheaper than the driver's per-element encoding.
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

/** A row of an upsert that updated an existing lead (same external_id) instead of inserting. */
export interface LeadUpdated {
  /** The existing lead's id (the row's fresh id was not used). */
  id: string;
  external_id: string;
}

/** Rows per statement when {@link upsertLeads} chunks for the caller. */
const UPSERT_CHUNK = 5_000;

/** Rows encoded as PostgreSQL array literals, ready for one {@link upsertEncodedLeads} statement. */
export interface EncodedLeadRows {
  readonly count: number;
  /** False when no row carries an external_id: a plain INSERT then suffices (no conflict is possible). */
  readonly anyExternalId: boolean;
  readonly ids: string;
  readonly phones: string;
  readonly names: string;
  readonly externalIds: string;
  readonly attributes: string;
}

/** `{"a","b\\"c",NULL}`: inside double quotes only `"` and `\` need escaping. */
function arrayLiteral(values: ReadonlyArray<string | null>): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) parts[i] = 'NULL';
    else if (value.includes('"') || value.includes('\\')) parts[i] = `"${value.replace(/["\\]/g, '\\$&')}"`;
    else parts[i] = `"${value}"`;
  }
  return `{${parts.join(',')}}`;
}

/**
 * Encodes rows for one statement. Pure and synchronous, so a caller can encode the next chunk
 * while the database is still writing the previous one (the import pipeline does).
 */
export function encodeLeadRows(rows: readonly LeadUpsertRow[]): EncodedLeadRows {
  return {
    count: rows.length,
    anyExternalId: rows.some((r) => r.externalId !== null),
    ids: arrayLiteral(rows.map((r) => r.id)),
    phones: arrayLiteral(rows.map((r) => r.phoneE164)),
    names: arrayLiteral(rows.map((r) => r.name)),
    externalIds: arrayLiteral(rows.map((r) => r.externalId)),
    attributes: arrayLiteral(rows.map((r) => r.attributesJson)),
  };
}

/**
 * One set-based statement: inserts the rows, or updates the lead with the same `external_id`
 * (its phone is replaced, a given name replaces the old one while an absent one keeps it,
 * attributes are merged with new keys winning). Rows must not repeat an external_id (the caller
 * de-duplicates). Run inside a transaction to make a multi-statement import all-or-nothing.
 *
 * Returns only the rows that updated an existing lead; every other row was inserted with its own
 * id. (Returning all 100,000 rows of an import to say "inserted" cost the database and the
 * driver more than the answer is worth.)
 */
export async function upsertEncodedLeads(db: Kysely<Database>, businessId: string, rows: EncodedLeadRows): Promise<LeadUpdated[]> {
  if (rows.count === 0) return [];
  const insert = sql`
    INSERT INTO leads (id, business_id, phone_e164, name, external_id, attributes)
    SELECT t.id, ${businessId}::uuid, t.phone, t.name, t.external_id, t.attributes::jsonb
      FROM unnest(${rows.ids}::uuid[], ${rows.phones}::text[], ${rows.names}::text[],
                  ${rows.externalIds}::text[], ${rows.attributes}::text[])
           AS t(id, phone, name, external_id, attributes)`;
  // Speculative insertion (ON CONFLICT) costs about 15% more per row: only pay it when a conflict can happen.
  if (!rows.anyExternalId) {
    await insert.execute(db);
    return [];
  }
  const { rows: updated } = await sql<LeadUpdated>`
    WITH upserted AS (
      ${insert}
      ON CONFLICT (business_id, external_id) DO UPDATE SET
        phone_e164 = EXCLUDED.phone_e164,
        name = COALESCE(EXCLUDED.name, leads.name),
        attributes = leads.attributes || EXCLUDED.attributes,
        updated_at = now()
      RETURNING id, external_id, (xmax = 0) AS inserted
    )
    SELECT id, external_id FROM upserted WHERE NOT inserted`.execute(db);
  return updated;
}

/** {@link upsertEncodedLeads} over any number of rows, in chunks. */
export async function upsertLeads(db: Kysely<Database>, businessId: string, rows: readonly LeadUpsertRow[]): Promise<LeadUpdated[]> {
  const results: LeadUpdated[] = [];
  for (let start = 0; start < rows.length; start += UPSERT_CHUNK) {
    results.push(...(await upsertEncodedLeads(db, businessId, encodeLeadRows(rows.slice(start, start + UPSERT_CHUNK)))));
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
