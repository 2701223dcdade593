/**
 * Isolation over the whole API, driven by its own OpenAPI document: every route that takes an id
 * answers another business's id exactly as a missing one (404, same body), logs the attempt, and
 * changes nothing. Then every mutating route against every role.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../src/admin/service.ts';
import { newId } from '../src/store/ids.ts';
import type { TestApp } from './support/app.ts';
import { countRows, snapshotAllTables, snapshotTenantTables } from './support/db-snapshot.ts';
import { isMutating, MUTATING_ROUTES, openApiOperations, type MinimumRole, type MutatingRoute, type OpenApiOperation } from './support/mutating-routes.ts';
import { createRunTestApp, createRunViaApi, leadsOf } from './support/run-fixtures.ts';
import { storeFactories } from './support/stores.ts';

type Target = 'run' | 'lead' | 'user' | 'token';

/** Which kind of object a path parameter names: the collection segment right before it. */
const TARGET_BY_COLLECTION: Record<string, Target> = { runs: 'run', jobs: 'run', leads: 'lead', users: 'user', tokens: 'token' };

function targetOf(path: string): Target {
  const segments = path.split('/');
  const paramIndex = segments.findIndex((s) => s.startsWith('{'));
  const target = TARGET_BY_COLLECTION[segments[paramIndex - 1] ?? ''];
  if (!target) throw new Error(`no id source for ${path}: add its collection to TARGET_BY_COLLECTION`);
  return target;
}

const fill = (path: string, id: string): string => path.replace(/\{[^}]+\}/g, id);
const RANK: Record<'viewer' | 'agent' | 'admin' | 'owner', number> = { viewer: 0, agent: 1, admin: 2, owner: 3 };
const ROLES = ['viewer', 'agent', 'admin', 'owner'] as const;

describe.each(storeFactories)('isolation and roles on $name', (factory) => {
  let t: TestApp;

  beforeAll(async () => {
    if (factory.available) t = await createRunTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A fresh object of business B of the given kind. */
  async function foreignId(target: Target): Promise<string> {
    const { B } = t.seed;
    switch (target) {
      case 'run':
        return (await createRunViaApi(t, B, await leadsOf(t, B, 2))).id;
      case 'lead':
        return (await leadsOf(t, B, 1))[0]!;
      case 'user':
        return B.viewer.userId;
      case 'token':
        return (await createToken(t.store.db, { userId: B.viewer.userId, name: 'target' })).record.id;
    }
  }

  /** Sends the request with a foreign and then a missing id; asserts 404, same body, one security row, nothing changed. */
  async function expectForeignLikeMissing(
    label: string,
    send: (id: string) => Promise<{ statusCode: number; body: string }>,
    foreign: string,
    target: Target,
  ): Promise<void> {
    const { A, B } = t.seed;
    const before = await snapshotTenantTables(t.store.db);
    const securityBefore = await countRows(t.store.db, 'security_events');
    const linesBefore = t.securityLines().length;

    const foreignAnswer = await send(foreign);
    const missingAnswer = await send(newId());

    expect(foreignAnswer.statusCode, `${label}: ${foreignAnswer.body}`).toBe(404);
    expect(foreignAnswer.body, label).toBe(missingAnswer.body);
    expect(JSON.parse(foreignAnswer.body).error?.code ?? JSON.parse(foreignAnswer.body).code, label).toBe('not_found');

    expect(await countRows(t.store.db, 'security_events'), label).toBe(securityBefore + 1);
    const row = await t.store.db.selectFrom('security_events').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(row, label).toMatchObject({
      kind: 'foreign_access',
      actor_user_id: A.owner.userId,
      actor_business_id: A.businessId,
      owner_business_id: B.businessId,
      target_type: target,
      target_id: foreign,
    });
    const lines = t.securityLines().slice(linesBefore);
    expect(lines, label).toHaveLength(1);
    expect(lines[0], label).toMatchObject({ level: 40, target_id: foreign, owner_business_id: B.businessId, actor_business_id: A.businessId });

    expect(await snapshotTenantTables(t.store.db), `${label} changed data`).toEqual(before);
  }

  it.skipIf(!factory.available)('every route with an id answers a foreign id exactly as a missing one, logs it and changes nothing', async () => {
    const { A } = t.seed;
    const operations = (await openApiOperations(t)).filter((op) => op.pathParams.length > 0 && !op.path.startsWith('/api/admin'));
    expect(operations.length).toBeGreaterThanOrEqual(11);
    const walked: string[] = [];
    for (const op of operations) {
      const target = targetOf(op.path);
      const label = `${op.method} ${op.path}`;
      const foreign = await foreignId(target);
      await expectForeignLikeMissing(
        label,
        (id) =>
          t.app.inject({
            method: op.method as 'GET' | 'POST',
            url: fill(op.path, id),
            headers: A.owner.headers,
            ...(op.requestBody ? { payload: {} } : {}),
          }),
        foreign,
        target,
      );
      walked.push(label);
    }
    // The run routes this suite exists for are all in the document.
    for (const path of [
      'GET /api/outbound/runs/{id}',
      'GET /api/outbound/runs/{id}/jobs',
      'GET /api/outbound/runs/{id}/events',
      'POST /api/outbound/runs/{id}/cancel',
      'POST /api/outbound/runs/{id}/stop',
      'POST /api/outbound_calls/jobs/{run_id}/cancel',
      'GET /api/outbound_calls/jobs/{run_id}/status',
    ]) {
      expect(walked).toContain(path);
    }
  });

  it.skipIf(!factory.available)('ids carried in bodies get the same treatment', async () => {
    const { A } = t.seed;
    const ownLeads = await leadsOf(t, A, 1);
    await expectForeignLikeMissing(
      'POST /api/outbound/stop-queue',
      (id) => t.app.inject({ method: 'POST', url: '/api/outbound/stop-queue', headers: A.owner.headers, payload: { run_id: id } }),
      await foreignId('run'),
      'run',
    );
    await expectForeignLikeMissing(
      'POST /api/outbound/runs',
      (id) => t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A.owner.headers, payload: { lead_ids: [...ownLeads, id] } }),
      await foreignId('lead'),
      'lead',
    );
    // bulk-enqueue refuses a second active run before it looks at leads: give A none.
    for (const run of await t.store.db.selectFrom('runs').select('id').where('business_id', '=', A.businessId).where('status', 'in', ['pending', 'running']).execute()) {
      await t.deps.runControl.stop(A.businessId, run.id, { type: 'user', id: A.owner.userId });
    }
    await expectForeignLikeMissing(
      'POST /api/outbound/bulk-enqueue',
      (id) => t.app.inject({ method: 'POST', url: '/api/outbound/bulk-enqueue', headers: A.owner.headers, payload: { lead_ids: [id] } }),
      await foreignId('lead'),
      'lead',
    );
  });

  it.skipIf(!factory.available)('lists never show another business, whatever the filter', async () => {
    const { A, B } = t.seed;
    const foreignRun = await foreignId('run');
    const queries = ['/api/outbound/runs', '/api/outbound/runs?status=pending', '/api/leads', '/api/users', '/api/tokens', `/api/tokens?user_id=${B.viewer.userId}`, '/api/audit'];
    for (const url of queries) {
      const response = await t.app.inject({ method: 'GET', url, headers: A.owner.headers });
      expect(response.statusCode, url).toBe(200);
      expect(response.body, url).not.toContain(B.businessId);
      expect(response.body, url).not.toContain(foreignRun);
      expect(response.body, url).not.toContain(B.viewer.userId);
    }
    const active = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/jobs/active', headers: A.owner.headers });
    expect(active.body).not.toContain(foreignRun);
  });

  describe.skipIf(!factory.available)('roles on every mutating route', () => {
    it('covers every mutating route of the OpenAPI document', async () => {
      const documented = (await openApiOperations(t)).filter((op: OpenApiOperation) => isMutating(op.method)).map((op) => `${op.method} ${op.path}`);
      expect(MUTATING_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(documented.sort());
    });

    const send = (route: MutatingRoute, request: Awaited<ReturnType<MutatingRoute['valid']>>, headers: Record<string, string>) =>
      t.app.inject({ method: route.method, url: request.url, headers: { ...headers, ...request.headers }, ...(request.payload === undefined ? {} : { payload: request.payload }) });

    it.each(MUTATING_ROUTES.filter((r) => r.access === 'tenant').map((r) => [`${r.method} ${r.path}`, r] as const))(
      '%s: refused below its role with 403 and no change, allowed at and above it',
      async (_label, route) => {
        const min: MinimumRole = route.minRole;
        for (const role of ROLES) {
          const caller = t.seed.A[role];
          const request = await route.valid(t, caller);
          const before = await snapshotAllTables(t.store.db);
          const response = await send(route, request, caller.headers);
          if (RANK[role] < RANK[min]) {
            expect(response.statusCode, `${role}: ${response.body}`).toBe(403);
            expect(response.json().error.code).toBe('forbidden');
            expect(await snapshotAllTables(t.store.db), `${role} changed data`).toEqual(before);
          } else {
            expect([200, 201, 202], `${role}: ${response.statusCode} ${response.body}`).toContain(response.statusCode);
          }
        }
      },
    );

    it.each(MUTATING_ROUTES.filter((r) => r.access === 'admin').map((r) => [`${r.method} ${r.path}`, r] as const))(
      '%s: no tenant token, not even an owner\'s, may use it',
      async (_label, route) => {
        for (const role of ROLES) {
          const request = await route.valid(t, t.seed.A[role]);
          const before = await snapshotAllTables(t.store.db);
          const response = await send(route, request, t.seed.A[role].headers);
          expect(response.statusCode, role).toBe(401);
          expect(await snapshotAllTables(t.store.db), `${role} changed data`).toEqual(before);
        }
        const response = await send(route, await route.valid(t, t.seed.A.owner), t.adminHeaders);
        expect([200, 201, 202], response.body).toContain(response.statusCode);
      },
    );

    it("revoking another user's token needs admin", async () => {
      const { A } = t.seed;
      for (const role of ['viewer', 'agent'] as const) {
        const other = (await createToken(t.store.db, { userId: A.owner.userId, name: 'not yours' })).record.id;
        const before = await snapshotAllTables(t.store.db);
        const response = await t.app.inject({ method: 'POST', url: `/api/tokens/${other}/revoke`, headers: A[role].headers });
        expect(response.statusCode, role).toBe(403);
        expect(await snapshotAllTables(t.store.db)).toEqual(before);
      }
      const target = (await createToken(t.store.db, { userId: A.agent.userId, name: 'revoked by admin' })).record.id;
      expect((await t.app.inject({ method: 'POST', url: `/api/tokens/${target}/revoke`, headers: A.admin.headers })).statusCode).toBe(200);
    });
  });
});
