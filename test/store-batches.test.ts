/**
 * Group commit of the hot statements (store/batcher.ts and its users): many requests in one
 * statement must mean exactly what they meant one by one. On both drivers.
 */
import { describe, expect, it } from 'vitest';
import { Batcher, isDeadlock } from '../src/store/batcher.ts';
import { applyCallProgressBatch, findAttemptsForWebhook } from '../src/store/call-events.ts';
import { commitDials, readDispatchViews, recordProviderCallIds, type DialCommit } from '../src/store/dispatch.ts';
import { newId } from '../src/store/ids.ts';
import { RUN_EVENTS_CHANNEL } from '../src/store/run-event-channel.ts';
import type { LeaseHeld } from '../src/store/run-lease.ts';
import { countJobsByStatus, createRun, getRun } from '../src/store/runs.ts';
import { storeFactories, useStore } from './support/stores.ts';
import { addBusiness, addLeads, countersOf } from './support/seed.ts';
import { startRun } from './support/run-fixtures.ts';

describe('Batcher', () => {
  it('sends requests made in one tick as one statement, and answers each in order', async () => {
    const calls: number[][] = [];
    const batcher = new Batcher(async (items: readonly number[]) => {
      calls.push([...items]);
      return items.map((n) => n * 10);
    });
    const answers = await Promise.all([1, 2, 3, 4].map((n) => batcher.run(n)));
    expect(answers).toEqual([10, 20, 30, 40]);
    expect(calls).toEqual([[1, 2, 3, 4]]);
  });

  it('sends what arrived during a statement as the next one', async () => {
    const calls: number[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new Batcher(async (items: readonly number[]) => {
      calls.push([...items]);
      if (calls.length === 1) await gate;
      return [...items];
    });
    const first = batcher.run(1);
    await new Promise((resolve) => setImmediate(resolve)); // the first statement is in flight
    const later = [batcher.run(2), batcher.run(3)];
    release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3]);
    expect(calls).toEqual([[1], [2, 3]]);
  });

  it('never puts two requests with one key in a statement, and keeps their order', async () => {
    const calls: string[][] = [];
    const batcher = new Batcher(async (items: readonly string[]) => {
      calls.push([...items]);
      return [...items];
    }, { keyOf: (s) => s[0]! });
    await Promise.all(['a1', 'b1', 'a2', 'c1', 'a3'].map((s) => batcher.run(s)));
    expect(calls).toEqual([['a1', 'b1', 'c1'], ['a2'], ['a3']]);
  });

  it('with maxInFlight, sends a new request beside one in flight, but never a key that is in flight', async () => {
    const calls: string[][] = [];
    const gates = new Map<string, () => void>();
    const batcher = new Batcher(async (items: readonly string[]) => {
      calls.push([...items]);
      await new Promise<void>((resolve) => gates.set(items[0]!, resolve));
      return [...items];
    }, { keyOf: (s) => s[0]!, maxInFlight: 2 });
    const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const a1 = batcher.run('a1');
    await tick(); // a1 in flight
    const b1 = batcher.run('b1');
    const a2 = batcher.run('a2');
    await tick();
    // b1 went beside a1; a2 waits for a1 (same key), and a third statement would exceed maxInFlight.
    expect(calls).toEqual([['a1'], ['b1']]);
    gates.get('a1')!();
    expect(await a1).toBe('a1');
    await tick();
    expect(calls).toEqual([['a1'], ['b1'], ['a2']]);
    gates.get('b1')!();
    gates.get('a2')!();
    expect(await Promise.all([b1, a2])).toEqual(['b1', 'a2']);
  });

  it('fails every request of a failed statement, and the next statement still runs', async () => {
    let n = 0;
    const batcher = new Batcher(async (items: readonly number[]) => {
      n += 1;
      if (n === 1) throw new Error('connection lost');
      return [...items];
    });
    const failed = await Promise.allSettled([batcher.run(1), batcher.run(2)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await batcher.run(3)).toBe(3);
  });

  it('retries a statement that lost a deadlock, and only that', async () => {
    let tries = 0;
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    const batcher = new Batcher(async (items: readonly number[]) => {
      tries += 1;
      if (tries < 3) throw deadlock;
      return [...items];
    }, { retryable: isDeadlock });
    expect(await batcher.run(7)).toBe(7);
    expect(tries).toBe(3);
    const other = new Batcher(async (): Promise<number[]> => {
      throw Object.assign(new Error('unique violation'), { code: '23505' });
    }, { retryable: isDeadlock });
    await expect(other.run(1)).rejects.toThrow('unique violation');
  });
});

describe.each(storeFactories)('batched statements on $name', (factory) => {
  const { db, store } = useStore(factory);

  /** A business (cap `cap`) with a running, leased run over `n` leads. */
  async function leasedRun(n: number, cap = 3): Promise<{ businessId: string; runId: string; lease: LeaseHeld; jobIds: string[] }> {
    const businessId = await addBusiness(db());
    await db().updateTable('businesses').set({ max_concurrent_calls: cap }).where('id', '=', businessId).execute();
    const leadIds = await addLeads(db(), businessId, n);
    const run = await createRun(db(), { businessId, createdByUserId: null, name: 'batch', concurrency: cap, leads: { ids: leadIds } });
    await startRun(db(), businessId, run.id);
    const row = await db().selectFrom('runs').select('lock_token').where('id', '=', run.id).executeTakeFirstOrThrow();
    const jobs = await db().selectFrom('jobs').select('id').where('run_id', '=', run.id).orderBy('position').execute();
    return { businessId, runId: run.id, lease: { runId: run.id, token: row.lock_token! }, jobIds: jobs.map((j) => j.id) };
  }

  async function expectCountersAgree(businessId: string, runId: string): Promise<void> {
    const run = await getRun(db(), businessId, runId);
    expect(countersOf(run!)).toEqual(await countJobsByStatus(db(), businessId, runId));
  }

  async function liveCalls(businessId: string): Promise<number> {
    const row = await db().selectFrom('businesses').select('live_calls').where('id', '=', businessId).executeTakeFirstOrThrow();
    return row.live_calls;
  }

  it.runIf(factory.available)('commits each dial of a statement on its own conditions', async () => {
    const ok = await leasedRun(2);
    const lost = await leasedRun(2);
    const cancelled = await leasedRun(2);
    const full = await leasedRun(2, 1);
    await db().updateTable('runs').set({ cancel_requested: true }).where('id', '=', cancelled.runId).execute();
    // `full` already has its one call live.
    const [fullFirst] = await commitDials(db(), [{ lease: full.lease, businessId: full.businessId, jobId: full.jobIds[0]!, attemptId: newId() }]);
    expect(fullFirst).toBe('committed');

    const dials: DialCommit[] = [
      { lease: ok.lease, businessId: ok.businessId, jobId: ok.jobIds[0]!, attemptId: newId() },
      { lease: { runId: lost.runId, token: newId() }, businessId: lost.businessId, jobId: lost.jobIds[0]!, attemptId: newId() },
      { lease: cancelled.lease, businessId: cancelled.businessId, jobId: cancelled.jobIds[0]!, attemptId: newId() },
      { lease: full.lease, businessId: full.businessId, jobId: full.jobIds[1]!, attemptId: newId() },
    ];
    expect(await commitDials(db(), dials)).toEqual(['committed', 'not_dialable', 'not_dialable', 'business_full']);

    const statuses = await db().selectFrom('jobs').select(['id', 'status', 'attempt_id']).where('id', 'in', dials.map((d) => d.jobId)).execute();
    const byId = new Map(statuses.map((s) => [s.id, s]));
    expect(byId.get(ok.jobIds[0]!)).toMatchObject({ status: 'dialing', attempt_id: dials[0]!.attemptId });
    for (const d of dials.slice(1)) expect(byId.get(d.jobId)).toMatchObject({ status: 'queued', attempt_id: null });
    expect(await liveCalls(ok.businessId)).toBe(1);
    expect(await liveCalls(full.businessId)).toBe(1);
    for (const r of [ok, lost, cancelled, full]) await expectCountersAgree(r.businessId, r.runId);
  });

  it.runIf(factory.available)('refuses two dials of one business in one statement (one cap check per business)', async () => {
    const a = await leasedRun(2);
    await expect(
      commitDials(db(), [
        { lease: a.lease, businessId: a.businessId, jobId: a.jobIds[0]!, attemptId: newId() },
        { lease: a.lease, businessId: a.businessId, jobId: a.jobIds[1]!, attemptId: newId() },
      ]),
    ).rejects.toThrow(/one dial per business/);
  });

  it.runIf(factory.available)('reads each run\'s view, null for a lost lease', async () => {
    const a = await leasedRun(2);
    const b = await leasedRun(1);
    const views = await readDispatchViews(db(), [a.lease, { runId: b.runId, token: newId() }, b.lease]);
    expect(views[0]).toMatchObject({ status: 'running', live: 0, next: { jobId: a.jobIds[0] } });
    expect(views[1]).toBeNull();
    expect(views[2]).toMatchObject({ status: 'running', next: { jobId: b.jobIds[0] } });
  });

  it.runIf(factory.available)('applies each callback of a statement forward only, and tells the runs\' listeners in it', async () => {
    const a = await leasedRun(3);
    const b = await leasedRun(1);
    const attempts = [newId(), newId(), newId(), newId()];
    const dials: DialCommit[] = [
      { lease: a.lease, businessId: a.businessId, jobId: a.jobIds[0]!, attemptId: attempts[0]! },
      { lease: b.lease, businessId: b.businessId, jobId: b.jobIds[0]!, attemptId: attempts[3]! },
    ];
    expect(await commitDials(db(), dials)).toEqual(['committed', 'committed']);
    expect(await commitDials(db(), [{ lease: a.lease, businessId: a.businessId, jobId: a.jobIds[1]!, attemptId: attempts[1]! }])).toEqual(['committed']);
    expect(await commitDials(db(), [{ lease: a.lease, businessId: a.businessId, jobId: a.jobIds[2]!, attemptId: attempts[2]! }])).toEqual(['committed']);
    expect(await recordProviderCallIds(db(), [{ lease: a.lease, attemptId: attempts[0]!, providerCallId: 'CA0' }, { lease: { runId: b.runId, token: newId() }, attemptId: attempts[3]!, providerCallId: 'CAX' }])).toEqual([true, false]);

    const events: Array<{ kind: string; runId: string; callEnded?: boolean }> = [];
    const unlisten = await store().notifier.listen(RUN_EVENTS_CHANNEL, (payload) => events.push(JSON.parse(payload) as (typeof events)[number]));
    try {
      const applied = await applyCallProgressBatch(db(), [
        { attemptId: attempts[0]!, progress: { kind: 'ringing' }, providerCallId: 'CA0' },
        { attemptId: attempts[1]!, progress: { kind: 'answered', answeredBy: 'human' }, providerCallId: 'CA1' },
        { attemptId: attempts[2]!, progress: { kind: 'ended', outcome: 'busy' }, providerCallId: 'CA2' },
        { attemptId: attempts[3]!, progress: { kind: 'ended', outcome: 'completed', durationSeconds: 12 }, providerCallId: 'CA3' },
        { attemptId: newId(), progress: { kind: 'ended', outcome: 'completed' }, providerCallId: 'CA9' },
      ]);
      expect(applied.map((a) => a.job?.status)).toEqual(['ringing', 'in_call', 'busy', 'completed', undefined]);
      expect(applied[4]).toEqual({ job: undefined, attemptKnown: false });
      expect(applied[1]!.job).toMatchObject({ answered_by: 'human', provider_call_id: 'CA1', run_winding_down: false });
      expect(applied[1]!.job!.answered_at).toBeInstanceOf(Date);
      expect(applied[2]!.job).toMatchObject({ outcome: 'busy', provider_call_id: 'CA2' });
      expect(applied[2]!.job!.ended_at).toBeInstanceOf(Date);
      expect(applied[3]!.job).toMatchObject({ outcome: 'completed', duration_seconds: 12, provider_call_id: 'CA3' });

      // Reordered and duplicate callbacks change nothing.
      const stale = await applyCallProgressBatch(db(), [
        { attemptId: attempts[2]!, progress: { kind: 'ringing' }, providerCallId: 'CA2' },
        { attemptId: attempts[3]!, progress: { kind: 'ended', outcome: 'completed', durationSeconds: 99 }, providerCallId: 'CA3' },
        { attemptId: attempts[1]!, progress: { kind: 'ringing' }, providerCallId: 'CA1' },
      ]);
      // Known attempts, nothing changed.
      expect(stale).toEqual([0, 1, 2].map(() => ({ job: undefined, attemptKnown: true })));
      const job3 = await db().selectFrom('jobs').select(['status', 'duration_seconds']).where('attempt_id', '=', attempts[3]!).executeTakeFirstOrThrow();
      expect(job3).toEqual({ status: 'completed', duration_seconds: 12 });

      // PostgreSQL folds identical notifications of one transaction into one: a's two
      // "progress, no call ended" events arrive once (listeners re-read the run either way).
      await expect.poll(() => events.length).toBeGreaterThanOrEqual(3);
      expect(events.filter((e) => e.kind === 'progress').map((e) => [e.runId, e.callEnded]).sort()).toEqual(
        [
          [a.runId, false],
          [a.runId, true],
          [b.runId, true],
        ].sort(),
      );
    } finally {
      await unlisten();
    }
    expect(await liveCalls(a.businessId)).toBe(2);
    expect(await liveCalls(b.businessId)).toBe(0);
    await expectCountersAgree(a.businessId, a.runId);
    await expectCountersAgree(b.businessId, b.runId);

    const owners = await findAttemptsForWebhook(db(), [attempts[3]!.toUpperCase(), newId(), attempts[0]!]);
    expect(owners.map((o) => o?.jobId)).toEqual([b.jobIds[0], undefined, a.jobIds[0]]);
  });
});
