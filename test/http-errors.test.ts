/**
 * The error contract and the operational routes over the real app: one error shape with stable
 * codes, Hebrew or English by Accept-Language, 4xx for every kind of bad input (never a 500),
 * 404/413/415/429, a logged 500 without a stack for a real bug, OpenAPI and docs, health,
 * readiness (database and Redis) and Prometheus metrics.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { buildApp } from '../src/http/app.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/logger.ts';
import { createMetrics, liveCallsFromDatabase } from '../src/metrics.ts';
import { newId } from '../src/store/ids.ts';
import { createRun } from '../src/store/runs.ts';
import { updateJobStatus } from '../src/store/transitions.ts';
import { createCallSlots } from '../src/slots/index.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { snapshotTenantTables } from './support/db-snapshot.ts';
import { freePort } from './support/net.ts';
import { hasRedis, redisUrl } from './support/services.ts';
import { storeFactories } from './support/stores.ts';

const buggyRoute: FastifyPluginAsync = async (app) => {
  app.get('/api/test-only/bug', async () => {
    throw new Error('secret internal detail at /srv/app.js:42');
  });
};

describe.each(storeFactories)('errors and operations on $name', (factory) => {
  let t: TestApp;
  beforeAll(async () => {
    if (factory.available) t = await createTestApp(factory, { extraPlugins: [buggyRoute], logLevel: 'warn' });
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = it.skipIf(!factory.available);

  describe('error shape and language', () => {
    run('speaks Hebrew when Accept-Language prefers he, English otherwise, with the same code', async () => {
      const url = '/api/leads/01900000-0000-7000-8000-000000000000';
      const he = await t.app.inject({ method: 'GET', url, headers: { ...t.seed.A.viewer.headers, 'accept-language': 'he-IL,he;q=0.9,en;q=0.5' } });
      const en = await t.app.inject({ method: 'GET', url, headers: { ...t.seed.A.viewer.headers, 'accept-language': 'en-US,he;q=0.3' } });
      expect(he.statusCode).toBe(404);
      expect(he.json()).toEqual({ error: { code: 'not_found', message: 'ליד לא נמצא', details: { target: 'lead' } } });
      expect(en.json()).toEqual({ error: { code: 'not_found', message: 'lead not found', details: { target: 'lead' } } });
      const unauth = await t.app.inject({ method: 'GET', url: '/api/leads', headers: { 'accept-language': 'he' } });
      expect(unauth.json().error).toEqual({ code: 'unauthenticated', message: 'אסימון חסר או לא תקין' });
      const forbidden = await t.app.inject({ method: 'GET', url: '/api/users', headers: { ...t.seed.A.viewer.headers, 'accept-language': 'he' } });
      expect(forbidden.json().error.code).toBe('forbidden');
      expect(forbidden.json().error.message).toMatch(/^לתפקיד שלך אין הרשאה/);
    });

    run('validation errors name the field, in either language', async () => {
      const payload = { leads: [{ phone: '0501234567' }, { phone: 5, name: { first: 'x' } }] };
      const he = await t.app.inject({ method: 'POST', url: '/api/leads', headers: { ...t.seed.A.agent.headers, 'accept-language': 'he' }, payload });
      expect(he.statusCode).toBe(400);
      expect(he.json().error).toMatchObject({ code: 'validation_failed', details: { field: 'leads[1].name', location: 'body', reason: 'type' } });
      expect(he.json().error.message).toBe('leads[1].name: חייב להיות מסוג string');
      const en = await t.app.inject({ method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: 'a@b.c' } });
      expect(en.json().error).toEqual({
        code: 'validation_failed',
        message: 'role: is required',
        details: { field: 'role', location: 'body', reason: 'required' },
      });
    });

    run('an unknown route is 404 route_not_found; an unauthenticated unknown /api route is 401', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/nope?x=1' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: { code: 'route_not_found', message: 'no route GET /nope', details: { method: 'GET', path: '/nope' } } });
      expect((await t.app.inject({ method: 'GET', url: '/api/nope', headers: t.seed.A.viewer.headers })).json().error.code).toBe('route_not_found');
      expect((await t.app.inject({ method: 'GET', url: '/api/nope' })).statusCode).toBe(401);
    });

    run('a bug is a 500 internal: logged with its stack, never sent', async () => {
      const before = t.logs.length;
      const res = await t.app.inject({ method: 'GET', url: '/api/test-only/bug', headers: t.seed.A.viewer.headers });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'internal', message: 'internal error' } });
      expect(res.body).not.toContain('secret');
      const logged = t.logs.slice(before).find((line) => line.msg === 'unhandled error');
      expect(logged).toMatchObject({ level: 50, err: { message: 'secret internal detail at /srv/app.js:42' } });
    });
  });

  describe('fuzz: every bad input is a 4xx and changes nothing', () => {
    const bodies: Array<[string, string, string?]> = [
      ['truncated JSON', '{"leads":[{"phone":"050'],
      ['not JSON', 'leads=1'],
      ['JSON with a trailing comma', '{"leads":[],}'],
      ['a prototype-poisoning key', '{"leads":[{"phone":"0501234567"}],"__proto__":{"admin":true}}'],
      ['a number', '42'],
      ['null', 'null'],
      ['an array', '[{"phone":"0501234567"}]'],
      ['a huge number', '{"leads":[{"phone":1e400}]}'],
      ['a negative number phone', '{"leads":[{"phone":-5}]}'],
      ['nested arrays', `{"leads":${'['.repeat(5000)}${']'.repeat(5000)}}`],
      ['deep objects', `{"leads":[{"phone":"0501234567","attributes":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}]}`],
      ['a huge string', `{"leads":[{"phone":"${'9'.repeat(100_000)}"}]}`],
      ['many attributes', `{"leads":[{"phone":"0501234567","attributes":{${Array.from({ length: 101 }, (_, i) => `"k${i}":1`).join(',')}}}]}`],
      ['a bidi-override external id with NUL', '{"leads":[{"phone":"0501234567","external_id":"\\u202e\\u0000"}]}'],
      ['invalid UTF-8 bytes', '{"leads":[{"phone":"\xff\xfe"}]}', 'latin1'],
    ];
    for (const [label, body, encoding] of bodies) {
      run(`${label}`, async () => {
        const before = await snapshotTenantTables(t.store.db);
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/leads',
          headers: { ...t.seed.A.agent.headers, 'content-type': 'application/json' },
          payload: encoding ? Buffer.from(body, encoding as BufferEncoding) : body,
        });
        expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, res.body).toBeLessThan(500);
        expect(res.json().error.code).toEqual(expect.any(String));
        expect(await snapshotTenantTables(t.store.db)).toEqual(before);
      });
    }

    run('bad params, queries and media types on the account routes are 4xx', async () => {
      const attempts: Array<{ method: 'GET' | 'POST'; url: string; headers: Record<string, string>; payload?: string | object }> = [
        { method: 'GET', url: '/api/users/not-a-uuid', headers: t.seed.A.owner.headers },
        { method: 'GET', url: "/api/users/1' OR '1'='1", headers: t.seed.A.owner.headers },
        { method: 'GET', url: '/api/tokens?limit=99999999999999999999', headers: t.seed.A.owner.headers },
        { method: 'GET', url: '/api/tokens?user_id=%00', headers: t.seed.A.owner.headers },
        { method: 'POST', url: '/api/users', headers: { ...t.seed.A.owner.headers, 'content-type': 'text/plain' }, payload: 'email=x' },
        { method: 'POST', url: '/api/users', headers: { ...t.seed.A.owner.headers, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'email=x' },
        { method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: 'not-an-email', role: 'viewer' } },
        { method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: 'a@b.c', role: 'superuser' } },
        { method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: `${'a'.repeat(300)}@b.c`, role: 'viewer' } },
        { method: 'GET', url: '/api/leads/%E0%A4%A', headers: t.seed.A.owner.headers },
      ];
      const before = await snapshotTenantTables(t.store.db);
      for (const attempt of attempts) {
        const res = await t.app.inject(attempt);
        expect(res.statusCode, `${attempt.method} ${attempt.url}: ${res.body}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, `${attempt.method} ${attempt.url}: ${res.body}`).toBeLessThan(500);
      }
      expect(await snapshotTenantTables(t.store.db)).toEqual(before);
    });
  });

  describe('media types and sizes', () => {
    run('415 for a body the route does not take, with the content type named', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/leads', headers: { ...t.seed.A.agent.headers, 'content-type': 'application/xml', 'accept-language': 'he' }, payload: '<x/>' });
      expect(res.statusCode).toBe(415);
      expect(res.json().error).toEqual({ code: 'unsupported_media_type', message: 'סוג תוכן לא נתמך application/xml', details: { content_type: 'application/xml' } });
    });

    run('an empty body with a JSON content type is "no body", not invalid JSON', async () => {
      const res = await t.app.inject({ method: 'POST', url: `/api/users/${t.seed.A.viewer.userId}/tokens`, headers: { ...t.seed.A.owner.headers, 'content-type': 'application/json' }, payload: '' });
      expect(res.statusCode).toBe(201);
      expect(res.json().name).toBeNull();
    });

    run('413 body_too_large over the JSON limit, before validation', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/users', headers: { ...t.seed.A.owner.headers, 'content-type': 'application/json' }, payload: `{"email":"${'x'.repeat(9 * 1024 * 1024)}"}` });
      expect(res.statusCode).toBe(413);
      expect(res.json().error.code).toBe('body_too_large');
    });

    run('an unauthenticated caller gets 401 before any body is read', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/leads', headers: { 'content-type': 'application/json' }, payload: `{"x":"${'x'.repeat(9 * 1024 * 1024)}"}` });
      expect(res.statusCode).toBe(401);
    });
  });

  describe('documentation', () => {
    run('serves an OpenAPI 3 document listing the routes, with bearer security', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json<{ openapi: string; info: { title: string }; paths: Record<string, Record<string, { responses: object; security?: unknown[] }>>; components: { securitySchemes: object } }>();
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.info.title).toBe('outbound-call-queue API');
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/leads', '/api/leads/import', '/api/leads/{id}', '/api/users', '/api/tokens', '/api/admin/businesses', '/healthz', '/readyz', '/metrics']));
      expect(doc.paths['/api/leads']?.post?.responses).toHaveProperty('201');
      expect(doc.paths['/healthz']?.get?.security).toEqual([]);
      expect(doc.paths['/api/admin/businesses']?.post?.security).toEqual([{ adminToken: [] }]);
      expect(doc.components.securitySchemes).toHaveProperty('bearerAuth');
      expect(Object.keys(doc.paths)).not.toContain('/openapi.json');
    });

    run('renders the docs at /docs', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/docs/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
    });
  });

  describe('health', () => {
    run('/healthz answers while the process is up; /readyz checks the database', async () => {
      expect((await t.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
      const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', slots: 'not_configured' } });
    });

    run('/metrics exports the product metrics in Prometheus text, runs by state read from the database', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      for (const name of ['ocq_dials_total', 'ocq_live_calls', 'ocq_waiting_runs', 'ocq_slot_wait_seconds_bucket', 'ocq_runs', 'ocq_webhook_results_total']) {
        expect(res.body).toContain(name);
      }
      expect(res.body).toMatch(/ocq_runs\{status="pending"\} 0/);
      expect(res.body).toMatch(/ocq_slot_wait_seconds_bucket\{le="0.001"\} 0/);
      expect(res.body).toMatch(/ocq_slot_wait_seconds_bucket\{le="60"\} 0/);
    });
  });
});

describe.each(storeFactories)('readiness and metrics wiring on $name', (factory) => {
  const run = it.skipIf(!factory.available);

  run('/readyz is 503 when the slot backend (Redis) is unreachable, and 200 with in-process slots', async () => {
    const down = createCallSlots({ redisUrl: 'redis://127.0.0.1:1', logger: silentLogger, readyTimeoutMs: 200 });
    const t = await createTestApp(factory, { slots: down });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'unavailable', checks: { database: 'ok', slots: 'failed' } });
    } finally {
      await t.close();
      await down.close();
    }
  });

  it.skipIf(!factory.available || !hasRedis)('/readyz is 200 with a reachable Redis', async () => {
    const slots = createCallSlots({ redisUrl, logger: silentLogger, keyPrefix: `ocq:test:readyz:${process.pid}:` });
    const memory = createCallSlots({ logger: silentLogger });
    const t = await createTestApp(factory, { slots });
    const m = await createTestApp(factory, { slots: memory });
    try {
      expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready', checks: { database: 'ok', slots: 'ok' } });
      expect((await m.app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready', checks: { database: 'ok', slots: 'ok' } });
    } finally {
      await t.close();
      await m.close();
      await slots.close();
      await memory.close();
    }
  });

  run('/metrics reads live calls per business from the database at scrape time', async () => {
    let db: TestApp['store']['db'] | undefined;
    const metrics = createMetrics({ processMetrics: false, collectLiveCalls: () => liveCallsFromDatabase(db!)() });
    const t = await createTestApp(factory, { metrics });
    db = t.store.db;
    try {
      const businessId = t.seed.A.businessId;
      const leadId = newId();
      await t.store.db.insertInto('leads').values({ id: leadId, business_id: businessId, phone_e164: '+972501112233' }).execute();
      const created = await createRun(t.store.db, { businessId, createdByUserId: null, name: 'm', concurrency: 1, leads: { ids: [leadId] } });
      await updateJobStatus(t.store.db, { type: 'dial' }, { attempt_id: newId(), dial_started_at: new Date() }).where('run_id', '=', created.id).execute();
      const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toContain(`ocq_live_calls{business_id="${businessId}"} 1`);
      expect(text).not.toContain(`business_id="${t.seed.B.businessId}"`);
    } finally {
      await t.close();
    }
  });

  run('/metrics serves the metrics the engine shares through deps, with runs counted at scrape time', async () => {
    let scrapes = 0;
    const metrics = createMetrics({
      processMetrics: false,
      collectRunsByState: async () => {
        scrapes += 1;
        return [{ status: 'running', count: 2 }];
      },
    });
    metrics.dials.inc({ outcome: 'completed' }, 3);
    metrics.liveCalls.set({ business_id: 'b1' }, 2);
    metrics.slotWaitSeconds.observe(0.002);
    const t = await createTestApp(factory, { metrics });
    try {
      const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toContain('ocq_dials_total{outcome="completed"} 3');
      expect(text).toContain('ocq_live_calls{business_id="b1"} 2');
      expect(text).toContain('ocq_runs{status="running"} 2');
      expect(text).toContain('ocq_runs{status="failed"} 0');
      expect(text).toContain('ocq_slot_wait_seconds_bucket{le="0.005"} 1');
      expect(text).not.toContain('process_cpu');
      expect(scrapes).toBe(1);
    } finally {
      await t.close();
    }
  });

  it.runIf(factory.available && hasRedis)('with the Redis rate-limit store, API processes share one limit per token', async () => {
    const t = await createTestApp(factory, { config: { rateLimitPerMinute: 4, rateLimitStore: 'redis', redisUrl } });
    const second = await buildApp(t.deps); // another API process, same database and Redis
    try {
      const get = (app: FastifyInstance, headers: Record<string, string>) => app.inject({ method: 'GET', url: '/api/leads', headers });
      for (const app of [t.app, second, t.app, second]) expect((await get(app, t.seed.A.viewer.headers)).statusCode).toBe(200);
      expect((await get(t.app, t.seed.A.viewer.headers)).statusCode).toBe(429);
      expect((await get(second, t.seed.A.viewer.headers)).statusCode).toBe(429);
      expect((await get(second, t.seed.A.agent.headers)).statusCode).toBe(200);
    } finally {
      await second.close();
      await t.close();
    }
  });

  run('with the Redis rate-limit store and Redis unreachable, the API still answers (the limiter fails open)', async () => {
    const t = await createTestApp(factory, { config: { rateLimitPerMinute: 2, rateLimitStore: 'redis', redisUrl: `redis://127.0.0.1:${await freePort()}` } });
    try {
      for (let i = 0; i < 4; i++) {
        expect((await t.app.inject({ method: 'GET', url: '/api/leads', headers: t.seed.A.viewer.headers })).statusCode).toBe(200);
      }
    } finally {
      await t.close();
    }
  });

  run('rate limits per token: 429 in the error shape with Retry-After; other tokens and health probes unaffected', async () => {
    const t = await createTestApp(factory, { config: { rateLimitPerMinute: 3 } });
    try {
      const call = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/api/leads', headers: { ...headers, 'accept-language': 'he' } });
      for (let i = 0; i < 3; i++) expect((await call(t.seed.A.viewer.headers)).statusCode).toBe(200);
      const limited = await call(t.seed.A.viewer.headers);
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['retry-after']).toEqual(expect.any(String));
      expect(limited.json().error).toMatchObject({ code: 'rate_limited', details: { retry_after_seconds: expect.any(Number) } });
      expect(limited.json().error.message).toMatch(/^יותר מדי בקשות/);
      expect((await call(t.seed.A.agent.headers)).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
