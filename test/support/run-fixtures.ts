/**
 * What the run-API suites share: a test app with the engine's real RunControl, leads, runs made
 * through the API, and job transitions written through the store's own transition helpers (the
 * way the worker and the webhook write them), so a test can put a run in any state it needs.
 */
import { expect } from 'vitest';
import type { Kysely } from 'kysely';
import { createRunControl } from '../../src/engine/run-control-impl.ts';
import type { RunControl } from '../../src/engine/run-control.ts';
import { publishRunEvent, type RunEventKind } from '../../src/engine/run-events.ts';
import type { RunJson } from '../../src/http/schemas.ts';
import { newId } from '../../src/store/ids.ts';
import { finalizeRequestedRun } from '../../src/store/run-flags.ts';
import type { Database } from '../../src/store/schema.ts';
import { NOW, updateJobStatus, updateRunStatus } from '../../src/store/transitions.ts';
import { createTwilioProvider } from '../../src/telephony/twilio-adapter.ts';
import type { CallOutcome } from '../../src/domain/job-state.ts';
import { createBusiness, createToken, createUser } from '../../src/admin/service.ts';
import { createTestApp, type SeededBusiness, type TestApp, type TestAppOptions } from './app.ts';
import { addLeads } from './seed.ts';
import type { StoreFactory } from './stores.ts';

/**
 * A test app whose cancel/stop go through the engine's RunControl on the same database. No
 * business here has provider credentials, so stop never reaches a carrier: hang-ups are the
 * engine suites' subject, not the API's.
 */
export async function createRunTestApp(factory: StoreFactory, opts: Omit<TestAppOptions, 'runControl'> = {}): Promise<TestApp> {
  const bound: { control?: RunControl } = {};
  const late = (): RunControl => {
    if (!bound.control) throw new Error('RunControl not ready');
    return bound.control;
  };
  // The store is opened inside createTestApp, so the RunControl is bound right after it.
  const runControl: RunControl = {
    cancel: (businessId, runId, actor) => late().cancel(businessId, runId, actor),
    stop: (businessId, runId, actor) => late().stop(businessId, runId, actor),
  };
  const t = await createTestApp(factory, { ...opts, runControl });
  bound.control = createRunControl({
    config: t.deps.config,
    store: t.store,
    logger: t.deps.logger,
    telephony: createTwilioProvider({ apiBaseUrl: 'http://127.0.0.1:9', logger: t.deps.logger }),
  });
  return t;
}

export function leadsOf(t: TestApp, business: { businessId: string }, n: number): Promise<string[]> {
  return addLeads(t.store.db, business.businessId, n);
}

/** POST /api/outbound/runs as the business's agent; asserts 201. */
export async function createRunViaApi(
  t: TestApp,
  business: { agent: { headers: Record<string, string> } },
  leadIds: string[],
  extra: Record<string, unknown> = {},
): Promise<RunJson> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/api/outbound/runs',
    headers: business.agent.headers,
    payload: { lead_ids: leadIds, ...extra },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<RunJson>();
}

/** As a worker taking the run: pending → running, with a lease. */
export async function startRun(db: Kysely<Database>, businessId: string, runId: string, worker = 'test-host:1'): Promise<void> {
  const result = await updateRunStatus(db, 'start', { started_at: NOW, locked_by_worker: worker, lock_token: newId(), lock_ts: NOW })
    .where('id', '=', runId)
    .where('business_id', '=', businessId)
    .executeTakeFirst();
  expect(Number(result.numUpdatedRows)).toBe(1);
}

/** As the dialler: the first `n` queued jobs become `dialing`, each with an attempt and a provider call id. */
export async function dialJobs(db: Kysely<Database>, businessId: string, runId: string, n: number): Promise<string[]> {
  const jobs = await db
    .selectFrom('jobs')
    .select('id')
    .where('business_id', '=', businessId)
    .where('run_id', '=', runId)
    .where('status', '=', 'queued')
    .orderBy('position')
    .limit(n)
    .execute();
  for (const job of jobs) {
    await updateJobStatus(db, { type: 'dial' }, { attempt_id: newId(), provider_call_id: `CA${newId().replace(/-/g, '')}`, dial_started_at: NOW })
      .where('id', '=', job.id)
      .where('business_id', '=', businessId)
      .execute();
  }
  return jobs.map((job) => job.id);
}

/** As the status webhook: the given live jobs end with `outcome`. */
export async function endJobs(db: Kysely<Database>, businessId: string, jobIds: string[], outcome: CallOutcome): Promise<void> {
  for (const id of jobIds) {
    await updateJobStatus(db, { type: 'end', outcome }, { outcome, ended_at: NOW, duration_seconds: outcome === 'completed' ? 7 : 0 })
      .where('id', '=', id)
      .where('business_id', '=', businessId)
      .execute();
  }
}

/** As the webhook after the last live call of a cancelled/stopped run ends. */
export async function finalizeRun(db: Kysely<Database>, businessId: string, runId: string): Promise<void> {
  await finalizeRequestedRun(db, businessId, runId);
}

export function publish(t: TestApp, kind: RunEventKind, business: { businessId: string }, runId: string): Promise<void> {
  return publishRunEvent(t.store.notifier, { kind, runId, businessId: business.businessId });
}

let extraBusinesses = 0;
/** Another business with an agent and a viewer, for tests that need one with no runs yet. */
export async function freshBusiness(t: TestApp): Promise<Pick<SeededBusiness, 'businessId' | 'agent' | 'viewer'>> {
  extraBusinesses += 1;
  const label = `extra${extraBusinesses}`;
  const business = await createBusiness(t.store.db, { name: `Business ${label}`, caller_id: '+97235550001' });
  const user = async (role: 'agent' | 'viewer') => {
    const created = await createUser(t.store.db, { businessId: business.id, email: `${role}@${label}.example.com`, role });
    const { token, record } = await createToken(t.store.db, { userId: created.id });
    return { userId: created.id, tokenId: record.id, token, headers: { authorization: `Bearer ${token}` } };
  };
  return { businessId: business.id, agent: await user('agent'), viewer: await user('viewer') };
}
