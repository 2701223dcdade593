/**
 * One lead import, whatever its source (JSON body or CSV file): judge each lead (phone
 * normalised in the business's region; unusable ones skipped with a reason), then write all the
 * usable ones and the audit event in one transaction, so an import is all-or-nothing.
 */
import { ValidationError } from '../domain/errors.ts';
import { DEFAULT_REGION, normalisePhone } from '../domain/phone.ts';
import { appendAudit } from '../store/audit.ts';
import { getOwnBusiness } from '../store/businesses.ts';
import { newId } from '../store/ids.ts';
import { encodeLeadRows, upsertEncodedLeads, type LeadUpdated, type LeadUpsertRow } from '../store/leads.ts';
import { actorOf } from './auth.ts';
import type { AppDeps, AuthContext } from './context.ts';

export interface LeadInput {
  phone: string;
  name?: string | null;
  external_id?: string | null;
  attributes?: Record<string, unknown>;
}

export type SkipReason =
  | 'phone_missing'
  | 'phone_invalid_characters'
  | 'phone_invalid'
  | 'duplicate_external_id'
  | 'name_too_long'
  | 'external_id_too_long'
  | 'invalid_text'
  | 'attributes_too_deep';

export interface ImportedLead {
  /** Position of the lead in the request (CSV: 0 = the first row after the header). */
  index: number;
  id: string;
  phone: string;
}

export interface ImportResult {
  import_id: string;
  created: ImportedLead[];
  updated: ImportedLead[];
  skipped: Array<{ index: number; reason: SkipReason }>;
}

const MAX_TEXT = 200;
const MAX_ATTRIBUTE_DEPTH = 8;
/** Cheap pre-filter: NUL or any surrogate. Most text has neither, and skips the precise test. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what must be found
const SUSPECT_TEXT = /[\u0000\ud800-\udfff]/;
/** PostgreSQL stores neither U+0000 nor (in jsonb) an unpaired surrogate. */
// eslint-disable-next-line no-control-regex -- as above
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function unstorable(text: string): boolean {
  return SUSPECT_TEXT.test(text) && UNSTORABLE_TEXT.test(text);
}

/** Walks the attributes without recursion (a hostile body may nest thousands deep). */
function attributesProblem(attributes: Record<string, unknown>): SkipReason | undefined {
  const values: unknown[] = [attributes];
  const depths: number[] = [0];
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop()!;
    if (typeof value === 'string') {
      if (unstorable(value)) return 'invalid_text';
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_ATTRIBUTE_DEPTH) return 'attributes_too_deep';
      for (const key in value) {
        if (unstorable(key)) return 'invalid_text';
        values.push((value as Record<string, unknown>)[key]);
        depths.push(depth + 1);
      }
    }
  }
  return undefined;
}

function blankToNull(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed ? trimmed : null;
}

interface PreparedRow extends LeadUpsertRow {
  index: number;
}

/**
 * Judges leads one at a time; the first lead with a given external_id wins, later ones are skipped.
 * Pure apart from minting ids.
 */
export class LeadJudge {
  private readonly seenExternalIds = new Set<string>();
  constructor(private readonly defaultRegion: string) {}

  judge(input: LeadInput, index: number): PreparedRow | SkipReason {
    const phone = normalisePhone(input.phone, this.defaultRegion);
    if (!phone.ok) return phone.reason;
    const name = blankToNull(input.name);
    const externalId = blankToNull(input.external_id);
    if (name !== null && name.length > MAX_TEXT) return 'name_too_long';
    if (externalId !== null && externalId.length > MAX_TEXT) return 'external_id_too_long';
    if ((name !== null && unstorable(name)) || (externalId !== null && unstorable(externalId))) return 'invalid_text';
    const attributes = input.attributes ?? {};
    const problem = attributesProblem(attributes);
    if (problem) return problem;
    if (externalId !== null) {
      if (this.seenExternalIds.has(externalId)) return 'duplicate_external_id';
      this.seenExternalIds.add(externalId);
    }
    return { index, id: newId(), phoneE164: phone.e164, name, externalId, attributesJson: JSON.stringify(attributes) };
  }
}

/** Leads judged and encoded per statement. Small enough that judging the next chunk overlaps the database writing this one. */
const PIPELINE_CHUNK = 2_000;

/** How many skipped entries an error response lists. */
const MAX_SKIPPED_IN_ERROR = 100;

function nothingToImport(field: string, skipped: ImportResult['skipped']): ValidationError {
  return new ValidationError(
    {
      en: `${field}: no lead could be imported (${skipped.length} skipped: missing or invalid phone, or bad data)`,
      he: `${field}: אף ליד לא יובא (${skipped.length} דולגו: טלפון חסר או לא תקין, או נתונים פגומים)`,
    },
    { field, skipped: skipped.slice(0, MAX_SKIPPED_IN_ERROR), skipped_total: skipped.length },
  );
}

/**
 * Imports the leads into the caller's business, all-or-nothing (one transaction, audit included).
 * Judging and encoding chunk k+1 (JavaScript) runs while the database writes chunk k.
 *
 * @throws ValidationError (400, details.skipped) when not one lead is usable; nothing is written.
 *
 * @example
 * const result = await importLeads(deps, auth, [{ phone: '050-123-4567', name: 'דנה' }], { source: 'api' });
 */
export async function importLeads(
  deps: AppDeps,
  auth: AuthContext,
  inputs: readonly LeadInput[],
  meta: { source: 'api' | 'csv'; filename?: string },
): Promise<ImportResult> {
  const business = await getOwnBusiness(deps.store.db, auth.businessId);
  const judge = new LeadJudge(business?.default_region ?? DEFAULT_REGION);
  const importId = newId();
  const created: ImportedLead[] = [];
  const updated: ImportedLead[] = [];
  const skipped: ImportResult['skipped'] = [];

  /** A row the statement did not name as an update was inserted with the id we minted. */
  const collect = (rows: readonly PreparedRow[], updates: readonly LeadUpdated[]): void => {
    const updatedIds = new Map(updates.map((u) => [u.external_id, u.id]));
    for (const row of rows) {
      const existingId = row.externalId === null ? undefined : updatedIds.get(row.externalId);
      if (existingId === undefined) created.push({ index: row.index, id: row.id, phone: row.phoneE164 });
      else updated.push({ index: row.index, id: existingId, phone: row.phoneE164 });
    }
  };

  await deps.store.db.transaction().execute(async (trx) => {
    let inFlight: { rows: PreparedRow[]; results: Promise<LeadUpdated[]> } | undefined;
    for (let start = 0; start < inputs.length; start += PIPELINE_CHUNK) {
      const rows: PreparedRow[] = [];
      const end = Math.min(start + PIPELINE_CHUNK, inputs.length);
      for (let index = start; index < end; index++) {
        const verdict = judge.judge(inputs[index]!, index);
        if (typeof verdict === 'string') skipped.push({ index, reason: verdict });
        else rows.push(verdict);
      }
      const encoded = encodeLeadRows(rows);
      if (inFlight) collect(inFlight.rows, await inFlight.results);
      const results = upsertEncodedLeads(trx, auth.businessId, encoded);
      // Awaited on the next turn; this guard only keeps a failure from being "unhandled" meanwhile.
      results.catch(() => undefined);
      inFlight = { rows, results };
    }
    if (inFlight) collect(inFlight.rows, await inFlight.results);
    // Nothing usable is an error, not an empty success: the caller sent only bad data.
    if (created.length + updated.length === 0) throw nothingToImport(meta.source === 'csv' ? 'file' : 'leads', skipped);
    await appendAudit(trx, {
      businessId: auth.businessId,
      actor: actorOf(auth),
      action: 'leads.import',
      targetType: 'lead_import',
      targetId: importId,
      data: { source: meta.source, filename: meta.filename, received: inputs.length, created: created.length, updated: updated.length, skipped: skipped.length },
    });
  });
  // Chunks are collected in order, so both lists are already in request order.
  return { import_id: importId, created, updated, skipped };
}
