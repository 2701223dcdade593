/**
 * Bad input against every mutating route: malformed JSON, wrong types, huge arrays and strings,
 * unicode and RTL text, SQL-looking strings, bad ids, negative and enormous numbers. Every answer
 * is a 4xx (never a 500), and the database is exactly as it was.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/store/ids.ts';
import type { TestApp } from './support/app.ts';
import { snapshotAllTables } from './support/db-snapshot.ts';
import { corruptedBodies, HUGE_STRING, RTL_AND_UNICODE, SQL_LIKE, type JsonSchema } from './support/fuzz-values.ts';
import { isMutating, MUTATING_ROUTES, openApiOperations, type MutatingRoute, type OpenApiOperation } from './support/mutating-routes.ts';
import { createRunTestApp, createRunViaApi, leadsOf } from './support/run-fixtures.ts';
import { storeFactories } from './support/stores.ts';

const MALFORMED_JSON = ['{', '{"lead_ids": [', "{'run_id': 1}", '{"a":1}}', 'nul', '{"a": NaN}', '{"a": -Infinity}', '\u0000', '\uFEFF{'];
const NON_OBJECT_JSON = ['[]', '"text"', '123', 'true', 'null', '[{"lead_ids": []}]'];
const BAD_IDS = [...SQL_LIKE, ...RTL_AND_UNICODE.filter((v) => v !== '\u0000'), '-1', '0', '99999999999999999999', '1e308', 'x'.repeat(2000), '..%2F..%2Fadmin', newId().toUpperCase().replace(/-/g, '')];
/** Past every body limit (JSON 8 MB, CSV 32 MB). */
const OVERSIZED = 40 * 1024 * 1024;

/** What the generic walk cannot see: ranges checked in handlers, unions, either-or rules. */
function routeExtras(route: MutatingRoute, valid: Record<string, unknown>): Array<[string, unknown]> {
  const key = `${route.method} ${route.path}`;
  switch (key) {
    case 'POST /api/outbound/bulk-enqueue':
      return [
        ...[-1, 0, 11, -1e308, 1e12, 1e308].map((c): [string, unknown] => [`concurrency ${c}`, { ...valid, concurrency: c }]),
        ['outbound_list_id: object', { ...valid, outbound_list_id: { $gt: '' } }],
        ['project_id: huge string', { ...valid, project_id: HUGE_STRING }],
        ['lead_ids: empty', { ...valid, lead_ids: [] }],
      ];
    case 'POST /api/outbound/stop-queue':
      return [
        ...[...SQL_LIKE, ...RTL_AND_UNICODE, 'x'.repeat(100_000)].map((v): [string, unknown] => [`run_id "${v.slice(0, 12)}"`, { run_id: v }]),
        ['run_id: object', { run_id: { $ne: null } }],
        ['run_id: number', { run_id: -1 }],
        ['run_id: missing run', { run_id: newId() }],
      ];
    case 'POST /api/outbound/runs':
      return [
        ['both lead_ids and all_leads', { ...valid, all_leads: true }],
        ['all_leads: false only', { all_leads: false }],
        ['a missing lead among them', { ...valid, lead_ids: [...(valid.lead_ids as string[]), newId()] }],
      ];
    case 'POST /api/users':
      return [['role: system', { ...valid, role: 'system' }]];
    default:
      return [];
  }
}

describe.each(storeFactories)('fuzz on $name', (factory) => {
  let t: TestApp;
  let operations: OpenApiOperation[];

  beforeAll(async () => {
    if (!factory.available) return;
    t = await createRunTestApp(factory);
    operations = await openApiOperations(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it.skipIf(!factory.available)('covers every mutating route of the OpenAPI document', () => {
    const documented = operations.filter((op) => isMutating(op.method)).map((op) => `${op.method} ${op.path}`);
    expect(MUTATING_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(documented.sort());
  });

  it.skipIf(!factory.available).each(MUTATING_ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s: every bad input is a 4xx and changes nothing',
    async (label, route) => {
      const headers = route.access === 'admin' ? t.adminHeaders : t.seed.A.owner.headers;
      const request = await route.valid(t, t.seed.A.owner);
      const operation = operations.find((op) => `${op.method} ${op.path}` === label);
      const schema = (operation?.requestBody as { content?: Record<string, { schema?: JsonSchema }> } | undefined)?.content?.['application/json']?.schema;
      const isJson = request.payload !== undefined && typeof request.payload === 'object';
      const base: InjectOptions = { method: route.method, url: request.url, headers: { ...headers, ...request.headers } };
      const json = (payload: string): InjectOptions => ({ ...base, headers: { ...base.headers, 'content-type': 'application/json' }, payload });

      const cases: Array<[string, InjectOptions]> = [
        ...MALFORMED_JSON.map((body): [string, InjectOptions] => [`malformed JSON ${JSON.stringify(body)}`, json(body)]),
        ['XML', { ...base, headers: { ...base.headers, 'content-type': 'application/xml' }, payload: '<run id="1"/>' }],
        ['oversized body', json(`{"x":"${'a'.repeat(OVERSIZED)}"}`)],
      ];
      if (isJson) {
        const valid = request.payload as Record<string, unknown>;
        // Where `{}` is a whole valid body (nothing required), a JSON null is the same "no body".
        const bodyOptional = (schema?.required ?? []).length === 0;
        const nonObjects = NON_OBJECT_JSON.filter((body) => !(bodyOptional && body === 'null'));
        cases.push(...nonObjects.map((body): [string, InjectOptions] => [`body ${body}`, json(body)]));
        const corruptions = [...(schema ? corruptedBodies(schema, valid) : []), ...routeExtras(route, valid)];
        expect(corruptions.length, 'no corruption generated: is the body schema published?').toBeGreaterThan(3);
        cases.push(...corruptions.map(([what, body]): [string, InjectOptions] => [what, json(JSON.stringify(body))]));
      }
      if (route.path === '/api/leads/import') {
        const csv = (payload: string | Buffer): InjectOptions => ({ ...base, headers: { ...base.headers, 'content-type': 'text/csv' }, payload });
        cases.push(['empty CSV', csv('')], ['header only', csv('phone,name\n')], ['a NUL byte file', csv(Buffer.alloc(64))]);
      }
      if (operation && operation.pathParams.length > 0) {
        const withBody = isJson ? { payload: request.payload as Record<string, unknown> } : {};
        for (const id of BAD_IDS) {
          cases.push([`id ${JSON.stringify(id.slice(0, 24))}`, { ...base, ...withBody, url: operation.path.replace(/\{[^}]+\}/g, encodeURIComponent(id)) }]);
        }
        cases.push(['a missing id', { ...base, ...withBody, url: operation.path.replace(/\{[^}]+\}/g, newId()) }]);
      }

      const before = await snapshotAllTables(t.store.db);
      for (const [what, options] of cases) {
        const response = await t.app.inject(options);
        expect(response.statusCode, `${what}: ${response.statusCode} ${response.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
        expect(response.statusCode, `${what}: ${response.body.slice(0, 300)}`).toBeLessThan(500);
        expect(await snapshotAllTables(t.store.db), `${what} changed the database`).toEqual(before);
      }
    },
  );

  it.skipIf(!factory.available)('a batch of only invalid phones is a 4xx naming each, and stores nothing', async () => {
    const phones = ['abc', '', '+', '123', "0501234567'; DROP TABLE leads;--", 'טלפון', '0'.repeat(100), `+972${'9'.repeat(20)}`, '\u202E0501234567', '٠٥٠١٢٣٤٥٦٧x'];
    const before = await snapshotAllTables(t.store.db);
    const response = await t.app.inject({ method: 'POST', url: '/api/leads', headers: t.seed.A.agent.headers, payload: { leads: phones.map((phone) => ({ phone })) } });
    expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
    expect(response.statusCode, response.body).toBeLessThan(500);
    expect(response.json().error.details.skipped.map((s: { index: number }) => s.index)).toEqual(phones.map((_, i) => i));
    expect(await snapshotAllTables(t.store.db)).toEqual(before);
  });

  it.skipIf(!factory.available)('bad queries on the run reads are 400, never 500', async () => {
    const { A } = t.seed;
    const run = await createRunViaApi(t, A, await leadsOf(t, A, 1));
    const urls = [
      '/api/outbound/runs?limit=-1',
      '/api/outbound/runs?limit=1e20',
      '/api/outbound/runs?limit=abc',
      `/api/outbound/runs?cursor=${encodeURIComponent("' OR 1=1 --")}`,
      '/api/outbound/runs?status=%D7%A4%D7%A2%D7%99%D7%9C',
      `/api/outbound/runs/${run.id}/jobs?cursor=-5`,
      `/api/outbound/runs/${run.id}/jobs?cursor=99999999999999`,
      `/api/outbound/runs/${run.id}/jobs?limit=100000`,
      `/api/outbound/runs/${run.id}/jobs?status=calling`,
      '/api/audit?cursor=1',
      '/api/audit?limit=0',
    ];
    for (const url of urls) {
      const response = await t.app.inject({ method: 'GET', url, headers: A.owner.headers });
      expect(response.statusCode, `${url}: ${response.body}`).toBe(400);
    }
  });
});
