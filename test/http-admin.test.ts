/**
 * The system admin API and the `ocq admin` CLI commands, over the real app and database: create,
 * list, read and patch businesses (validated settings), users in any business, tokens for any
 * user (shown once, usable at once), revocation, the security log, and the audit trail.
 */
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerAdminCommands } from '../src/cli/admin-commands.ts';
import type { Store } from '../src/store/database.ts';
import { createTestApp, type TestApp } from './support/app.ts';
import { snapshotTenantTables } from './support/db-snapshot.ts';
import { storeFactories } from './support/stores.ts';

describe.each(storeFactories)('admin API on $name', (factory) => {
  let t: TestApp;
  beforeAll(async () => {
    if (factory.available) t = await createTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = it.skipIf(!factory.available);
  const admin = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: t.adminHeaders, ...(payload ? { payload } : {}) });

  run('creates a business with every setting, reads, lists and patches it, auditing as the admin', async () => {
    const created = await admin('POST', '/api/admin/businesses', {
      name: 'מרפאת שיניים',
      max_concurrent_calls: 5,
      caller_id: '+97235551234',
      timezone: 'Asia/Jerusalem',
      default_region: 'IL',
      call_handler_url: 'https://example.com/twiml',
      ring_timeout_seconds: 25,
      call_time_limit_seconds: 300,
      machine_detection: true,
      provider_credentials_ref: 'env:CLINIC',
    });
    expect(created.statusCode).toBe(201);
    const business = created.json<{ id: string }>();
    expect(business).toMatchObject({ name: 'מרפאת שיניים', max_concurrent_calls: 5, machine_detection: true, provider_credentials_ref: 'env:CLINIC' });
    expect((await admin('GET', `/api/admin/businesses/${business.id}`)).json()).toEqual(created.json());

    const patched = await admin('PATCH', `/api/admin/businesses/${business.id}`, { max_concurrent_calls: 2, caller_id: null, call_handler_url: null });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ max_concurrent_calls: 2, caller_id: null, call_handler_url: null, ring_timeout_seconds: 25 });

    const list = await admin('GET', '/api/admin/businesses?limit=2');
    expect(list.json().items).toHaveLength(2);
    expect(list.json().next_cursor).toEqual(expect.any(String));
    const audits = await t.store.db.selectFrom('audit_events').select(['action', 'actor_type', 'actor_id', 'data']).where('target_id', '=', business.id).orderBy('id').execute();
    expect(audits.map((a) => [a.action, a.actor_type, a.actor_id])).toEqual([
      ['business.create', 'admin', 'admin'],
      ['business.update', 'admin', 'admin'],
    ]);
    expect(audits[1]!.data).toEqual({ before: { max_concurrent_calls: 5, caller_id: '+97235551234', call_handler_url: 'https://example.com/twiml' }, after: { max_concurrent_calls: 2, caller_id: null, call_handler_url: null } });
  });

  run('defaults the settings the schema defaults', async () => {
    const res = await admin('POST', '/api/admin/businesses', { name: 'Defaults' });
    expect(res.json()).toMatchObject({ max_concurrent_calls: 3, caller_id: null, timezone: 'Asia/Jerusalem', default_region: 'IL', ring_timeout_seconds: 30, call_time_limit_seconds: 600, machine_detection: false });
  });

  run('refuses bad settings with a 400 naming the field, and writes nothing', async () => {
    const before = await snapshotTenantTables(t.store.db);
    const bad: Array<[object, string]> = [
      [{ name: '' }, 'name'],
      [{ name: 'x', max_concurrent_calls: 0 }, 'max_concurrent_calls'],
      [{ name: 'x', max_concurrent_calls: 101 }, 'max_concurrent_calls'],
      [{ name: 'x', caller_id: '050-1234567' }, 'caller_id'],
      [{ name: 'x', timezone: 'Mars/Olympus' }, 'timezone'],
      [{ name: 'x', default_region: 'ZZ' }, 'default_region'],
      [{ name: 'x', default_region: 'il' }, 'default_region'],
      [{ name: 'x', call_handler_url: 'ftp://x' }, 'call_handler_url'],
      [{ name: 'x', ring_timeout_seconds: 4 }, 'ring_timeout_seconds'],
      [{ name: 'x', call_time_limit_seconds: 1e9 }, 'call_time_limit_seconds'],
      [{ name: 'x', provider_credentials_ref: 'AC123' }, 'provider_credentials_ref'],
    ];
    for (const [payload, field] of bad) {
      const res = await admin('POST', '/api/admin/businesses', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.details.field).toBe(field);
    }
    const patch = await admin('PATCH', `/api/admin/businesses/${t.seed.A.businessId}`, {});
    expect(patch.statusCode).toBe(400);
    expect(await snapshotTenantTables(t.store.db)).toEqual(before);
  });

  run('a missing business is a plain 404 for the admin', async () => {
    const missing = '01900000-0000-7000-8000-000000000000';
    for (const res of [
      await admin('GET', `/api/admin/businesses/${missing}`),
      await admin('PATCH', `/api/admin/businesses/${missing}`, { name: 'x' }),
      await admin('POST', `/api/admin/businesses/${missing}/users`, { email: 'a@b.c', role: 'owner' }),
      await admin('POST', `/api/admin/users/${missing}/tokens`),
      await admin('POST', `/api/admin/tokens/${missing}/revoke`),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
  });

  run('creates an owner in a business and a token for them, usable at once; revokes it', async () => {
    const user = await admin('POST', `/api/admin/businesses/${t.seed.B.businessId}/users`, { email: 'second.owner@b.example.com', role: 'owner', name: 'שני' });
    expect(user.statusCode).toBe(201);
    const userId = user.json<{ id: string }>().id;
    expect((await admin('POST', `/api/admin/businesses/${t.seed.B.businessId}/users`, { email: 'second.owner@b.example.com', role: 'viewer' })).statusCode).toBe(409);
    const users = await admin('GET', `/api/admin/businesses/${t.seed.B.businessId}/users`);
    expect(users.json().items.map((u: { id: string }) => u.id)).toContain(userId);

    const token = await admin('POST', `/api/admin/users/${userId}/tokens`, { name: 'onboarding' });
    expect(token.statusCode).toBe(201);
    const { id, token: secret } = token.json<{ id: string; token: string }>();
    const headers = { authorization: `Bearer ${secret}` };
    const me = await t.app.inject({ method: 'GET', url: '/api/me', headers });
    expect(me.json()).toMatchObject({ user: { id: userId, role: 'owner' }, business: { id: t.seed.B.businessId } });
    expect((await admin('POST', `/api/admin/tokens/${id}/revoke`)).json().revoked_at).toEqual(expect.any(String));
    expect((await t.app.inject({ method: 'GET', url: '/api/me', headers })).statusCode).toBe(401);
  });

  run('lists the security log of cross-business attempts', async () => {
    await t.app.inject({ method: 'GET', url: `/api/users/${t.seed.B.owner.userId}`, headers: t.seed.A.admin.headers });
    const res = await admin('GET', '/api/admin/security-events?limit=5');
    expect(res.json().items[0]).toMatchObject({ kind: 'foreign_access', actor_user_id: t.seed.A.admin.userId, target_type: 'user', target_id: t.seed.B.owner.userId, owner_business_id: t.seed.B.businessId, route: 'GET /api/users/:id' });
  });
});

describe.each(storeFactories)('ocq admin commands on $name', (factory) => {
  let t: TestApp;
  beforeAll(async () => {
    if (factory.available) t = await createTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = it.skipIf(!factory.available);

  /** Runs `ocq admin ...` against the test database; returns what it printed. */
  async function ocq(...args: string[]): Promise<string> {
    const program = new Command('ocq').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    // The command closes the store it opened; the test keeps this one open.
    const shared: Store = { ...t.store, close: async () => undefined };
    registerAdminCommands(program, async () => shared);
    const printed: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
    try {
      await program.parseAsync(['node', 'ocq', 'admin', ...args]);
    } finally {
      spy.mockRestore();
    }
    return printed.join('\n');
  }

  run('create a business, an owner and a token; --json prints one object with the id (and the token)', async () => {
    const business = JSON.parse(await ocq('business', 'create', '--name', 'CLI Biz', '--max-concurrent-calls', '4', '--caller-id', '+972501112233', '--json'));
    expect(business).toMatchObject({ id: expect.any(String), name: 'CLI Biz', max_concurrent_calls: 4, caller_id: '+972501112233' });
    const user = JSON.parse(await ocq('user', 'create', '--business', business.id, '--email', 'cli@example.com', '--role', 'owner', '--json'));
    expect(user).toMatchObject({ id: expect.any(String), business_id: business.id, role: 'owner' });
    const token = JSON.parse(await ocq('token', 'create', '--user', user.id, '--json'));
    expect(token).toMatchObject({ id: expect.any(String), token: expect.stringMatching(/^ocq_/), user_id: user.id });
    const me = await t.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token.token}` } });
    expect(me.json().business.id).toBe(business.id);

    const human = await ocq('token', 'create', '--user', user.id);
    expect(human).toMatch(/^token [0-9a-f-]{36} created for user [0-9a-f-]{36}\. It is shown only now:\nocq_[A-Za-z0-9_-]{43}$/);
    const revoked = JSON.parse(await ocq('token', 'revoke', '--id', token.id, '--json'));
    expect(revoked.revoked_at).toEqual(expect.any(String));
    expect((await t.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token.token}` } })).statusCode).toBe(401);
  });

  run('refuses bad arguments before touching the database', async () => {
    const before = await snapshotTenantTables(t.store.db);
    await expect(ocq('user', 'create', '--business', t.seed.A.businessId, '--email', 'x@y.z', '--role', 'god')).rejects.toThrow(/must be one of owner, admin, agent, viewer/);
    await expect(ocq('user', 'create', '--business', 'nope', '--email', 'x@y.z', '--role', 'agent')).rejects.toThrow(/UUID/);
    await expect(ocq('business', 'create', '--name', 'x', '--max-concurrent-calls', '500')).rejects.toThrow(/1 to 100/);
    await expect(ocq('business', 'create', '--name', 'x', '--caller-id', '0501234567')).rejects.toThrow(/E\.164/);
    await expect(ocq('business', 'create')).rejects.toThrow(/--name/);
    await expect(ocq('token', 'create', '--user', '01900000-0000-7000-8000-000000000000')).rejects.toThrow(/user not found/);
    expect(await snapshotTenantTables(t.store.db)).toEqual(before);
  });
});
