/** The old system's outbound paths: same paths, field names and Hebrew messages; 404 for foreign runs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../src/store/ids.ts';
import type { TestApp } from './support/app.ts';
import { countRows } from './support/db-snapshot.ts';
import { createRunTestApp, createRunViaApi, dialJobs, endJobs, freshBusiness, leadsOf, startRun } from './support/run-fixtures.ts';
import { storeFactories } from './support/stores.ts';

const OLD_RUN_FIELDS = [
  'run_id',
  'status',
  'queued',
  'in_progress',
  'completed',
  'failed',
  'cursor_position',
  'last_error',
  'total_leads',
  'concurrency',
  'created_at',
  'started_at',
  'ended_at',
  'completed_at',
  'can_cancel',
  'cancel_requested',
];
const OLD_STATUS_FIELDS = ['job_id', 'status', 'total', 'processed', 'success', 'failed', 'in_progress', 'queued', 'progress_pct', 'can_cancel', 'cancel_requested', 'created_at', 'completed_at'];
const OLD_ACTIVE_FIELDS = [
  'ok',
  'active',
  'job_id',
  'run_id',
  'status',
  'total',
  'processed',
  'success',
  'failed',
  'in_progress',
  'queued',
  'queue_len',
  'progress_pct',
  'can_cancel',
  'cancel_requested',
  'concurrency',
  'created_at',
  'completed_at',
  'last_activity',
];

describe.each(storeFactories)('old system paths on $name', (factory) => {
  let t: TestApp;

  beforeAll(async () => {
    if (factory.available) t = await createRunTestApp(factory);
  });
  afterAll(async () => {
    await t?.close();
  });

  const bulkEnqueue = (headers: Record<string, string>, payload: unknown) =>
    t.app.inject({ method: 'POST', url: '/api/outbound/bulk-enqueue', headers, payload: payload as Record<string, unknown> });

  describe.skipIf(!factory.available)('POST /api/outbound/bulk-enqueue', () => {
    it('answers 202 {success, run_id, job_id, queued}, then 409 while that run is active, leaving no orphan run', async () => {
      const biz = await freshBusiness(t);
      const leads = await leadsOf(t, biz, 4);
      const first = await bulkEnqueue(biz.agent.headers, { lead_ids: [...leads, leads[0]], concurrency: 2, outbound_list_id: 17, project_id: 'p-1' });
      expect(first.statusCode).toBe(202);
      const body = first.json();
      expect(body).toMatchObject({ success: true, queued: 4, job_id: body.run_id, status: 'pending' });
      const run = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${body.run_id}`, headers: biz.viewer.headers });
      expect(run.json()).toMatchObject({ concurrency: 2, total: 4, created_by_user_id: biz.agent.userId });
      const audit = await t.store.db.selectFrom('audit_events').selectAll().where('target_id', '=', body.run_id).execute();
      expect(audit.map((a) => [a.action, a.data.source])).toEqual([['run.create', 'bulk-enqueue']]);

      const runsBefore = await countRows(t.store.db, 'runs');
      const second = await bulkEnqueue(biz.agent.headers, { lead_ids: leads });
      expect(second.statusCode).toBe(409);
      expect(second.json()).toMatchObject({ success: false, active_job_id: body.run_id, active_job_status: 'pending' });
      expect(second.json().error).toMatch(/^תור שיחות פעיל כבר קיים/);
      expect(await countRows(t.store.db, 'runs')).toBe(runsBefore);

      // Once the run has ended, the business may enqueue again.
      const cancel = await t.app.inject({ method: 'POST', url: `/api/outbound_calls/jobs/${body.run_id}/cancel`, headers: biz.agent.headers });
      expect(cancel.json().status).toBe('cancelled');
      expect((await bulkEnqueue(biz.agent.headers, { lead_ids: leads })).statusCode).toBe(202);
    });

    it('lets exactly one of several simultaneous requests through', async () => {
      const biz = await freshBusiness(t);
      const leads = await leadsOf(t, biz, 50);
      const answers = await Promise.all(Array.from({ length: 6 }, () => bulkEnqueue(biz.agent.headers, { lead_ids: leads })));
      expect(answers.map((a) => a.statusCode).sort()).toEqual([202, 409, 409, 409, 409, 409]);
      const runs = await t.store.db.selectFrom('runs').select('id').where('business_id', '=', biz.businessId).execute();
      expect(runs).toHaveLength(1);
      for (const answer of answers.filter((a) => a.statusCode === 409)) expect(answer.json().active_job_id).toBe(runs[0]?.id);
    });

    it('refuses a concurrency outside 1..10 with the old Hebrew message, and defaults it to 3', async () => {
      const biz = await freshBusiness(t);
      const leads = await leadsOf(t, biz, 1);
      for (const concurrency of [0, 11, -3, 1e12]) {
        const response = await bulkEnqueue(biz.agent.headers, { lead_ids: leads, concurrency });
        expect(response.statusCode, String(concurrency)).toBe(400);
        expect(response.json()).toMatchObject({ success: false, error: 'מספר שיחות במקביל חייב להיות בין 1 ל-10' });
      }
      expect(await t.store.db.selectFrom('runs').select('id').where('business_id', '=', biz.businessId).execute()).toEqual([]);
      const ok = await bulkEnqueue(biz.agent.headers, { lead_ids: leads });
      expect(ok.statusCode).toBe(202);
      const run = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${ok.json().run_id}`, headers: biz.viewer.headers });
      expect(run.json().concurrency).toBe(3);
    });

    it('answers a lead of another business 404 like a missing one; refuses viewers', async () => {
      const { A, B } = t.seed;
      const biz = await freshBusiness(t);
      const [foreign] = await leadsOf(t, B, 1);
      const viaForeign = await bulkEnqueue(biz.agent.headers, { lead_ids: [foreign] });
      const viaMissing = await bulkEnqueue(biz.agent.headers, { lead_ids: [newId()] });
      expect(viaForeign.statusCode).toBe(404);
      expect(viaForeign.body).toBe(viaMissing.body);
      expect((await bulkEnqueue(A.viewer.headers, { lead_ids: await leadsOf(t, A, 1) })).statusCode).toBe(403);
    });
  });

  describe.skipIf(!factory.available)('reading', () => {
    it('GET /api/outbound/runs/:id carries every old field', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 2));
      const response = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${run.id}`, headers: A.viewer.headers });
      for (const field of OLD_RUN_FIELDS) expect(response.json(), field).toHaveProperty(field);
      expect(response.json()).toMatchObject({ run_id: run.id, total_leads: 2, can_cancel: true, completed_at: null });
    });

    it('GET /api/outbound_calls/jobs/:run_id/status: old fields and counts; 404 "תור לא נמצא" for missing and foreign alike', async () => {
      const { A, B } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 6));
      await startRun(t.store.db, A.businessId, run.id);
      const dialled = await dialJobs(t.store.db, A.businessId, run.id, 4);
      await endJobs(t.store.db, A.businessId, [dialled[0]!, dialled[1]!], 'completed');
      await endJobs(t.store.db, A.businessId, [dialled[2]!], 'busy');

      const response = await t.app.inject({ method: 'GET', url: `/api/outbound_calls/jobs/${run.id}/status`, headers: A.viewer.headers });
      expect(response.statusCode).toBe(200);
      for (const field of OLD_STATUS_FIELDS) expect(response.json(), field).toHaveProperty(field);
      expect(response.json()).toMatchObject({
        job_id: run.id,
        status: 'running',
        total: 6,
        processed: 3,
        success: 2,
        failed: 1,
        in_progress: 1,
        queued: 2,
        progress_pct: 50,
        can_cancel: true,
        cancel_requested: false,
        completed_at: null,
      });

      const foreignRun = await createRunViaApi(t, B, await leadsOf(t, B, 1));
      const he = { 'accept-language': 'he' };
      const foreign = await t.app.inject({ method: 'GET', url: `/api/outbound_calls/jobs/${foreignRun.id}/status`, headers: { ...A.owner.headers, ...he } });
      const missing = await t.app.inject({ method: 'GET', url: `/api/outbound_calls/jobs/${newId()}/status`, headers: { ...A.owner.headers, ...he } });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.body).toBe(missing.body);
      expect(foreign.json().error.message).toBe('תור לא נמצא');
    });

    it('GET /api/outbound_calls/jobs/active: always 200, every old field, active or not', async () => {
      const biz = await freshBusiness(t);
      const idle = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/jobs/active', headers: biz.viewer.headers });
      expect(idle.statusCode).toBe(200);
      for (const field of OLD_ACTIVE_FIELDS) expect(idle.json(), field).toHaveProperty(field);
      expect(idle.json()).toMatchObject({ ok: true, active: false, job_id: null, run_id: null, total: 0 });

      const run = await createRunViaApi(t, biz, await leadsOf(t, biz, 3), { concurrency: 2 });
      await startRun(t.store.db, biz.businessId, run.id);
      await dialJobs(t.store.db, biz.businessId, run.id, 1);
      const active = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/jobs/active', headers: biz.viewer.headers });
      for (const field of OLD_ACTIVE_FIELDS) expect(active.json(), field).toHaveProperty(field);
      expect(active.json()).toMatchObject({ ok: true, active: true, job_id: run.id, run_id: run.id, status: 'running', total: 3, in_progress: 1, queued: 2, queue_len: 2, concurrency: 2 });
      expect(active.json().last_activity).toMatch(/Z$/);

      // Another business's active run is never "active" here.
      const other = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/jobs/active', headers: (await freshBusiness(t)).viewer.headers });
      expect(other.json()).toMatchObject({ active: false, job_id: null });
    });

    it('GET /api/outbound_calls/counts: live calls over all the business runs, and its cap', async () => {
      const biz = await freshBusiness(t);
      const zero = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/counts', headers: biz.viewer.headers });
      expect(zero.json()).toEqual({ active_total: 0, active_outbound: 0, max_total: 3, max_outbound: 3 });
      for (let i = 0; i < 2; i += 1) {
        const run = await createRunViaApi(t, biz, await leadsOf(t, biz, 2));
        await startRun(t.store.db, biz.businessId, run.id);
        await dialJobs(t.store.db, biz.businessId, run.id, 1);
      }
      const busy = await t.app.inject({ method: 'GET', url: '/api/outbound_calls/counts', headers: biz.viewer.headers });
      expect(busy.json()).toEqual({ active_total: 2, active_outbound: 2, max_total: 3, max_outbound: 3 });
    });
  });

  describe.skipIf(!factory.available)('cancelling and stopping', () => {
    it('POST /api/outbound_calls/jobs/:run_id/cancel: the old message; an ended run is 400 "התור כבר במצב X"', async () => {
      const { A } = t.seed;
      const run = await createRunViaApi(t, A, await leadsOf(t, A, 3));
      const cancel = () => t.app.inject({ method: 'POST', url: `/api/outbound_calls/jobs/${run.id}/cancel`, headers: A.agent.headers });
      const first = await cancel();
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ success: true, message: 'בקשת ביטול נשלחה - התור יופסק בקרוב', job_id: run.id, cancelled_jobs: 3, status: 'cancelled' });
      const again = await cancel();
      expect(again.statusCode).toBe(400);
      expect(again.json()).toMatchObject({ success: false, message: 'התור כבר במצב cancelled' });
      const viewer = await t.app.inject({ method: 'POST', url: `/api/outbound_calls/jobs/${run.id}/cancel`, headers: A.viewer.headers });
      expect(viewer.statusCode).toBe(403);
    });

    it('POST /api/outbound/stop-queue: 400 without run_id, the old messages, 404 for foreign and missing alike', async () => {
      const { A, B } = t.seed;
      const stopQueue = (headers: Record<string, string>, payload?: unknown) =>
        t.app.inject({ method: 'POST', url: '/api/outbound/stop-queue', headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

      for (const payload of [undefined, {}, { run_id: null }, { run_id: '' }]) {
        const response = await stopQueue(A.agent.headers, payload);
        expect(response.statusCode, JSON.stringify(payload)).toBe(400);
        expect(response.json(), JSON.stringify(payload)).toMatchObject({ success: false, error: 'חסר run_id', message: 'חסר run_id' });
      }
      const malformed = await stopQueue(A.agent.headers, { run_id: "1' OR '1'='1" });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json().error.details.field).toBe('run_id');

      const run = await createRunViaApi(t, A, await leadsOf(t, A, 4));
      await startRun(t.store.db, A.businessId, run.id);
      await dialJobs(t.store.db, A.businessId, run.id, 1);
      const stopped = await stopQueue(A.agent.headers, { run_id: run.id });
      expect(stopped.statusCode).toBe(200);
      expect(stopped.json()).toMatchObject({ success: true, message: 'התור נעצר (3 שיחות בוטלו, שיחות פעילות יסתיימו)', cancelled_jobs: 3, status: 'running' });

      const ended = await createRunViaApi(t, A, await leadsOf(t, A, 1));
      await stopQueue(A.agent.headers, { run_id: ended.id });
      const again = await stopQueue(A.agent.headers, { run_id: ended.id });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ success: true, message: 'התור כבר הסתיים (סטטוס: stopped)', cancelled_jobs: 0, already_ended: true });

      const foreignRun = await createRunViaApi(t, B, await leadsOf(t, B, 1));
      const foreign = await stopQueue(A.owner.headers, { run_id: foreignRun.id });
      const missing = await stopQueue(A.owner.headers, { run_id: newId() });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.body).toBe(missing.body);
      const untouched = await t.app.inject({ method: 'GET', url: `/api/outbound/runs/${foreignRun.id}`, headers: B.viewer.headers });
      expect(untouched.json()).toMatchObject({ status: 'pending', stop_requested: false, queued: 1 });

      expect((await stopQueue(A.viewer.headers, { run_id: run.id })).statusCode).toBe(403);
    });
  });
});
