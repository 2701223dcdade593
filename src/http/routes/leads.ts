/**
 * Leads: `POST /api/leads` (JSON, up to 10,000), `POST /api/leads/import` (CSV: a multipart
 * `file` field, or a `text/csv` body), `GET /api/leads` (cursor pagination and search),
 * `GET /api/leads/:id`. Importing takes agent or above; reading, any role.
 */
import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { csvRowsToLeads, parseCsv } from '../../domain/csv.ts';
import { ValidationError } from '../../domain/errors.ts';
import { DEFAULT_REGION, normalisePhone } from '../../domain/phone.ts';
import { getOwnBusiness } from '../../store/businesses.ts';
import { getLead, listLeads, type LeadSearch } from '../../store/leads.ts';
import type { Lead } from '../../store/schema.ts';
import { IdParams } from '../account-schemas.ts';
import type { TypeBoxTypeProvider } from '../app.ts';
import { requireRole } from '../auth.ts';
import type { AppDeps } from '../context.ts';
import { importLeads } from '../lead-import.ts';
import { Nullable, pageOf, SafeText, Uuid } from '../schemas.ts';
import { notFoundUnlessOwned } from '../security.ts';

/** Leads per JSON request. */
export const MAX_LEADS_PER_REQUEST = 10_000;
/** Data rows per CSV file. */
export const MAX_CSV_ROWS = 100_000;
/** CSV bytes per upload: 100,000 rows with a few attribute columns. */
export const CSV_BODY_LIMIT_BYTES = 32 * 1024 * 1024;

const tags = ['leads'];

const LeadInputSchema = Type.Object(
  {
    phone: Type.String({ maxLength: 100, description: 'any common format; normalised to E.164 in the business default_region' }),
    name: Type.Optional(Nullable(SafeText(200))),
    external_id: Type.Optional(Nullable(SafeText(200, { description: 'your id; a known one updates its lead' }))),
    attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 100, description: 'free-form JSON object, merged on update' })),
  },
  { additionalProperties: false },
);

const CreateLeadsBody = Type.Object(
  { leads: Type.Array(LeadInputSchema, { minItems: 1, maxItems: MAX_LEADS_PER_REQUEST }) },
  { additionalProperties: false },
);

const ImportedLeadSchema = Type.Object({ index: Type.Integer(), id: Type.String(), phone: Type.String() });
const ImportResultSchema = Type.Object({
  import_id: Type.String({ description: 'the audit event target id of this import' }),
  created: Type.Array(ImportedLeadSchema),
  updated: Type.Array(ImportedLeadSchema),
  skipped: Type.Array(Type.Object({ index: Type.Integer(), reason: Type.String() })),
});

const LeadSchema = Type.Object({
  id: Type.String(),
  phone: Type.String({ description: 'E.164' }),
  name: Nullable(Type.String()),
  external_id: Nullable(Type.String()),
  attributes: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});
type LeadJson = Static<typeof LeadSchema>;

const ListLeadsQuery = Type.Object({
  cursor: Type.Optional(Uuid('next_cursor of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  q: Type.Optional(SafeText(200, { minLength: 1, description: 'search: part of the name or external_id, or a phone number' })),
});

function serializeLead(lead: Lead): LeadJson {
  return {
    id: lead.id,
    phone: lead.phone_e164,
    name: lead.name,
    external_id: lead.external_id,
    attributes: lead.attributes,
    created_at: lead.created_at.toISOString(),
    // Generated<Timestamp> does not unwrap to Date in Selectable (store/schema.ts); it is a Date at run time.
    updated_at: (lead.updated_at as unknown as Date).toISOString(),
  };
}

/** A phone-looking query matches that phone exactly; digits alone match part of a phone. */
function searchFor(q: string, region: string): LeadSearch {
  const search: LeadSearch = { text: q };
  const phone = normalisePhone(q, region);
  if (phone.ok) search.phoneE164 = phone.e164;
  else if (/^\+?[\d\s\-().]{3,}$/.test(q)) search.phoneDigits = q.replace(/\D/g, '');
  return search;
}

const fileInvalid = (en: string, he: string): ValidationError => new ValidationError({ en: `file: ${en}`, he: `file: ${he}` }, { field: 'file' });

/** UTF-8 (BOM or not); failing that, Windows-1255, which older Hebrew Excel still writes. */
function decodeCsv(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1255').decode(bytes);
  }
}

async function readCsvUpload(request: FastifyRequest): Promise<{ text: string; filename?: string }> {
  if (request.isMultipart()) {
    const file = await request.file({ limits: { fileSize: CSV_BODY_LIMIT_BYTES, files: 1, fields: 10 } });
    if (!file) throw fileInvalid('a multipart upload needs a file field', 'העלאה מרובת חלקים צריכה שדה קובץ');
    return { text: decodeCsv(await file.toBuffer()), filename: file.filename };
  }
  if (!Buffer.isBuffer(request.body)) throw fileInvalid('send the CSV as text/csv or as a multipart file', 'יש לשלוח את הקובץ כ-text/csv או כקובץ מרובה חלקים');
  return { text: decodeCsv(request.body) };
}

/** The CSV route lives in its own context: only it accepts CSV and multipart bodies. */
const csvImportRoute: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  await app.register(multipart, { limits: { fileSize: CSV_BODY_LIMIT_BYTES, files: 1 } });
  for (const type of ['text/csv', 'application/csv', 'text/plain']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: CSV_BODY_LIMIT_BYTES }, (_request, body, done) => done(null, body));
  }
  app.post(
    '/api/leads/import',
    {
      bodyLimit: CSV_BODY_LIMIT_BYTES,
      schema: {
        tags,
        summary: 'Import a CSV file of leads (agent and above)',
        description:
          'A multipart upload (field `file`) or a `text/csv` body. UTF-8 with or without BOM (Windows-1255 also read). ' +
          'The header row maps columns: phone (phone, mobile, tel, טלפון, נייד...), name (name, full name, שם, or first/last name), ' +
          `external_id (external_id, id, crm_id, מזהה...); other columns become attributes. Up to ${MAX_CSV_ROWS} rows. ` +
          'Skipped leads name their index: 0 is the first row after the header.',
        consumes: ['multipart/form-data', 'text/csv'],
        response: { 201: ImportResultSchema },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent', 'import leads');
      const { text, filename } = await readCsvUpload(request);
      const leads = csvRowsToLeads(parseCsv(text));
      if (leads.length === 0) throw fileInvalid('no data rows after the header', 'אין שורות נתונים אחרי שורת הכותרת');
      if (leads.length > MAX_CSV_ROWS) {
        throw fileInvalid(`at most ${MAX_CSV_ROWS} rows per file, got ${leads.length}`, `לכל היותר ${MAX_CSV_ROWS} שורות בקובץ, התקבלו ${leads.length}`);
      }
      const result = await importLeads(deps, auth, leads, filename === undefined ? { source: 'csv' } : { source: 'csv', filename });
      return reply.code(201).send(result);
    },
  );
};

export const leadRoutes: FastifyPluginAsync<AppDeps> = async (instance, deps) => {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    '/api/leads',
    {
      schema: {
        tags,
        summary: `Create or update up to ${MAX_LEADS_PER_REQUEST} leads (agent and above)`,
        description: 'Phones are normalised to E.164; unusable leads are skipped with a reason. A known external_id updates its lead.',
        body: CreateLeadsBody,
        response: { 201: ImportResultSchema },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'agent', 'import leads');
      return reply.code(201).send(await importLeads(deps, auth, request.body.leads, { source: 'api' }));
    },
  );

  await app.register(csvImportRoute, deps);

  app.get(
    '/api/leads',
    {
      schema: {
        tags,
        summary: 'List leads, newest first, with search',
        querystring: ListLeadsQuery,
        response: { 200: pageOf(LeadSchema, 'pass as cursor for the next page') },
      },
    },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const { cursor, limit = 100, q } = request.query;
      const region = q === undefined ? DEFAULT_REGION : ((await getOwnBusiness(deps.store.db, auth.businessId))?.default_region ?? DEFAULT_REGION);
      const page = await listLeads(deps.store.db, auth.businessId, {
        limit,
        ...(cursor === undefined ? {} : { cursor }),
        ...(q === undefined ? {} : { search: searchFor(q, region) }),
      });
      return { items: page.items.map(serializeLead), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/api/leads/:id',
    { schema: { tags, summary: 'One lead', params: IdParams, response: { 200: LeadSchema } } },
    async (request) => {
      const auth = requireRole(request, 'viewer');
      const lead = await getLead(deps.store.db, auth.businessId, request.params.id);
      return serializeLead(await notFoundUnlessOwned(deps, request, 'lead', request.params.id, lead));
    },
  );
};
