/**
 * The run engine, in one process, on both setups: PGlite + in-process slots (the embedded
 * default) and PostgreSQL + Redis. The carrier's record is the witness, never our counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIAL_NOT_SENT, dialPlanFor, placeReservedCall, reserveDial, sendDeadlineMs } from '../src/engine/call-life.ts';
import { loadBusinessForDispatch } from '../src/store/dispatch.ts';
import { createRunWith } from '../src/store/runs.ts';
import { FAST_SCRIPT, startHarness, type Harness } from './support/engine-harness.ts';
import { startRun } from './support/run-fixtures.ts';
import { hasRedis, redisUrl } from './support/services.ts';
import { storeFactories } from './support/stores.ts';

const setups = [
  { name: 'PGlite + memory slots', factory: storeFactories[0]!, redis: undefined, available: true },
  { name: 'PostgreSQL + Redis', factory: storeFactories[1]!, redis: redisUrl, available: storeFactories[1]!.available && hasRedis },
];

describe.each(setups)('engine on $name', (setup) => {
  let h: Harness;
  const user = { type: 'user' as const, id: 'test-user' };

  beforeAll(async () => {
    if (setup.available) h = await startHarness(setup.factory, { redisUrl: setup.redis });
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(!setup.available)('dials all 100 leads with concurrency 3 and never more than 3 live (the "three calls" bug)', async () => {
    h.sim.setScript(FAST_SCRIPT);
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const leads = await h.createLeads(business.id, 100);
    const run = await h.createRun(business.id, leads, 3);
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed', 'cancelled', 'stopped']);
    expect(ended.status).toBe('completed');
    expect(ended.cursor_position).toBe(100);
    const line = h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    expect(line.dials).toHaveLength(100);
    expect(line.duplicates).toEqual([]);
    expect(line.highWater).toBeLessThanOrEqual(3);
    expect(line.highWater).toBeGreaterThan(1); // it did dial in parallel
    // Jobs go out in creation order: the carrier saw the leads in the order they were given.
    const jobs = await h.store.db.selectFrom('jobs').select(['phone_e164', 'position']).where('run_id', '=', run.id).execute();
    const positionOf = new Map(jobs.map((job) => [job.phone_e164, job.position]));
    const dialOrder = [...line.dials].sort((a, b) => a.at.localeCompare(b.at)).map((dial) => positionOf.get(dial.to));
    expect(dialOrder).toEqual([...dialOrder].sort((a, b) => a! - b!));
    await h.expectCountersAgree(business.id, run.id);
  });

  it.skipIf(!setup.available)('two runs of one business share its cap', async () => {
    h.sim.setScript(FAST_SCRIPT);
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const runs = await Promise.all([0, 1].map(async () => h.createRun(business.id, await h.createLeads(business.id, 30), 3)));
    for (const run of runs) expect((await h.waitForRun(business.id, run.id, ['completed', 'failed'])).status).toBe('completed');
    const line = h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    expect(line.dials).toHaveLength(60);
    expect(line.highWater).toBeLessThanOrEqual(3);
    expect(line.duplicates).toEqual([]);
  });

  it.skipIf(!setup.available)('run.concurrency lowers the cap for one run, never raises it', async () => {
    h.sim.setScript(FAST_SCRIPT);
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const low = await h.createRun(business.id, await h.createLeads(business.id, 20), 1);
    await h.waitForRun(business.id, low.id, ['completed']);
    expect(h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId).highWater).toBe(1);
    const other = await h.createBusiness({ maxConcurrentCalls: 2 });
    const high = await h.createRun(other.id, await h.createLeads(other.id, 20), 10);
    await h.waitForRun(other.id, high.id, ['completed']);
    expect(h.sim.record.callerId(h.config.twilio.accountSid!, other.callerId).highWater).toBeLessThanOrEqual(2);
  });

  it.skipIf(!setup.available)('cancel: no dial leaves after the response; live calls finish; run cancelled', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [100, 300] });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 50), 3);
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    await h.sim.waitFor(() => line().dials.length >= 10, 20_000, '10 dials');
    const result = await h.runControl.cancel(business.id, run.id, user);
    const answeredAt = Date.now();
    const dialsAtResponse = line().dials.length;
    const ended = await h.waitForRun(business.id, run.id, ['cancelled', 'completed', 'stopped', 'failed']);
    expect(ended.status).toBe('cancelled');
    expect(ended.ended_at).toBeInstanceOf(Date);
    expect(line().dials.length).toBe(dialsAtResponse);
    for (const dial of line().dials) expect(Date.parse(dial.at)).toBeLessThanOrEqual(answeredAt);
    expect(result.cancelledJobs).toBeGreaterThan(0);
    expect(ended.cancelled_count).toBe(50 - dialsAtResponse);
    expect(line().duplicates).toEqual([]);
    await h.expectCountersAgree(business.id, run.id);
    // Idempotent; and on an ended run, a 409-class conflict naming the status.
    await expect(h.runControl.cancel(business.id, run.id, user)).rejects.toMatchObject({ code: 'run_already_ended', details: { status: 'cancelled' } });
  });

  it.skipIf(!setup.available)('cancel: attempts reserved behind a retrying send never leave', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [100, 300] });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    // The first send meets three 5xx answers (retried after 0.25, 0.5 and 1 s); the next two jobs are
    // reserved meanwhile and wait behind it, in job order.
    h.sim.faults.failNextCreates(3, 500);
    const run = await h.createRun(business.id, await h.createLeads(business.id, 10), 3);
    await expect.poll(async () => (await h.store.db.selectFrom('runs').select('dialing_count').where('id', '=', run.id).executeTakeFirstOrThrow()).dialing_count, { timeout: 10_000 }).toBe(3);
    expect(line().dials).toHaveLength(0);
    const result = await h.runControl.cancel(business.id, run.id, user);
    const dialsAtResponse = line().dials.length;
    const ended = await h.waitForRun(business.id, run.id, ['cancelled', 'completed', 'stopped', 'failed']);
    expect(ended.status).toBe('cancelled');
    // Only the attempt already being sent may have left; the two waiting behind it never did.
    expect(line().dials.length).toBe(dialsAtResponse);
    expect(dialsAtResponse).toBeLessThanOrEqual(1);
    expect(result.cancelledJobs).toBe(7);
    expect(ended.cancelled_count).toBeGreaterThanOrEqual(9);
    await h.expectCountersAgree(business.id, run.id);
  });

  it.skipIf(!setup.available)('stop: live calls are hung up at once and the run is stopped', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [60_000, 60_000] });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 50), 3);
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    await h.sim.waitFor(() => line().live === 3, 20_000, '3 live calls');
    const { run: after } = await h.runControl.stop(business.id, run.id, user);
    expect(after.stop_requested).toBe(true);
    const ended = await h.waitForRun(business.id, run.id, ['stopped', 'cancelled', 'completed', 'failed'], 10_000);
    expect(ended.status).toBe('stopped');
    expect(line().live).toBe(0);
    expect(line().dials).toHaveLength(3);
    expect(ended.cancelled_count).toBe(47);
    await h.expectCountersAgree(business.id, run.id);
    // A second stop on the ended run conflicts, naming the status.
    await expect(h.runControl.stop(business.id, run.id, user)).rejects.toMatchObject({ code: 'run_already_ended' });
  });

  it.skipIf(!setup.available)('cancelling a run that waits for a slot ends it at once; it never dials', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [60_000, 60_000] });
    const business = await h.createBusiness({ maxConcurrentCalls: 1 });
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    const busy = await h.createRun(business.id, await h.createLeads(business.id, 3), 1);
    await h.sim.waitFor(() => line().live === 1, 10_000, 'the slot to be taken');
    const waiting = await h.createRun(business.id, await h.createLeads(business.id, 3), 1);
    const { run: cancelled } = await h.runControl.cancel(business.id, waiting.id, user);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.cancelled_count).toBe(3);
    await h.runControl.stop(business.id, busy.id, user);
    expect((await h.waitForRun(business.id, busy.id, ['stopped'], 10_000)).status).toBe('stopped');
    expect(line().dials).toHaveLength(1);
    await h.expectCountersAgree(business.id, waiting.id);
  });

  it.skipIf(!setup.available)('a business without a caller id fails its run with the reason in English and Hebrew', async () => {
    const business = await h.createBusiness({ callerId: null });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 3), 3);
    const ended = await h.waitForRun(business.id, run.id, ['failed', 'completed']);
    expect(ended.status).toBe('failed');
    expect(ended.last_error).toMatch(/caller id/);
    expect(ended.last_error).toMatch(/מספר מתקשר/);
    expect(ended.cancelled_count).toBe(3);
    await h.expectCountersAgree(business.id, run.id);
  });

  it.skipIf(!setup.available)('retryable provider errors retry the same attempt: every lead dialled once', async () => {
    h.sim.setScript(FAST_SCRIPT);
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    h.sim.faults.failNextCreates(3, 500);
    const run = await h.createRun(business.id, await h.createLeads(business.id, 10), 3);
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed']);
    expect(ended.status).toBe('completed');
    expect(ended.completed_count).toBe(10);
    const line = h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    expect(line.duplicates).toEqual([]);
    expect(line.dials).toHaveLength(10);
  });

  it.skipIf(!setup.available)('a dial recorded too long ago is never sent (a process paused between record and send)', async () => {
    h.sim.setScript(FAST_SCRIPT);
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const leadIds = await h.createLeads(business.id, 2);
    // Created and leased by a stand-in worker in one transaction, so the harness's worker never sees it free.
    const run = await createRunWith(
      h.store.db,
      { businessId: business.id, createdByUserId: null, name: 'paused', concurrency: 3, leads: { ids: leadIds } },
      { inTransaction: (trx, created) => startRun(trx, business.id, created.id, 'paused-host:1') },
    );
    const { lock_token } = await h.store.db.selectFrom('runs').select('lock_token').where('id', '=', run.id).executeTakeFirstOrThrow();
    const lease = { runId: run.id, token: lock_token! };
    const plan = dialPlanFor((await loadBusinessForDispatch(h.store.db, business.id))!, h.config)!;
    const jobs = await h.store.db.selectFrom('jobs').select(['id', 'phone_e164']).where('run_id', '=', run.id).orderBy('position').execute();
    const signal = new AbortController().signal;

    const reserve = async (index: number) => {
      const target = { jobId: jobs[index]!.id, phone: jobs[index]!.phone_e164 };
      const reserved = await reserveDial(h.ctx, lease, plan, target, signal);
      if (reserved.kind !== 'reserved') throw new Error(`not reserved: ${reserved.kind}`);
      return { target, reservation: reserved.reservation };
    };
    // Paused past the deadline: the monotonic clock says the record is older than half the window.
    const late = await reserve(0);
    const paused = { ...late.reservation, recordedBy: late.reservation.recordedBy - sendDeadlineMs(h.config) - 1 };
    expect(await placeReservedCall(h.ctx, lease, plan, late.target, paused, signal)).toEqual({ kind: 'too_late' });
    const lateJob = await h.store.db.selectFrom('jobs').select(['status', 'error']).where('id', '=', late.target.jobId).executeTakeFirstOrThrow();
    expect(lateJob.status).toBe('failed');
    expect(lateJob.error).toMatch(new RegExp(`^${DIAL_NOT_SENT}`));
    expect(await h.slots.isHeld(business.id, paused.attemptId)).toBe(false);
    // A fresh one goes out.
    const fresh = await reserve(1);
    expect((await placeReservedCall(h.ctx, lease, plan, fresh.target, fresh.reservation, signal)).kind).toBe('dialed');
    // The witness: the carrier was asked for the second lead only.
    const line = h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    expect(line.dials.map((dial) => dial.to)).toEqual([jobs[1]!.phone_e164]);
    await h.expectCountersAgree(business.id, run.id);
  });

  it.skipIf(!setup.available)('an invalid caller id at the provider fails the run; nothing else is dialled', async () => {
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    h.sim.setCallerIdInvalid(business.callerId);
    const run = await h.createRun(business.id, await h.createLeads(business.id, 10), 3);
    const ended = await h.waitForRun(business.id, run.id, ['failed', 'completed']);
    expect(ended.status).toBe('failed');
    expect(ended.last_error).toMatch(/caller id/i);
    expect(ended.failed_count + ended.cancelled_count).toBe(10);
    expect(h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId).dials).toHaveLength(0);
    await h.expectCountersAgree(business.id, run.id);
  });
});

describe('slot handoff is event-driven', () => {
  const setup = setups[1]!.available ? setups[1]! : setups[0]!;
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(setup.factory, { redisUrl: setup.redis, safetyPollSeconds: 10, script: { ...FAST_SCRIPT, ringMs: [0, 0], talkMs: [0, 0] } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it(`a 3-slot business completes 30 zero-length calls well inside one 10 s safety poll (${setup.name})`, async () => {
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 30), 3);
    const started = Date.now();
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed'], 20_000);
    // Polling would need 10 handoff rounds of up to 10 s each; pushed wake-ups need milliseconds.
    expect(ended.status).toBe('completed');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId).highWater).toBeLessThanOrEqual(3);
  });
});
