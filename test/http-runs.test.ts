import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeRunEvents, type RunEventMessage } from '../src/engine/run-events.ts';
import type { JobJson, RunJson } from '../src/http/schemas.ts';
import { newId } from '../src/store/ids.ts';
import type { TestApp } from './support/app.ts';
import { countRows } from './support/db-snapshot.ts';
import { createRunTestApp, createRunViaApi, dialJobs, endJobs, finalizeRun, leadsOf, startRun } from './support/run-fixtures.ts';
import { storeFactories } from './support/stores.ts';

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe.each(storeFactories)('runs API on $name', (factory) => {
  let t: TestApp;

  beforeAll(async () => {
    if (factory.available) t = await createRunTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });

  describe.skipIf(!factory.available)('create', () => {
    it('creates a run with every field at the top level, audits it and wakes the workers', async () => {
      const { A } = t.seed;
      const leads = await leadsOf(t, A, 3);
      const events: RunEventMessage[] = [];
      let sawCreated: (m: RunEventMessage) => void = () => undefined;
      const created = new Promise<RunEventMessage>((resolve) => (sawCreated = resolve));
      const unsubscribe = await subscribeRunEvents(t.store.notifier, (message) => {
        events.push(message);
        if (message.kind === 'created') sawCreated(message);
      });
      try {
        const run = await createRunViaApi(t, A, leads, { name: 'קמפיין יום ראשון' });
        expect(run).toMatchObject({
          status: 'pending',
          name: 'קמפיין יום ראשון',
          concurrency: 3,
          total: 3,
          queued: 3,
          in_progress: 0,
          dialing: 0,
          ringing: 0,
          in_call: 0,
          completed: 0,
          failed: 0,
          no_answer: 0,
          busy: 0,
          cancelled: 0,
          unknown: 0,
          cursor_position: 0,
          progress_pct: 0,
          cancel_requested: false,
          stop_requested: false,
          can_cancel: true,
          locked_by_worker: null,
          lock_ts: null,
          created_by_user_id: A.agent.userId,
          started_at: null,
          ended_at: null,
          last_error: null,
          run_id: run.id,
          total_leads: 3,
          completed_at: null,
        });
        expect(run.created_at).toMatch(ISO_WITH_ZONE);
        expect(await created).toEqual({ kind: 'created', runId: run.id, businessId: A.businessId });

        const audit = await t.store.db.selectFrom('audit_events').selectAll().where('target_id', '=', run.id).execute();
        expect(audit).toHaveLength(1);
        expect(audit[0]).toMatchObject({ business_id: A.businessId, actor_type: 'user', actor_id: A.agent.userId, action: 'run.create', target_type: 'run' });
        expect(audit[0]?.data).toMatchObject({ before: null, after: 'pending', total: 3, source: 'api' });
      } finally {
        await unsubscribe();
      }
    });

    it('makes one job per distinct lead, in the order given', async () => {
      const { A } = t.seed;
      const [a, b, c] = await leadsOf(t, A, 3);
      const run = await createRunViaApi(t, A, [c!, a!, c!, b!, a!]);
      expect(run.total).toBe(3);
      const jobs = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}/jobs`, headers: A.viewer.headers });
      expect(jobs.json<{ items: JobJson[] }>().items.map((j) => j.lead_id)).toEqual([c, a, b]);
    });

    it('takes every lead of the business (and only its own) with all_leads', async () => {
      const { A, B } = t.seed;
      await leadsOf(t, B, 4);
      const own = await t.store.db.selectFrom('leads').select('id').where('business_id', '=', A.businessId).execute();
      const response = await t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A.agent.headers, payload: { all_leads: true } });
      expect(response.statusCode).toBe(201);
      expect(response.json<RunJson>().total).toBe(own.length);
    });

    it('defaults concurrency to min(3, the business cap)', async () => {
      const { A } = t.seed;
      const leads = await leadsOf(t, A, 1);
      await t.store.db.updateTable('businesses').set({ max_concurrent_calls: 2 }).where('id', '=', A.businessId).execute();
      try {
        expect((await createRunViaApi(t, A, leads)).concurrency).toBe(2);
        expect((await createRunViaApi(t, A, leads, { concurrency: 7 })).concurrency).toBe(7);
      } finally {
        await t.store.db.updateTable('businesses').set({ max_concurrent_calls: 3 }).where('id', '=', A.businessId).execute();
      }
    });

    it('answers a lead of another business exactly as a missing lead, creates nothing and logs the attempt', async () => {
      const { A, B } = t.seed;
      const [own] = await leadsOf(t, A, 1);
      const [foreign] = await leadsOf(t, B, 1);
      const runsBefore = await countRows(t.store.db, 'runs');
      const securityBefore = await t.store.db.selectFrom('security_events').selectAll().where('target_id', '=', foreign!).execute();
      const post = (ids: string[]) => t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A.agent.headers, payload: { lead_ids: ids } });

      const foreignAnswer = await post([own!, foreign!]);
      const missingAnswer = await post([own!, newId()]);
      expect(foreignAnswer.statusCode).toBe(404);
      expect(foreignAnswer.body).toBe(missingAnswer.body);
      expect(foreignAnswer.json()).toEqual({ error: { code: 'not_found', message: 'lead not found', details: { target: 'lead' } } });
      expect(await countRows(t.store.db, 'runs')).toBe(runsBefore);

      const security = await t.store.db.selectFrom('security_events').selectAll().where('target_id', '=', foreign!).execute();
      expect(security.length).toBe(securityBefore.length + 1);
      expect(security.at(-1)).toMatchObject({ actor_user_id: A.agent.userId, actor_business_id: A.businessId, owner_business_id: B.businessId, target_type: 'lead' });
    });

    it('refuses bad bodies with 400 naming the field', async () => {
      const { A } = t.seed;
      const leads = await leadsOf(t, A, 1);
      const cases: Array<[Record<string, unknown>, string]> = [
        [{}, 'lead_ids'],
        [{ lead_ids: leads, all_leads: true }, 'lead_ids'],
        [{ lead_ids: [] }, 'lead_ids'],
        [{ lead_ids: ['not-a-uuid'] }, 'lead_ids[0]'],
        [{ lead_ids: leads, concurrency: 0 }, 'concurrency'],
        [{ lead_ids: leads, concurrency: 11 }, 'concurrency'],
        [{ lead_ids: leads, concurrency: 2.5 }, 'concurrency'],
        [{ lead_ids: leads, name: 'x'.repeat(201) }, 'name'],
      ];
      for (const [payload, field] of cases) {
        const response = await t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A.agent.headers, payload });
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(response.json().error.details.field, JSON.stringify(payload)).toBe(field);
      }
    });

    it('lets agents, admins and owners create runs, and not viewers', async () => {
      const { A } = t.seed;
      const leads = await leadsOf(t, A, 1);
      for (const role of ['agent', 'admin', 'owner'] as const) {
        const response = await t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A[role].headers, payload: { lead_ids: leads } });
        expect(response.statusCode, role).toBe(201);
      }
      const viewer = await t.app.inject({ method: 'POST', url: '/api/outbound/runs', headers: A.viewer.headers, payload: { lead_ids: leads } });
      expect(viewer.statusCode).toBe(403);
      expect(viewer.json().error.code).toBe('forbidden');
    });
  });

  describe.skipIf(!factory.available)('read', () => {
    it('reads one run, never cached, in Hebrew on request when missing', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 2));
      const response = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}`, headers: A.viewer.headers });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json()).toEqual(run);

      const missing = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${newId()}`, headers: { ...A.viewer.headers, 'accept-language': 'he-IL,he;q=0.9' } });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error).toMatchObject({ code: 'not_found', message: 'הרצה לא נמצאה' });

      const malformed = await t.app.inject({ method: 'GET', url: '/api/outbound/runs/1%27%20OR%201=1', headers: A.viewer.headers });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().error.details.field).toBe('id');
    });

    it("lists the business's runs newest first, by cursor, with a status filter", async () => {
      const { A, B } = t.seed;
      const leads = await leadsOf(t, A, 1);
      await createRunViaApi(t, B, await leadsOf(t, B, 1));
      const made = [await createRunViaApi(t, A, leads), await createRunViaApi(t, A, leads), await createRunViaApi(t, A, leads)];
      await startRun(t.store.db, A.businessId, made[1]!.id);

      const seen: RunJson[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
        const page = await t.app.inject({ method: 'GET', url: `/api/outbound/runs${query}`, headers: A.viewer.headers });
        expect(page.statusCode).toBe(200);
        const body = page.json<{ items: RunJson[]; next_cursor: string | null }>();
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...body.items);
        cursor = body.next_cursor;
      } while (cursor);
      const ownIds = (await t.store.db.selectFrom('runs').select('id').where('business_id', '=', A.businessId).orderBy('id', 'desc').execute()).map((r) => r.id);
      expect(seen.map((r) => r.id)).toEqual(ownIds);

      const running = await t.app.inject({ method: 'GET', url: '/api/outbound/runs?status=running', headers: A.viewer.headers });
      expect(running.json<{ items: RunJson[] }>().items.map((r) => r.id)).toEqual([made[1]!.id]);
      const bad = await t.app.inject({ method: 'GET', url: '/api/outbound/runs?status=bogus', headers: A.viewer.headers });
      expect(bad.statusCode).toBe(400);
    });

    it("lists a run's jobs in dial order by cursor, with phone, name, times and a status filter", async () => {
      const { A } = t.seed;
      const leads = await leadsOf(t, A, 5);
      const run = await createRunViaApi(t, A, leads);
      await startRun(t.store.db, A.businessId, run.id);
      const [first, second] = await dialJobs(t.store.db, A.businessId, run.id, 2);
      await endJobs(t.store.db, A.businessId, [first!], 'completed');

      const seen: JobJson[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
        const page = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}/jobs${query}`, headers: A.viewer.headers });
        const body = page.json<{ items: JobJson[]; next_cursor: string | null }>();
        seen.push(...body.items);
        cursor = body.next_cursor;
      } while (cursor);
      expect(seen.map((j) => j.lead_id)).toEqual(leads);
      expect(seen.map((j) => j.position)).toEqual([0, 1, 2, 3, 4]);
      const lead0 = await t.store.db.selectFrom('leads').selectAll().where('id', '=', leads[0]!).executeTakeFirstOrThrow();
      expect(seen[0]).toMatchObject({ id: first, phone: lead0.phone_e164, name: lead0.name, status: 'completed', outcome: 'completed', duration_seconds: 7 });
      expect(seen[0]?.provider_call_id).toMatch(/^CA/);
      expect(seen[0]?.attempt_id).toBeTruthy();
      expect(seen[0]?.dial_started_at).toMatch(ISO_WITH_ZONE);
      expect(seen[0]?.ended_at).toMatch(ISO_WITH_ZONE);
      expect(seen[1]).toMatchObject({ id: second, status: 'dialing', ended_at: null });

      const queued = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}/jobs?status=queued`, headers: A.viewer.headers });
      expect(queued.json<{ items: JobJson[] }>().items.map((j) => j.lead_id)).toEqual(leads.slice(2));

      const detail = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}`, headers: A.viewer.headers });
      expect(detail.json()).toMatchObject({ status: 'running', queued: 3, dialing: 1, in_progress: 1, completed: 1, cursor_position: 1, progress_pct: 20, locked_by_worker: 'test-host:1' });
      expect(detail.json().started_at).toMatch(ISO_WITH_ZONE);
      expect(detail.json().lock_ts).toMatch(ISO_WITH_ZONE);
    });
  });

  describe.skipIf(!factory.available)('cancel and stop', () => {
    it('cancel: 202, queued jobs cancelled, idempotent while calls are live, 409 with the status once ended', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 5));
      await startRun(t.store.db, A.businessId, run.id);
      const live = await dialJobs(t.store.db, A.businessId, run.id, 1);
      const cancel = () => t.app.inject({ method: 'POST', url: `/api/outbound/runs/${run.id}/cancel`, headers: A.agent.headers });

      const first = await cancel();
      expect(first.statusCode).toBe(202);
      expect(first.json()).toMatchObject({ id: run.id, status: 'running', cancel_requested: true, can_cancel: false, queued: 0, cancelled: 4, in_progress: 1, cancelled_jobs: 4 });

      const again = await cancel();
      expect(again.statusCode).toBe(202);
      expect(again.json()).toMatchObject({ status: 'running', cancelled_jobs: 0 });

      await endJobs(t.store.db, A.businessId, live, 'completed');
      await finalizeRun(t.store.db, A.businessId, run.id);
      const ended = await cancel();
      expect(ended.statusCode).toBe(409);
      expect(ended.json().error).toMatchObject({ code: 'run_already_ended', details: { status: 'cancelled' } });

      const actions = await t.store.db.selectFrom('audit_events').select('action').where('target_id', '=', run.id).orderBy('id').execute();
      expect(actions.map((a) => a.action)).toEqual(['run.create', 'run.cancel']);
    });

    it('stop: 200, ends a run with nothing live at once, then 409 with its status', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 3));
      const stop = () => t.app.inject({ method: 'POST', url: `/api/outbound/runs/${run.id}/stop`, headers: A.agent.headers, payload: {} });
      const first = await stop();
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ status: 'stopped', stop_requested: true, cancelled: 3, cancelled_jobs: 3, cursor_position: 3 });
      expect(first.json().ended_at).toMatch(ISO_WITH_ZONE);
      const again = await stop();
      expect(again.statusCode).toBe(409);
      expect(again.json().error).toMatchObject({ code: 'run_already_ended', details: { status: 'stopped' } });
    });

    it('stop with a live call: 200 and idempotent until the call ends', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 2));
      await startRun(t.store.db, A.businessId, run.id);
      await dialJobs(t.store.db, A.businessId, run.id, 1);
      for (const cancelledJobs of [1, 0]) {
        const response = await t.app.inject({ method: 'POST', url: `/api/outbound/runs/${run.id}/stop`, headers: A.admin.headers });
        expect(response.statusCode).toBe(200);
        expect(response.json()).toMatchObject({ status: 'running', stop_requested: true, in_progress: 1, cancelled_jobs: cancelledJobs });
      }
    });

    it('refuses viewers (403) and answers a missing run 404', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 1));
      for (const action of ['cancel', 'stop']) {
        const viewer = await t.app.inject({ method: 'POST', url: `/api/outbound/runs/${run.id}/${action}`, headers: A.viewer.headers });
        expect(viewer.statusCode).toBe(403);
        const missing = await t.app.inject({ method: 'POST', url: `/api/outbound/runs/${newId()}/${action}`, headers: A.agent.headers });
        expect(missing.statusCode).toBe(404);
      }
      const after = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}`, headers: A.viewer.headers });
      expect(after.json()).toMatchObject({ status: 'pending', cancel_requested: false, stop_requested: false });
    });
  });

  describe.skipIf(!factory.available)('audit', () => {
    it('shows owners and admins their own business trail, newest first, by cursor; others get 403', async () => {
      const { A, B } = t.seed;
      await createRunViaApi(t, B, await leadsOf(t, B, 1));
      const seen: Array<{ id: string; action: string; at: string }> = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
        const page = await t.app.inject({ method: 'GET', url: `/api/audit${query}`, headers: A.owner.headers });
        expect(page.statusCode).toBe(200);
        const body = page.json<{ items: Array<{ id: string; action: string; at: string }>; next_cursor: string | null }>();
        seen.push(...body.items);
        cursor = body.next_cursor;
      } while (cursor);
      const own = await t.store.db.selectFrom('audit_events').select('id').where('business_id', '=', A.businessId).orderBy('id', 'desc').execute();
      expect(seen.map((e) => e.id)).toEqual(own.map((e) => e.id));
      expect(seen.some((e) => e.action === 'run.create')).toBe(true);
      expect(seen[0]?.at).toMatch(ISO_WITH_ZONE);

      expect((await t.app.inject({ method: 'GET', url: '/api/audit', headers: A.admin.headers })).statusCode).toBe(200);
      for (const role of ['agent', 'viewer'] as const) {
        expect((await t.app.inject({ method: 'GET', url: '/api/audit', headers: A[role].headers })).statusCode, role).toBe(403);
      }
      expect((await t.app.inject({ method: 'GET', url: '/api/audit' })).statusCode).toBe(401);
    });
  });
});
