/**
 * Authentication and roles over the real app and database: bearer tokens (missing, malformed,
 * unknown, revoked), last_used_at, the admin token, role 403s on every account route, and
 * cross-business ids on the user and token routes (404 + security event, nothing changed).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { touchTokenLastUsed } from '../src/store/tokens.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { snapshotTenantTables } from './support/db-snapshot.ts';
import { createRunViaApi } from './support/run-fixtures.ts';
import { addLeads } from './support/seed.ts';
import { storeFactories } from './support/stores.ts';

describe.each(storeFactories)('auth on $name', (factory) => {
  let t: TestApp;
  beforeAll(async () => {
    if (factory.available) t = await createTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = it.skipIf(!factory.available);

  const me = (headers: Record<string, string>) => t.app.inject({ method: 'GET', url: '/api/me', headers });

  run('answers 401 unauthenticated without a token, with a malformed one, or with an unknown one', async () => {
    const unknown = `ocq_${'A'.repeat(43)}`;
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer' }, { authorization: 'Basic abc' }, { authorization: 'Bearer nope' }, { authorization: `Bearer ${unknown}` }];
    for (const headers of attempts) {
      const res = await me(headers);
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.json()).toEqual({ error: { code: 'unauthenticated', message: 'missing or invalid token' } });
    }
  });

  run('accepts a valid token and names the caller and their business', async () => {
    const res = await me(t.seed.A.agent.headers);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ user: { id: t.seed.A.agent.userId, role: 'agent' }, business: { id: t.seed.A.businessId }, token_id: t.seed.A.agent.tokenId });
  });

  run('sets last_used_at on use, at most once a minute', async () => {
    const tokenId = t.seed.A.viewer.tokenId;
    await me(t.seed.A.viewer.headers);
    const first = await t.store.db.selectFrom('api_tokens').select('last_used_at').where('id', '=', tokenId).executeTakeFirstOrThrow();
    expect(first.last_used_at).toBeInstanceOf(Date);
    await me(t.seed.A.viewer.headers);
    const second = await t.store.db.selectFrom('api_tokens').select('last_used_at').where('id', '=', tokenId).executeTakeFirstOrThrow();
    expect(second.last_used_at).toEqual(first.last_used_at);
  });

  run('a revoked token fails on the very next request', async () => {
    const created = await t.app.inject({ method: 'POST', url: `/api/users/${t.seed.A.agent.userId}/tokens`, headers: t.seed.A.admin.headers, payload: { name: 'laptop' } });
    expect(created.statusCode).toBe(201);
    const { id, token, prefix } = created.json<{ id: string; token: string; prefix: string }>();
    expect(token).toMatch(/^ocq_[A-Za-z0-9_-]{43}$/);
    expect(token.startsWith(prefix)).toBe(true);
    const headers = { authorization: `Bearer ${token}` };
    expect((await me(headers)).statusCode).toBe(200);
    const revoked = await t.app.inject({ method: 'POST', url: `/api/tokens/${id}/revoke`, headers: t.seed.A.admin.headers });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revoked_at).toEqual(expect.any(String));
    expect((await me(headers)).statusCode).toBe(401);
    // Idempotent: revoking again answers the same token, and audits nothing new.
    const again = await t.app.inject({ method: 'POST', url: `/api/tokens/${id}/revoke`, headers: t.seed.A.admin.headers });
    expect(again.json().revoked_at).toBe(revoked.json().revoked_at);
    const audits = await t.store.db.selectFrom('audit_events').select(['action', 'actor_id']).where('target_id', '=', id).orderBy('id').execute();
    expect(audits).toEqual([
      { action: 'token.create', actor_id: t.seed.A.admin.userId },
      { action: 'token.revoke', actor_id: t.seed.A.admin.userId },
    ]);
  });

  run('any user may revoke their own token; the database keeps only its hash', async () => {
    const created = await t.app.inject({ method: 'POST', url: `/api/users/${t.seed.A.viewer.userId}/tokens`, headers: t.seed.A.owner.headers });
    const { id, token } = created.json<{ id: string; token: string }>();
    const stored = await t.store.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(token.slice(12));
    const res = await t.app.inject({ method: 'POST', url: `/api/tokens/${id}/revoke`, headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    expect((await me({ authorization: `Bearer ${token}` })).statusCode).toBe(401);
  });

  run('lists tokens by prefix only', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/api/tokens?user_id=${t.seed.A.owner.userId}`, headers: t.seed.A.admin.headers });
    expect(res.statusCode).toBe(200);
    const items = res.json<{ items: Array<Record<string, unknown>> }>().items;
    expect(items.map((item) => item.id)).toEqual([t.seed.A.owner.tokenId]);
    expect(Object.keys(items[0]!).sort()).toEqual(['business_id', 'created_at', 'id', 'last_used_at', 'name', 'prefix', 'revoked_at', 'user_id']);
    expect(res.body).not.toContain(t.seed.A.owner.token);
  });

  describe('roles', () => {
    const cases: Array<{ route: string; method: 'GET' | 'POST'; url: (t: TestApp) => string; payload?: object; minimum: 'agent' | 'admin' }> = [
      { route: 'POST /api/leads', method: 'POST', url: () => '/api/leads', payload: { leads: [{ phone: '0501234567' }] }, minimum: 'agent' },
      { route: 'POST /api/leads/import', method: 'POST', url: () => '/api/leads/import', minimum: 'agent' },
      { route: 'GET /api/users', method: 'GET', url: () => '/api/users', minimum: 'admin' },
      { route: 'GET /api/users/:id', method: 'GET', url: (t) => `/api/users/${t.seed.A.viewer.userId}`, minimum: 'admin' },
      { route: 'POST /api/users', method: 'POST', url: () => '/api/users', payload: { email: 'x@a.example.com', role: 'viewer' }, minimum: 'admin' },
      { route: 'POST /api/users/:id/tokens', method: 'POST', url: (t) => `/api/users/${t.seed.A.viewer.userId}/tokens`, minimum: 'admin' },
      { route: 'GET /api/tokens', method: 'GET', url: () => '/api/tokens', minimum: 'admin' },
      { route: 'POST /api/tokens/:id/revoke (another user\'s)', method: 'POST', url: (t) => `/api/tokens/${t.seed.A.owner.tokenId}/revoke`, minimum: 'admin' },
    ];
    const below = { agent: ['viewer'], admin: ['viewer', 'agent'] } as const;

    for (const c of cases) {
      run(`${c.route}: 403 forbidden below ${c.minimum}, nothing written`, async () => {
        for (const role of below[c.minimum]) {
          const before = await snapshotTenantTables(t.store.db);
          const res = await t.app.inject({
            method: c.method,
            url: c.url(t),
            headers: { ...t.seed.A[role].headers, ...(c.route.includes('import') ? { 'content-type': 'text/csv' } : {}) },
            ...(c.route.includes('import') ? { payload: 'phone\n0501234567\n' } : c.payload === undefined ? {} : { payload: c.payload }),
          });
          expect(res.statusCode, `${role} on ${c.route}`).toBe(403);
          expect(res.json().error.code).toBe('forbidden');
          expect(await snapshotTenantTables(t.store.db)).toEqual(before);
        }
      });
    }

    run('an admin may not create an owner, nor a token for an owner, nor revoke an owner\'s token', async () => {
      const owner = await t.app.inject({ method: 'POST', url: '/api/users', headers: t.seed.A.admin.headers, payload: { email: 'boss@a.example.com', role: 'owner' } });
      expect(owner.statusCode).toBe(403);
      const token = await t.app.inject({ method: 'POST', url: `/api/users/${t.seed.A.owner.userId}/tokens`, headers: t.seed.A.admin.headers });
      expect(token.statusCode).toBe(403);
      const revoke = await t.app.inject({ method: 'POST', url: `/api/tokens/${t.seed.A.owner.tokenId}/revoke`, headers: t.seed.A.admin.headers });
      expect(revoke.statusCode).toBe(403);
      expect((await me(t.seed.A.owner.headers)).statusCode).toBe(200);
    });

    run('an owner creates users of any role in their own business, audited; a repeated email is a 409', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: 'New.Admin@A.example.com', name: 'נועה', role: 'admin' } });
      expect(res.statusCode).toBe(201);
      const user = res.json<{ id: string; business_id: string; email: string }>();
      expect(user).toMatchObject({ business_id: t.seed.A.businessId, email: 'new.admin@a.example.com' });
      const audit = await t.store.db.selectFrom('audit_events').selectAll().where('target_id', '=', user.id).executeTakeFirstOrThrow();
      expect(audit).toMatchObject({ action: 'user.create', actor_type: 'user', actor_id: t.seed.A.owner.userId, business_id: t.seed.A.businessId });
      const again = await t.app.inject({ method: 'POST', url: '/api/users', headers: t.seed.A.owner.headers, payload: { email: 'new.admin@a.example.com', role: 'viewer' } });
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe('email_taken');
    });

    run('a body cannot choose the business', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: t.seed.A.owner.headers,
        payload: { email: 'sneaky@b.example.com', role: 'viewer', business_id: t.seed.B.businessId },
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().business_id).toBe(t.seed.A.businessId);
    });
  });

  describe('another business\'s ids', () => {
    const securityRows = () => t.store.db.selectFrom('security_events').selectAll().orderBy('id').execute();

    run('answer exactly as missing ids, log a security warning and a security_events row, and change nothing', async () => {
      const missing = '01900000-0000-7000-8000-000000000000';
      const probes: Array<{ method: 'GET' | 'POST'; url: (id: string) => string; foreignId: string; target: string }> = [
        { method: 'GET', url: (id) => `/api/users/${id}`, foreignId: t.seed.B.owner.userId, target: 'user' },
        { method: 'POST', url: (id) => `/api/users/${id}/tokens`, foreignId: t.seed.B.viewer.userId, target: 'user' },
        { method: 'POST', url: (id) => `/api/tokens/${id}/revoke`, foreignId: t.seed.B.agent.tokenId, target: 'token' },
      ];
      for (const probe of probes) {
        const before = await snapshotTenantTables(t.store.db);
        const linesBefore = t.securityLines().length;
        const rowsBefore = (await securityRows()).length;
        const foreign = await t.app.inject({ method: probe.method, url: probe.url(probe.foreignId), headers: t.seed.A.owner.headers });
        const absent = await t.app.inject({ method: probe.method, url: probe.url(missing), headers: t.seed.A.owner.headers });
        expect(foreign.statusCode).toBe(404);
        expect(foreign.body).toBe(absent.body);
        expect(await snapshotTenantTables(t.store.db)).toEqual(before);
        const lines = t.securityLines().slice(linesBefore);
        expect(lines).toHaveLength(1); // the missing id is not an attack
        expect(lines[0]).toMatchObject({
          level: 40,
          actor_user_id: t.seed.A.owner.userId,
          actor_business_id: t.seed.A.businessId,
          target_type: probe.target,
          target_id: probe.foreignId,
          owner_business_id: t.seed.B.businessId,
        });
        const rows = (await securityRows()).slice(rowsBefore);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ kind: 'foreign_access', actor_user_id: t.seed.A.owner.userId, target_id: probe.foreignId, owner_business_id: t.seed.B.businessId });
      }
      // B's agent token still works: A could not revoke it.
      expect((await me(t.seed.B.agent.headers)).statusCode).toBe(200);
    });

    run('lists never include another business\'s users or tokens', async () => {
      const users = await t.app.inject({ method: 'GET', url: '/api/users?limit=1000', headers: t.seed.A.owner.headers });
      const tokens = await t.app.inject({ method: 'GET', url: `/api/tokens?user_id=${t.seed.B.owner.userId}`, headers: t.seed.A.owner.headers });
      expect(users.json().items.every((u: { business_id: string }) => u.business_id === t.seed.A.businessId)).toBe(true);
      expect(tokens.json().items).toEqual([]);
    });
  });

  describe('the admin token', () => {
    run('opens /api/admin/* and nothing else; tenant tokens do not open the admin API', async () => {
      expect((await t.app.inject({ method: 'GET', url: '/api/admin/businesses', headers: t.adminHeaders })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: '/api/admin/businesses' })).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: '/api/admin/businesses', headers: t.seed.A.owner.headers })).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: '/api/admin/businesses', headers: { authorization: 'Bearer test-admin-token-0123456789abcdeX' } })).statusCode).toBe(401);
      expect((await me(t.adminHeaders)).statusCode).toBe(401);
    });

    run('an encoded path cannot reach an admin route with a tenant token', async () => {
      for (const url of ['/api/%61dmin/businesses', '/api/admin%2Fbusinesses', '/api//admin/businesses', '/API/admin/businesses']) {
        const res = await t.app.inject({ method: 'GET', url, headers: t.seed.A.owner.headers });
        expect([401, 404], url).toContain(res.statusCode);
      }
    });
  });

  run('last_used_at is written by a conditional UPDATE, never more than once a minute (checked in SQL)', async () => {
    const { businessId } = t.seed.B;
    const { tokenId } = t.seed.B.viewer;
    const lastUsed = async () =>
      (await t.store.db.selectFrom('api_tokens').select('last_used_at').where('id', '=', tokenId).executeTakeFirstOrThrow()).last_used_at;
    // Stale by two minutes: the store writes it.
    await sql`UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = ${tokenId}`.execute(t.store.db);
    const stale = await lastUsed();
    await touchTokenLastUsed(t.store.db, businessId, tokenId);
    const fresh = await lastUsed();
    expect(fresh!.getTime()).toBeGreaterThan(stale!.getTime());
    // Fresh by 30 s: the store itself refuses, whatever the caller checked.
    await sql`UPDATE api_tokens SET last_used_at = now() - interval '30 seconds' WHERE id = ${tokenId}`.execute(t.store.db);
    const recent = await lastUsed();
    await touchTokenLastUsed(t.store.db, businessId, tokenId);
    expect(await lastUsed()).toEqual(recent);
  });

  run("on the polled run reads (token and run in one statement): the run is the token business's, last_used_at is set, revocation applies at once", async () => {
    const created = await t.app.inject({ method: 'POST', url: `/api/users/${t.seed.A.agent.userId}/tokens`, headers: t.seed.A.admin.headers });
    const { id, token } = created.json<{ id: string; token: string }>();
    const headers = { authorization: `Bearer ${token}` };
    const runA = await createRunViaApi(t, t.seed.A, await addLeads(t.store.db, t.seed.A.businessId, 1));
    const paths = [`/api/outbound/runs/${runA.id}`, `/api/outbound_calls/jobs/${runA.id}/status`];
    for (const url of paths) {
      const res = await t.app.inject({ method: 'GET', url, headers });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ run_id: runA.id });
    }
    const used = await t.store.db.selectFrom('api_tokens').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow();
    expect(used.last_used_at).toBeInstanceOf(Date);
    // Another business's token reads nothing of it: the same 404 as a missing run.
    for (const url of paths) {
      const foreign = await t.app.inject({ method: 'GET', url, headers: t.seed.B.viewer.headers });
      const missing = await t.app.inject({ method: 'GET', url: url.replace(runA.id, '00000000-0000-7000-8000-000000000000'), headers: t.seed.B.viewer.headers });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.body).toBe(missing.body);
    }
    expect((await t.app.inject({ method: 'POST', url: `/api/tokens/${id}/revoke`, headers: t.seed.A.admin.headers })).statusCode).toBe(200);
    for (const url of paths) expect((await t.app.inject({ method: 'GET', url, headers })).statusCode).toBe(401);
  });
});

describe.each(storeFactories)('admin API switched off on $name', (factory) => {
  it.skipIf(!factory.available)('is absent (404 route_not_found) when OCQ_ADMIN_TOKEN is unset, whatever the token', async () => {
    const t = await createTestApp(factory, { config: { adminToken: undefined } });
    try {
      for (const headers of [{}, t.adminHeaders, t.seed.A.owner.headers]) {
        const res = await t.app.inject({ method: 'GET', url: '/api/admin/businesses', headers });
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('route_not_found');
      }
    } finally {
      await t.close();
    }
  });
});
