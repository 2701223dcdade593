/**
 * The schema's guarantees, on both drivers: CHECKs, uniqueness, tenant-forcing composite foreign
 * keys, append-only logs, trigger-maintained counters, UUIDv7 ids and zoned timestamps, and the
 * conditional transitions of transitions.ts.
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { NotFoundError } from '../src/domain/errors.ts';
import { TERMINAL_JOB_STATUSES, type JobStatus } from '../src/domain/job-state.ts';
import { appendAudit } from '../src/store/audit.ts';
import { newId } from '../src/store/ids.ts';
import { countJobsByStatus, createRun, getRun } from '../src/store/runs.ts';
import { updateJobStatus, updateRunStatus } from '../src/store/transitions.ts';
import type { Run } from '../src/store/schema.ts';
import { storeFactories, useStore } from './support/stores.ts';
import { UUID_V7, addBusiness, addLeads, addUser, countersOf, expectDbError, phone, uuidV7Millis } from './support/seed.ts';

describe.each(storeFactories)('schema on $name', (factory) => {
  const { db } = useStore(factory);

  /** A business with an owner, `n` leads and a pending run over them. */
  async function runWithLeads(n: number) {
    const businessId = await addBusiness(db());
    const userId = await addUser(db(), businessId);
    const leadIds = await addLeads(db(), businessId, n);
    const run = await createRun(db(), { businessId, createdByUserId: userId, name: 'r', concurrency: 2, leads: { ids: leadIds } });
    const jobs = await db().selectFrom('jobs').selectAll().where('run_id', '=', run.id).orderBy('position').execute();
    return { businessId, userId, leadIds, run, jobs };
  }

  async function reloadRun(businessId: string, runId: string): Promise<Run> {
    const run = await getRun(db(), businessId, runId);
    expect(run).toBeDefined();
    return run!;
  }

  /** Counters (incl. total and cursor) equal what the job rows say. */
  async function expectCountersAgree(businessId: string, runId: string): Promise<Run> {
    const run = await reloadRun(businessId, runId);
    const fromRows = await countJobsByStatus(db(), businessId, runId);
    expect(countersOf(run)).toEqual(fromRows);
    const total = Object.values(fromRows).reduce((a, b) => a + b, 0);
    expect(run.total_jobs).toBe(total);
    const terminal = TERMINAL_JOB_STATUSES.reduce((a, s) => a + (fromRows[s] ?? 0), 0);
    expect(run.cursor_position).toBe(terminal);
    return run;
  }

  async function dial(jobId: string) {
    const r = await updateJobStatus(db(), { type: 'dial' }, { attempt_id: newId(), dial_started_at: new Date() })
      .where('id', '=', jobId)
      .executeTakeFirst();
    expect(r.numUpdatedRows).toBe(1n);
  }

  async function end(jobId: string, outcome: 'completed' | 'no_answer' | 'busy' | 'failed' | 'cancelled') {
    const r = await updateJobStatus(db(), { type: 'end', outcome }, { ended_at: new Date(), outcome })
      .where('id', '=', jobId)
      .executeTakeFirst();
    expect(r.numUpdatedRows).toBe(1n);
  }

  describe.skipIf(!factory.available)('constraints', () => {
    it('status columns are CHECK-constrained: an illegal status is rejected', async () => {
      const { businessId, run, jobs } = await runWithLeads(1);
      await expectDbError(
        sql`INSERT INTO runs (id, business_id, status) VALUES (${newId()}, ${businessId}, 'paused')`.execute(db()),
        '23514',
        'runs_status_check',
      );
      await expectDbError(sql`UPDATE runs SET status = 'Running' WHERE id = ${run.id}`.execute(db()), '23514', 'runs_status_check');
      await expectDbError(sql`UPDATE jobs SET status = 'ringing_again', attempt_id = gen_random_uuid(), ended_at = now() WHERE id = ${jobs[0]!.id}`.execute(db()), '23514', 'jobs_status_check');
      await expectDbError(
        sql`INSERT INTO users (id, business_id, email, role) VALUES (${newId()}, ${businessId}, 'x@example.com', 'root')`.execute(db()),
        '23514',
        'users_role_check',
      );
      // Nothing changed.
      expect((await reloadRun(businessId, run.id)).status).toBe('pending');
      const job = await db().selectFrom('jobs').select('status').where('id', '=', jobs[0]!.id).executeTakeFirstOrThrow();
      expect(job.status).toBe('queued');
    });

    it('UNIQUE (run_id, lead_id): a lead is in a run at most once', async () => {
      const { businessId, leadIds, run } = await runWithLeads(2);
      await expectDbError(
        db()
          .insertInto('jobs')
          .values({ id: newId(), run_id: run.id, business_id: businessId, lead_id: leadIds[0]!, position: 99, phone_e164: phone() })
          .execute(),
        '23505',
        'jobs_run_id_lead_id_key',
      );
      // createRun drops duplicates itself (first one wins) rather than failing.
      const again = await createRun(db(), {
        businessId,
        createdByUserId: null,
        name: null,
        concurrency: 1,
        leads: { ids: [leadIds[1]!, leadIds[0]!, leadIds[1]!] },
      });
      expect(again.total_jobs).toBe(2);
    });

    it("a job's business_id must equal its run's (composite foreign key)", async () => {
      const a = await runWithLeads(1);
      const otherBusiness = await addBusiness(db(), 'Other');
      const [otherLead] = await addLeads(db(), otherBusiness, 1);
      // The lead belongs to `otherBusiness` and the job says so, but the run is A's.
      await expectDbError(
        db()
          .insertInto('jobs')
          .values({ id: newId(), run_id: a.run.id, business_id: otherBusiness, lead_id: otherLead!, position: 5, phone_e164: phone() })
          .execute(),
        '23503',
        'jobs_run_id_business_id_fkey',
      );
      // Moving an existing job to another business is refused too.
      await expectDbError(
        sql`UPDATE jobs SET business_id = ${otherBusiness} WHERE id = ${a.jobs[0]!.id}`.execute(db()),
        '23503',
        /^jobs_(run|lead)_id_business_id_fkey$/,
      );
    });

    it('a lead of another business cannot be in a job', async () => {
      const a = await runWithLeads(1);
      const otherBusiness = await addBusiness(db(), 'Other');
      const [otherLead] = await addLeads(db(), otherBusiness, 1);
      await expectDbError(
        db()
          .insertInto('jobs')
          .values({ id: newId(), run_id: a.run.id, business_id: a.businessId, lead_id: otherLead!, position: 5, phone_e164: phone() })
          .execute(),
        '23503',
        'jobs_lead_business_fkey',
      );
      // Through the store: not found, and no orphan run is left behind.
      const before = await db().selectFrom('runs').select('id').where('business_id', '=', a.businessId).execute();
      await expect(
        createRun(db(), { businessId: a.businessId, createdByUserId: null, name: null, concurrency: 1, leads: { ids: [a.leadIds[0]!, otherLead!] } }),
      ).rejects.toBeInstanceOf(NotFoundError);
      const after = await db().selectFrom('runs').select('id').where('business_id', '=', a.businessId).execute();
      expect(after).toEqual(before);
    });

    it('audit_events and security_events are append-only: UPDATE and DELETE raise', async () => {
      const businessId = await addBusiness(db());
      await appendAudit(db(), {
        businessId,
        actor: { type: 'system', id: 'test' },
        action: 'run.created',
        targetType: 'run',
        targetId: 'r1',
        data: { status: 'pending' },
      });
      const securityId = newId();
      await db()
        .insertInto('security_events')
        .values({ id: securityId, kind: 'cross_tenant', target_type: 'run', target_id: 'r1', owner_business_id: businessId })
        .execute();

      await expectDbError(db().updateTable('audit_events').set({ action: 'rewritten' }).where('business_id', '=', businessId).execute(), 'P0001');
      await expectDbError(db().deleteFrom('audit_events').where('business_id', '=', businessId).execute(), 'P0001');
      await expectDbError(db().updateTable('security_events').set({ kind: 'nothing' }).where('id', '=', securityId).execute(), 'P0001');
      const err = await expectDbError(db().deleteFrom('security_events').where('id', '=', securityId).execute(), 'P0001');
      expect(err.message).toMatch(/security_events is append-only/);
      await expectDbError(sql`TRUNCATE audit_events CASCADE`.execute(db()), 'P0001');
      await expectDbError(sql`TRUNCATE security_events`.execute(db()), 'P0001');

      const audit = await db().selectFrom('audit_events').selectAll().where('business_id', '=', businessId).execute();
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'run.created', data: { status: 'pending' } });
      const security = await db().selectFrom('security_events').selectAll().where('id', '=', securityId).execute();
      expect(security).toEqual([expect.objectContaining({ kind: 'cross_tenant' })]);
    });
  });

  it.skipIf(!factory.available)('a job outcome outside the vocabulary is rejected', async () => {
    const { jobs } = await runWithLeads(1);
    await expectDbError(db().updateTable('jobs').set({ outcome: 'in-progress' }).where('id', '=', jobs[0]!.id).execute(), '23514');
  });

  it.skipIf(!factory.available)('int8 arrays come back as numbers on both drivers', async () => {
    const result = await sql<{ a: number[] }>`SELECT ARRAY[1, 2, 3]::int8[] AS a`.execute(db());
    expect(result.rows[0]!.a).toEqual([1, 2, 3]);
  });

  describe.skipIf(!factory.available)('counters kept by triggers', () => {
    it('agree with the job rows after inserts, single and multi-row updates, and deletes', async () => {
      const a = await runWithLeads(5);
      const b = await runWithLeads(4);
      let runA = await expectCountersAgree(a.businessId, a.run.id);
      expect(countersOf(runA)).toEqual({ queued: 5 });
      expect(runA.total_jobs).toBe(5);

      // Single-row transitions.
      await dial(a.jobs[0]!.id);
      await dial(a.jobs[1]!.id);
      await updateJobStatus(db(), { type: 'ring' }).where('id', '=', a.jobs[1]!.id).execute();
      await end(a.jobs[0]!.id, 'busy');
      runA = await expectCountersAgree(a.businessId, a.run.id);
      expect(countersOf(runA)).toEqual({ queued: 3, ringing: 1, busy: 1 });

      // One statement moving rows of two runs at once.
      await sql`UPDATE jobs SET status = 'dialing', attempt_id = gen_random_uuid(), dial_started_at = now()
                WHERE status = 'queued' AND run_id IN (${a.run.id}, ${b.run.id})`.execute(db());
      runA = await expectCountersAgree(a.businessId, a.run.id);
      let runB = await expectCountersAgree(b.businessId, b.run.id);
      expect(countersOf(runA)).toEqual({ dialing: 3, ringing: 1, busy: 1 });
      expect(countersOf(runB)).toEqual({ dialing: 4 });

      // An update that changes no status leaves the counters alone.
      await sql`UPDATE jobs SET provider_call_id = 'CA' || id::text WHERE run_id = ${b.run.id}`.execute(db());
      runB = await expectCountersAgree(b.businessId, b.run.id);
      expect(countersOf(runB)).toEqual({ dialing: 4 });

      await sql`UPDATE jobs SET status = 'no_answer', ended_at = now() WHERE run_id = ${b.run.id} AND position < 3`.execute(db());
      await end(a.jobs[1]!.id, 'completed');
      runA = await expectCountersAgree(a.businessId, a.run.id);
      runB = await expectCountersAgree(b.businessId, b.run.id);
      expect(countersOf(runA)).toEqual({ dialing: 3, completed: 1, busy: 1 });
      expect(runA.cursor_position).toBe(2);
      expect(countersOf(runB)).toEqual({ dialing: 1, no_answer: 3 });
      expect(runB.cursor_position).toBe(3);

      // Deletes.
      await db().deleteFrom('jobs').where('run_id', '=', b.run.id).where('status', '=', 'no_answer').where('position', '<', 2).execute();
      await db().deleteFrom('jobs').where('id', '=', a.jobs[0]!.id).execute();
      runA = await expectCountersAgree(a.businessId, a.run.id);
      runB = await expectCountersAgree(b.businessId, b.run.id);
      expect(countersOf(runA)).toEqual({ dialing: 3, completed: 1 });
      expect(runA.total_jobs).toBe(4);
      expect(countersOf(runB)).toEqual({ dialing: 1, no_answer: 1 });
      expect(runB.total_jobs).toBe(2);
      expect(runB.cursor_position).toBe(1);
    });

    it('a counter cannot be written directly out of step with the rows', async () => {
      const a = await runWithLeads(2);
      await expectDbError(sql`UPDATE runs SET queued_count = 5 WHERE id = ${a.run.id}`.execute(db()), '23514', 'runs_check');
      await expectDbError(sql`UPDATE runs SET cursor_position = 2 WHERE id = ${a.run.id}`.execute(db()), '428C9');
      await expectCountersAgree(a.businessId, a.run.id);
    });

    it('a run cannot be completed while a job is not terminal', async () => {
      const a = await runWithLeads(3);
      expect((await updateRunStatus(db(), 'start', { started_at: new Date() }).where('id', '=', a.run.id).executeTakeFirst()).numUpdatedRows).toBe(1n);
      await dial(a.jobs[0]!.id);
      await end(a.jobs[0]!.id, 'completed');
      await dial(a.jobs[1]!.id);
      // One job live, one queued: refused.
      await expectDbError(
        updateRunStatus(db(), 'complete', { ended_at: new Date() }).where('id', '=', a.run.id).execute(),
        '23514',
        'runs_check3',
      );
      expect((await reloadRun(a.businessId, a.run.id)).status).toBe('running');

      await end(a.jobs[1]!.id, 'failed');
      const cancelled = await updateJobStatus(db(), { type: 'cancel' }, { ended_at: new Date() }).where('id', '=', a.jobs[2]!.id).executeTakeFirst();
      expect(cancelled.numUpdatedRows).toBe(1n);
      const done = await updateRunStatus(db(), 'complete', { ended_at: new Date() }).where('id', '=', a.run.id).executeTakeFirst();
      expect(done.numUpdatedRows).toBe(1n);
      const run = await expectCountersAgree(a.businessId, a.run.id);
      expect(run.status).toBe('completed');
      expect(run.cursor_position).toBe(3);

      // And a queued job cannot be added to it afterwards.
      const [late] = await addLeads(db(), a.businessId, 1);
      await expectDbError(
        db().insertInto('jobs').values({ id: newId(), run_id: a.run.id, business_id: a.businessId, lead_id: late!, position: 9, phone_e164: phone() }).execute(),
        '23514',
        'runs_check3',
      );
    });
  });

  describe.skipIf(!factory.available)('ids and timestamps', () => {
    it('ids are UUIDv7, including the job ids the database generates', async () => {
      const before = Date.now();
      const a = await runWithLeads(20);
      const after = Date.now();
      const ids = [a.businessId, a.userId, a.run.id, ...a.leadIds, ...a.jobs.map((j) => j.id)];
      for (const id of ids) expect(id).toMatch(UUID_V7);
      expect(new Set(a.jobs.map((j) => j.id)).size).toBe(20);
      // The database-made ids carry the current time (same host clock).
      for (const job of a.jobs) {
        expect(uuidV7Millis(job.id)).toBeGreaterThanOrEqual(before - 1000);
        expect(uuidV7Millis(job.id)).toBeLessThanOrEqual(after + 1000);
      }
      const { rows } = await sql<{ id: string }>`SELECT ocq_uuidv7()::text AS id FROM generate_series(1, 50)`.execute(db());
      for (const row of rows) expect(row.id).toMatch(UUID_V7);
      expect(new Set(rows.map((r) => r.id)).size).toBe(50);
    });

    it('no id column is a serial or identity', async () => {
      const { rows } = await sql<{ table_name: string; data_type: string; column_default: string | null; is_identity: string }>`
        SELECT table_name, data_type, column_default, is_identity FROM information_schema.columns
         WHERE table_schema = 'public' AND column_name = 'id' ORDER BY table_name`.execute(db());
      expect(rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining(['api_tokens', 'audit_events', 'businesses', 'jobs', 'leads', 'runs', 'security_events', 'users']),
      );
      for (const row of rows) {
        expect(row.data_type, row.table_name).toBe('uuid');
        expect(row.is_identity, row.table_name).toBe('NO');
        expect(row.column_default ?? '', row.table_name).not.toMatch(/nextval/);
      }
    });

    it('every timestamp column is timestamptz and comes back as a Date at the right instant', async () => {
      const { rows } = await sql<{ table_name: string; column_name: string; data_type: string }>`
        SELECT table_name, column_name, data_type FROM information_schema.columns
         WHERE table_schema = 'public' AND (data_type LIKE 'timestamp%' OR data_type IN ('date', 'time without time zone'))`.execute(db());
      expect(rows.length).toBeGreaterThanOrEqual(20);
      for (const row of rows) expect(row.data_type, `${row.table_name}.${row.column_name}`).toBe('timestamp with time zone');

      const businessId = await addBusiness(db());
      const leadId = newId();
      const given = '2024-03-29T01:30:00.123+03:00'; // a zone that is not UTC nor the host's
      await db().insertInto('leads').values({ id: leadId, business_id: businessId, phone_e164: phone(), created_at: given }).execute();
      const lead = await db().selectFrom('leads').selectAll().where('id', '=', leadId).executeTakeFirstOrThrow();
      expect(lead.created_at).toBeInstanceOf(Date);
      expect(lead.created_at.getTime()).toBe(Date.parse(given));
      expect(lead.created_at.toISOString()).toBe('2024-03-28T22:30:00.123Z');
      expect(lead.updated_at).toBeInstanceOf(Date);
      expect(Math.abs(lead.updated_at.getTime() - Date.now())).toBeLessThan(60_000);
      expect(lead.attributes).toEqual({});
    });
  });

  describe.skipIf(!factory.available)('conditional transitions (transitions.ts)', () => {
    it('a job transition from a disallowed state changes 0 rows', async () => {
      const a = await runWithLeads(2);
      const jobId = a.jobs[0]!.id;
      await dial(jobId);
      await end(jobId, 'completed');
      const before = await db().selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();

      // A late `ringing` after `completed`, a second dial, a cancel of a finished call.
      for (const event of [{ type: 'ring' }, { type: 'dial' }, { type: 'cancel' }, { type: 'answer' }, { type: 'lost' }] as const) {
        const r = await updateJobStatus(db(), event, { attempt_id: newId(), ended_at: new Date() }).where('id', '=', jobId).executeTakeFirst();
        expect(r.numUpdatedRows, event.type).toBe(0n);
      }
      const r = await updateJobStatus(db(), { type: 'end', outcome: 'busy' }, { ended_at: new Date() }).where('id', '=', jobId).executeTakeFirst();
      expect(r.numUpdatedRows).toBe(0n);
      const after = await db().selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
      expect(after).toEqual(before);

      // The other job, queued, cannot ring before it is dialled.
      const skip = await updateJobStatus(db(), { type: 'ring' }).where('id', '=', a.jobs[1]!.id).executeTakeFirst();
      expect(skip.numUpdatedRows).toBe(0n);
      await expectCountersAgree(a.businessId, a.run.id);
    });

    it('a run transition from a terminal state changes 0 rows (no completed over failed, no cancelled over stopped)', async () => {
      const failed = await runWithLeads(1);
      await updateRunStatus(db(), 'start', { started_at: new Date() }).where('id', '=', failed.run.id).execute();
      const f = await updateRunStatus(db(), 'fail', { ended_at: new Date(), last_error: 'boom' }).where('id', '=', failed.run.id).executeTakeFirst();
      expect(f.numUpdatedRows).toBe(1n);
      const stopped = await runWithLeads(1);
      const s = await updateRunStatus(db(), 'stop', { ended_at: new Date() }).where('id', '=', stopped.run.id).executeTakeFirst();
      expect(s.numUpdatedRows).toBe(1n);

      const cases: [string, string, 'start' | 'complete' | 'fail' | 'cancel' | 'stop'][] = [
        [failed.businessId, failed.run.id, 'complete'],
        [failed.businessId, failed.run.id, 'cancel'],
        [failed.businessId, failed.run.id, 'start'],
        [stopped.businessId, stopped.run.id, 'cancel'],
        [stopped.businessId, stopped.run.id, 'fail'],
        [stopped.businessId, stopped.run.id, 'stop'],
      ];
      for (const [, runId, event] of cases) {
        const r = await updateRunStatus(db(), event, { ended_at: new Date() }).where('id', '=', runId).executeTakeFirst();
        expect(r.numUpdatedRows, `${event} on ${runId}`).toBe(0n);
      }
      expect((await reloadRun(failed.businessId, failed.run.id)).status).toBe('failed');
      expect((await reloadRun(failed.businessId, failed.run.id)).last_error).toBe('boom');
      expect((await reloadRun(stopped.businessId, stopped.run.id)).status).toBe('stopped');
    });

    it('a pending run may not complete; a running one may be cancelled once', async () => {
      const a = await runWithLeads(1);
      const early = await updateRunStatus(db(), 'complete', { ended_at: new Date() }).where('id', '=', a.run.id).executeTakeFirst();
      expect(early.numUpdatedRows).toBe(0n);
      await updateRunStatus(db(), 'start', { started_at: new Date() }).where('id', '=', a.run.id).execute();
      const first = await updateRunStatus(db(), 'cancel', { ended_at: new Date() }).where('id', '=', a.run.id).executeTakeFirst();
      const second = await updateRunStatus(db(), 'cancel', { ended_at: new Date() }).where('id', '=', a.run.id).executeTakeFirst();
      expect([first.numUpdatedRows, second.numUpdatedRows]).toEqual([1n, 0n]);
    });
  });

  it.skipIf(!factory.available)('job statuses in the schema are exactly the domain statuses', async () => {
    // Every domain status can be stored (with what its CHECKs require), so the two lists agree.
    const a = await runWithLeads(1);
    const jobId = a.jobs[0]!.id;
    const statuses: JobStatus[] = ['dialing', 'ringing', 'in_call', 'completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown', 'queued'];
    for (const status of statuses) {
      await sql`UPDATE jobs SET status = ${status}, attempt_id = coalesce(attempt_id, gen_random_uuid()), ended_at = now() WHERE id = ${jobId}`.execute(db());
      await expectCountersAgree(a.businessId, a.run.id);
    }
  });
});
