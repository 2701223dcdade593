/**
 * Every mutating route of the API, each with a request that is valid for a given caller and the
 * least role (or credential) it needs. The role suite sends these valid requests with every role;
 * the fuzz suite corrupts them. Both check this table against `/openapi.json`, so a new mutating
 * route fails them until it is added here.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { createToken } from '../../src/admin/service.ts';
import { ACTIVE_RUN_STATUSES } from '../../src/domain/run-state.ts';
import type { SeededUser, TestApp } from './app.ts';
import { createRunViaApi, leadsOf } from './run-fixtures.ts';

export type MinimumRole = 'viewer' | 'agent' | 'admin';

export interface RouteRequest {
  url: string;
  payload?: string | Record<string, unknown> | unknown[];
  headers?: Record<string, string>;
}

export interface MutatingRoute {
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** As in the OpenAPI document (`{id}` params). */
  path: string;
  /** `tenant` routes take a tenant token and `minRole`; `admin` routes the system admin token. */
  access: 'tenant' | 'admin';
  minRole: MinimumRole;
  /** A request that succeeds for `caller` (creating whatever it acts on first). */
  valid(t: TestApp, caller: SeededUser): Promise<RouteRequest>;
}

const uniqueEmail = (): string => `u${randomBytes(5).toString('hex')}@example.com`;

/** A fresh pending run of business A, made by A's agent. */
async function freshRunOfA(t: TestApp): Promise<string> {
  const { A } = t.seed;
  return (await createRunViaApi(t, A, await leadsOf(t, A, 2))).id;
}

/** The old bulk-enqueue needs a business with no active run: end A's through the store's own flags. */
async function endActiveRunsOfA(t: TestApp): Promise<void> {
  const { A } = t.seed;
  const active = await t.store.db
    .selectFrom('runs')
    .select('id')
    .where('business_id', '=', A.businessId)
    .where('status', 'in', [...ACTIVE_RUN_STATUSES])
    .execute();
  for (const run of active) await t.deps.runControl.stop(A.businessId, run.id, { type: 'user', id: A.owner.userId });
  const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM runs WHERE business_id = ${A.businessId} AND status IN ('pending', 'running')`.execute(t.store.db);
  if (left.rows[0]?.n !== 0) throw new Error('A still has active runs (a live call?)');
}

async function throwawayToken(t: TestApp, userId: string): Promise<string> {
  return (await createToken(t.store.db, { userId, name: 'throwaway' })).record.id;
}

export const MUTATING_ROUTES: MutatingRoute[] = [
  // Users and tokens (owner and admin).
  {
    method: 'POST',
    path: '/api/users',
    access: 'tenant',
    minRole: 'admin',
    valid: async () => ({ url: '/api/users', payload: { email: uniqueEmail(), name: 'דנה כהן', role: 'viewer' } }),
  },
  {
    method: 'POST',
    path: '/api/users/{id}/tokens',
    access: 'tenant',
    minRole: 'admin',
    valid: async (t) => ({ url: `/api/users/${t.seed.A.viewer.userId}/tokens`, payload: { name: 'ci' } }),
  },
  {
    // Anyone may revoke their own token; others' tokens need admin (checked in the isolation suite).
    method: 'POST',
    path: '/api/tokens/{id}/revoke',
    access: 'tenant',
    minRole: 'viewer',
    valid: async (t, caller) => ({ url: `/api/tokens/${await throwawayToken(t, caller.userId)}/revoke` }),
  },
  // Leads (agent and above).
  {
    method: 'POST',
    path: '/api/leads',
    access: 'tenant',
    minRole: 'agent',
    valid: async () => ({ url: '/api/leads', payload: { leads: [{ phone: '050-123-4567', name: 'דנה', external_id: `x-${randomBytes(4).toString('hex')}` }] } }),
  },
  {
    method: 'POST',
    path: '/api/leads/import',
    access: 'tenant',
    minRole: 'agent',
    valid: async () => ({ url: '/api/leads/import', payload: 'phone,name\n0521234567,רון\n', headers: { 'content-type': 'text/csv' } }),
  },
  // Runs (agent and above).
  {
    method: 'POST',
    path: '/api/outbound/runs',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => ({ url: '/api/outbound/runs', payload: { lead_ids: await leadsOf(t, t.seed.A, 2), name: 'role check', concurrency: 2 } }),
  },
  {
    method: 'POST',
    path: '/api/outbound/runs/{id}/cancel',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => ({ url: `/api/outbound/runs/${await freshRunOfA(t)}/cancel` }),
  },
  {
    method: 'POST',
    path: '/api/outbound/runs/{id}/stop',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => ({ url: `/api/outbound/runs/${await freshRunOfA(t)}/stop` }),
  },
  // The old system's paths (agent and above).
  {
    method: 'POST',
    path: '/api/outbound/stop-queue',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => ({ url: '/api/outbound/stop-queue', payload: { run_id: await freshRunOfA(t) } }),
  },
  {
    method: 'POST',
    path: '/api/outbound_calls/jobs/{run_id}/cancel',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => ({ url: `/api/outbound_calls/jobs/${await freshRunOfA(t)}/cancel` }),
  },
  {
    method: 'POST',
    path: '/api/outbound/bulk-enqueue',
    access: 'tenant',
    minRole: 'agent',
    valid: async (t) => {
      await endActiveRunsOfA(t);
      return { url: '/api/outbound/bulk-enqueue', payload: { lead_ids: await leadsOf(t, t.seed.A, 2), concurrency: 2 } };
    },
  },
  // System admin.
  {
    method: 'POST',
    path: '/api/admin/businesses',
    access: 'admin',
    minRole: 'admin',
    valid: async () => ({ url: '/api/admin/businesses', payload: { name: 'עסק חדש', max_concurrent_calls: 2, caller_id: '+97235550002' } }),
  },
  {
    method: 'PATCH',
    path: '/api/admin/businesses/{id}',
    access: 'admin',
    minRole: 'admin',
    valid: async (t) => ({ url: `/api/admin/businesses/${t.seed.B.businessId}`, payload: { ring_timeout_seconds: 25 } }),
  },
  {
    method: 'POST',
    path: '/api/admin/businesses/{id}/users',
    access: 'admin',
    minRole: 'admin',
    valid: async (t) => ({ url: `/api/admin/businesses/${t.seed.B.businessId}/users`, payload: { email: uniqueEmail(), role: 'agent' } }),
  },
  {
    method: 'POST',
    path: '/api/admin/users/{id}/tokens',
    access: 'admin',
    minRole: 'admin',
    valid: async (t) => ({ url: `/api/admin/users/${t.seed.B.viewer.userId}/tokens`, payload: {} }),
  },
  {
    method: 'POST',
    path: '/api/admin/tokens/{id}/revoke',
    access: 'admin',
    minRole: 'admin',
    valid: async (t) => ({ url: `/api/admin/tokens/${await throwawayToken(t, t.seed.B.viewer.userId)}/revoke` }),
  },
];

export interface OpenApiOperation {
  method: string;
  path: string;
  pathParams: string[];
  requestBody?: unknown;
}

/** Every operation of the app's OpenAPI document. */
export async function openApiOperations(t: TestApp): Promise<OpenApiOperation[]> {
  const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  const doc = response.json<{ paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; requestBody?: unknown }>> }>();
  const operations: OpenApiOperation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
        requestBody: operation.requestBody,
      });
    }
  }
  return operations;
}

export const isMutating = (method: string): boolean => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method);
