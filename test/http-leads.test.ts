/**
 * Leads over the real app and database: JSON import (normalisation, skipped reasons,
 * external_id upsert, limits), CSV import (BOM, Hebrew headers, quotes, multipart and text/csv,
 * Windows-1255), listing with cursor and search, isolation, audit, and bad input that changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';
import { snapshotTenantTables } from './support/db-snapshot.ts';
import { storeFactories } from './support/stores.ts';

interface ImportBody {
  import_id: string;
  created: Array<{ index: number; id: string; phone: string }>;
  updated: Array<{ index: number; id: string; phone: string }>;
  skipped: Array<{ index: number; reason: string }>;
}

function multipartBody(filename: string, content: Buffer | string, contentType = 'text/csv'): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----ocqtestboundary';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  const payload = Buffer.concat([Buffer.from(head), Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe.each(storeFactories)('leads on $name', (factory) => {
  let t: TestApp;
  beforeAll(async () => {
    if (factory.available) t = await createTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = it.skipIf(!factory.available);

  const postLeads = (payload: unknown, headers = t.seed.A.agent.headers) => t.app.inject({ method: 'POST', url: '/api/leads', headers, payload: payload as object });
  const importCsv = (csv: string | Buffer, headers = t.seed.A.agent.headers) =>
    t.app.inject({ method: 'POST', url: '/api/leads/import', headers: { ...headers, 'content-type': 'text/csv; charset=utf-8' }, payload: csv });
  const leadCount = async (businessId: string) =>
    Number((await t.store.db.selectFrom('leads').select((eb) => eb.fn.countAll<number>().as('n')).where('business_id', '=', businessId).executeTakeFirstOrThrow()).n);

  run('normalises phones to E.164, skips the unusable ones with a reason, and says which is which', async () => {
    const res = await postLeads({
      leads: [
        { phone: '050-123-4567', name: 'דנה כהן' },
        { phone: '972521234567' },
        { phone: '531234567', name: '' },
        { phone: 'not a phone' },
        { phone: '' },
        { phone: '12' },
        { phone: '+1 (212) 555-0100', name: "O'Brien; DROP TABLE leads;--", attributes: { note: 'שלום\u200f עולם', tags: ['a', 'b'], n: 3 } },
      ],
    });
    expect(res.statusCode).toBe(201);
    const body = res.json<ImportBody>();
    expect(body.created.map((c) => [c.index, c.phone])).toEqual([
      [0, '+972501234567'],
      [1, '+972521234567'],
      [2, '+972531234567'],
      [6, '+12125550100'],
    ]);
    expect(body.updated).toEqual([]);
    expect(body.skipped).toEqual([
      { index: 3, reason: 'phone_invalid_characters' },
      { index: 4, reason: 'phone_missing' },
      { index: 5, reason: 'phone_invalid' },
    ]);
    const stored = await t.store.db.selectFrom('leads').selectAll().where('id', '=', body.created[3]!.id).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ business_id: t.seed.A.businessId, name: "O'Brien; DROP TABLE leads;--", attributes: { note: 'שלום\u200f עולם', tags: ['a', 'b'], n: 3 } });
    const blankName = await t.store.db.selectFrom('leads').select('name').where('id', '=', body.created[2]!.id).executeTakeFirstOrThrow();
    expect(blankName.name).toBeNull();
  });

  run('a known external_id updates its lead (phone replaced, name kept when absent, attributes merged)', async () => {
    const first = await postLeads({ leads: [{ phone: '0541111111', name: 'רון', external_id: 'crm-1', attributes: { city: 'חיפה', stage: 'new' } }] });
    const id = first.json<ImportBody>().created[0]!.id;
    const second = await postLeads({ leads: [{ phone: '054-222-2222', external_id: 'crm-1', attributes: { stage: 'called' } }, { phone: '0543333333', external_id: 'crm-2' }] });
    const body = second.json<ImportBody>();
    expect(body.updated).toEqual([{ index: 0, id, phone: '+972542222222' }]);
    expect(body.created.map((c) => c.index)).toEqual([1]);
    const lead = await t.store.db.selectFrom('leads').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(lead).toMatchObject({ phone_e164: '+972542222222', name: 'רון', external_id: 'crm-1', attributes: { city: 'חיפה', stage: 'called' } });
    expect((lead.updated_at as unknown as Date).getTime()).toBeGreaterThanOrEqual(lead.created_at.getTime());
  });

  run('the same external_id in another business is another lead', async () => {
    const a = await postLeads({ leads: [{ phone: '0545555555', external_id: 'shared-ext' }] });
    const b = await postLeads({ leads: [{ phone: '0546666666', external_id: 'shared-ext' }] }, t.seed.B.agent.headers);
    expect(a.json<ImportBody>().created).toHaveLength(1);
    expect(b.json<ImportBody>().created).toHaveLength(1);
    const rows = await t.store.db.selectFrom('leads').select(['business_id', 'phone_e164']).where('external_id', '=', 'shared-ext').orderBy('phone_e164').execute();
    expect(rows).toEqual([
      { business_id: t.seed.A.businessId, phone_e164: '+972545555555' },
      { business_id: t.seed.B.businessId, phone_e164: '+972546666666' },
    ]);
  });

  run('a repeated external_id in one request keeps the first and skips the rest', async () => {
    const res = await postLeads({ leads: [{ phone: '0547777777', external_id: 'dup' }, { phone: '0548888888', external_id: 'dup' }] });
    expect(res.json<ImportBody>().skipped).toEqual([{ index: 1, reason: 'duplicate_external_id' }]);
  });

  run('attributes nested too deep, or holding text PostgreSQL cannot store, are skipped, not a 500', async () => {
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 20; i++) deep = { deeper: deep };
    const res = await postLeads({ leads: [{ phone: '0541212121', attributes: deep }, { phone: '0541313131', attributes: { bad: 'x\u0000y' } }, { phone: '0541414141', attributes: { ['\ud800']: 1 } }, { phone: '0541515151', attributes: { ok: { nested: [1, { two: 2 }] } } }] });
    expect(res.statusCode).toBe(201);
    expect(res.json<ImportBody>().skipped).toEqual([
      { index: 0, reason: 'attributes_too_deep' },
      { index: 1, reason: 'invalid_text' },
      { index: 2, reason: 'invalid_text' },
    ]);
  });

  run('audits each import with its counts', async () => {
    const res = await postLeads({ leads: [{ phone: '0549999999' }, { phone: 'x' }] });
    const { import_id: importId } = res.json<ImportBody>();
    const audit = await t.store.db.selectFrom('audit_events').selectAll().where('target_id', '=', importId).executeTakeFirstOrThrow();
    expect(audit).toMatchObject({
      business_id: t.seed.A.businessId,
      actor_type: 'user',
      actor_id: t.seed.A.agent.userId,
      action: 'leads.import',
      data: { source: 'api', received: 2, created: 1, updated: 0, skipped: 1 },
    });
  });

  describe('bad input: a 4xx, and the database unchanged', () => {
    const cases: Array<[string, () => { payload: string | object; headers?: Record<string, string> }, number, string, string?]> = [
      ['10,001 leads', () => ({ payload: { leads: Array.from({ length: 10_001 }, () => ({ phone: '0501234567' })) } }), 400, 'validation_failed', 'leads'],
      ['no leads', () => ({ payload: { leads: [] } }), 400, 'validation_failed', 'leads'],
      // Fastify's ajv coerces a scalar to a one-item array, so the item is what fails.
      ['leads not an array', () => ({ payload: { leads: 'many' } }), 400, 'validation_failed', 'leads[0]'],
      ['a lead without phone', () => ({ payload: { leads: [{ name: 'x' }] } }), 400, 'validation_failed', 'leads[0].phone'],
      ['phone of the wrong type', () => ({ payload: { leads: [{ phone: { $gt: '' } }] } }), 400, 'validation_failed', 'leads[0].phone'],
      ['a huge name', () => ({ payload: { leads: [{ phone: '0501234567', name: 'א'.repeat(201) }] } }), 400, 'validation_failed', 'leads[0].name'],
      ['a NUL in a name', () => ({ payload: { leads: [{ phone: '0501234567', name: 'a\u0000b' }] } }), 400, 'validation_failed', 'leads[0].name'],
      ['attributes not an object', () => ({ payload: { leads: [{ phone: '0501234567', attributes: [1, 2] }] } }), 400, 'validation_failed', 'leads[0].attributes'],
      ['malformed JSON', () => ({ payload: '{"leads": [', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json'],
      ['a body over the limit', () => ({ payload: JSON.stringify({ leads: [{ phone: '0501234567', name: 'x'.repeat(9 * 1024 * 1024) }] }), headers: { 'content-type': 'application/json' } }), 413, 'body_too_large'],
      ['CSV sent to the JSON route', () => ({ payload: 'phone\n0501234567', headers: { 'content-type': 'text/csv' } }), 415, 'unsupported_media_type'],
      ['no body', () => ({ payload: '' }), 400, 'validation_failed', 'body'],
    ];
    for (const [label, make, status, code, field] of cases) {
      run(`${label} → ${status} ${code}`, async () => {
        const before = await snapshotTenantTables(t.store.db);
        const { payload, headers } = make();
        const res = await t.app.inject({ method: 'POST', url: '/api/leads', headers: { ...t.seed.A.agent.headers, ...headers }, payload });
        expect(res.statusCode).toBe(status);
        expect(res.json().error.code).toBe(code);
        if (field) expect(res.json().error.details.field).toBe(field);
        expect(await snapshotTenantTables(t.store.db)).toEqual(before);
      });
    }

    run('a request in which no lead is usable is a 400 listing why, and writes nothing (not even an audit event)', async () => {
      const before = await snapshotTenantTables(t.store.db);
      const res = await postLeads({ leads: [{ phone: 'abc' }, { phone: '' }, { phone: '-5' }] });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({
        code: 'validation_failed',
        details: {
          field: 'leads',
          skipped_total: 3,
          skipped: [{ index: 0, reason: 'phone_invalid_characters' }, { index: 1, reason: 'phone_missing' }, { index: 2, reason: 'phone_invalid' }],
        },
      });
      const csv = await importCsv('phone,name\nnope,x\n');
      expect(csv.statusCode).toBe(400);
      expect(csv.json().error.details.field).toBe('file');
      expect(await snapshotTenantTables(t.store.db)).toEqual(before);
    });

    run('CSV problems: no phone column, unterminated quote, no rows, nothing sent', async () => {
      const before = await snapshotTenantTables(t.store.db);
      for (const csv of ['name,city\nדנה,חיפה\n', 'phone,name\n0501234567,"open\n', 'phone,name\n', '']) {
        const res = await importCsv(csv);
        expect(res.statusCode, JSON.stringify(csv)).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'validation_failed', details: { field: 'file' } });
      }
      expect(await snapshotTenantTables(t.store.db)).toEqual(before);
    });
  });

  describe('CSV import', () => {
    run('reads UTF-8 with BOM, Hebrew headers, quoted commas and quotes, and extra columns as attributes', async () => {
      const csv = '\uFEFFטלפון,שם,מזהה,עיר\r\n050-765-4321,"לוי, משה","csv-1",ירושלים\r\n"052 111 2222","אבי ""הגדול""",csv-2,\r\nטלפון לא,x,csv-3,y\r\n';
      const res = await importCsv(csv);
      expect(res.statusCode).toBe(201);
      const body = res.json<ImportBody>();
      expect(body.created.map((c) => [c.index, c.phone])).toEqual([[0, '+972507654321'], [1, '+972521112222']]);
      expect(body.skipped).toEqual([{ index: 2, reason: 'phone_invalid_characters' }]);
      const leads = await t.store.db.selectFrom('leads').select(['name', 'external_id', 'attributes']).where('id', 'in', body.created.map((c) => c.id)).orderBy('external_id').execute();
      expect(leads).toEqual([
        { name: 'לוי, משה', external_id: 'csv-1', attributes: { עיר: 'ירושלים' } },
        { name: 'אבי "הגדול"', external_id: 'csv-2', attributes: {} },
      ]);
    });

    run('accepts a multipart upload and audits it with its file name', async () => {
      const { payload, headers } = multipartBody('לקוחות.csv', 'phone,name\n0503030303,Multi\n');
      const res = await t.app.inject({ method: 'POST', url: '/api/leads/import', headers: { ...t.seed.A.agent.headers, ...headers }, payload });
      expect(res.statusCode).toBe(201);
      const body = res.json<ImportBody>();
      expect(body.created).toHaveLength(1);
      const audit = await t.store.db.selectFrom('audit_events').select('data').where('target_id', '=', body.import_id).executeTakeFirstOrThrow();
      expect(audit.data).toMatchObject({ source: 'csv', filename: 'לקוחות.csv', created: 1 });
    });

    run('reads a Windows-1255 file (older Hebrew Excel)', async () => {
      const hebrew = 'שם';
      // "phone,שם\n0504040404,דני\n" in Windows-1255: Hebrew letters א..ת are 0xE0..0xFA.
      const encode = (text: string) => Buffer.from([...text].map((ch) => (ch >= 'א' && ch <= 'ת' ? 0xe0 + ch.charCodeAt(0) - 'א'.charCodeAt(0) : ch.charCodeAt(0))));
      const res = await importCsv(encode(`phone,${hebrew}\n0504040404,דני\n`));
      expect(res.statusCode).toBe(201);
      const id = res.json<ImportBody>().created[0]!.id;
      const lead = await t.store.db.selectFrom('leads').select('name').where('id', '=', id).executeTakeFirstOrThrow();
      expect(lead.name).toBe('דני');
    });

    run('a multipart upload over the size limit is a 413 and writes nothing', async () => {
      const before = await snapshotTenantTables(t.store.db);
      const { payload, headers } = multipartBody('big.csv', Buffer.alloc(33 * 1024 * 1024, 0x31));
      const res = await t.app.inject({ method: 'POST', url: '/api/leads/import', headers: { ...t.seed.A.agent.headers, ...headers }, payload });
      expect(res.statusCode).toBe(413);
      expect(res.json().error.code).toBe('body_too_large');
      expect(await snapshotTenantTables(t.store.db)).toEqual(before);
    });

    run('refuses other media types with 415', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/leads/import', headers: { ...t.seed.A.agent.headers, 'content-type': 'application/xml' }, payload: '<leads/>' });
      expect(res.statusCode).toBe(415);
      expect(res.json().error.code).toBe('unsupported_media_type');
    });
  });

  describe('listing and search', () => {
    let ids: string[];
    beforeAll(async () => {
      if (!factory.available) return;
      const res = await postLeads(
        { leads: Array.from({ length: 25 }, (_, i) => ({ phone: `05877700${String(i).padStart(2, '0')}`, name: i === 7 ? 'מיכל_100%' : `Search ${i}`, external_id: `list-${i}` })) },
        t.seed.B.agent.headers,
      );
      ids = res.json<ImportBody>().created.map((c) => c.id);
    });

    run('pages newest first with a cursor, without gaps or repeats', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const url: string = `/api/leads?limit=10${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await t.app.inject({ method: 'GET', url, headers: t.seed.B.viewer.headers });
        expect(res.statusCode).toBe(200);
        const page: { items: Array<{ id: string }>; next_cursor: string | null } = res.json();
        seen.push(...page.items.map((item) => item.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen).toHaveLength(await leadCount(t.seed.B.businessId));
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort().reverse()).toEqual(seen);
      expect(seen).toEqual(expect.arrayContaining(ids));
    });

    run('searches name, external id and phone (any spelling), treating % and _ literally', async () => {
      const search = async (q: string) => {
        const res = await t.app.inject({ method: 'GET', url: `/api/leads?q=${encodeURIComponent(q)}&limit=100`, headers: t.seed.B.viewer.headers });
        expect(res.statusCode).toBe(200);
        return res.json<{ items: Array<{ name: string | null; external_id: string | null; phone: string }> }>().items;
      };
      expect((await search('search 1')).map((l) => l.name).sort()).toEqual(['Search 1', 'Search 10', 'Search 11', 'Search 12', 'Search 13', 'Search 14', 'Search 15', 'Search 16', 'Search 17', 'Search 18', 'Search 19']);
      expect((await search('list-24')).map((l) => l.external_id)).toEqual(['list-24']);
      expect((await search('058-777-0003')).map((l) => l.phone)).toEqual(['+972587770003']);
      expect((await search('7770012')).map((l) => l.phone)).toEqual(['+972587770012']);
      expect((await search('100%')).map((l) => l.name)).toEqual(['מיכל_100%']);
      expect(await search('%')).toHaveLength(1);
      expect(await search("' OR 1=1 --")).toEqual([]);
    });

    run('never shows another business\'s leads, and a foreign lead id is a 404 with a security event', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/leads?q=Search&limit=1000', headers: t.seed.A.viewer.headers });
      expect(res.json().items).toEqual([]);
      const lines = t.securityLines().length;
      const foreign = await t.app.inject({ method: 'GET', url: `/api/leads/${ids[0]}`, headers: t.seed.A.viewer.headers });
      const missing = await t.app.inject({ method: 'GET', url: '/api/leads/01900000-0000-7000-8000-000000000000', headers: t.seed.A.viewer.headers });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.body).toBe(missing.body);
      expect(t.securityLines().slice(lines)).toMatchObject([{ target_type: 'lead', target_id: ids[0], owner_business_id: t.seed.B.businessId, actor_business_id: t.seed.A.businessId }]);
      const own = await t.app.inject({ method: 'GET', url: `/api/leads/${ids[0]}`, headers: t.seed.B.viewer.headers });
      expect(own.json()).toMatchObject({ id: ids[0], phone: '+972587770000', external_id: 'list-0', attributes: {} });
    });

    run('bad query values are 400s naming the parameter', async () => {
      for (const [query, field] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=-5', 'limit'], ['limit=1e99', 'limit'], ['cursor=not-a-uuid', 'cursor'], [`q=${'x'.repeat(201)}`, 'q'], ['q=%00', 'q']] as const) {
        const res = await t.app.inject({ method: 'GET', url: `/api/leads?${query}`, headers: t.seed.B.viewer.headers });
        expect(res.statusCode, query).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'validation_failed', details: { field, location: 'querystring' } });
      }
    });
  });
});
