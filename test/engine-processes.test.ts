/**
 * The engine as real processes: `ocq worker` children on PostgreSQL + Redis, killed with -9,
 * paused with SIGSTOP, four at once; and a private Redis server restarted mid-run. The carrier's
 * record is the witness of every dial.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Real processes start slowly on a loaded 2-core machine: give each scenario room. */
const PROCESS_TEST_TIMEOUT_MS = 120_000;
import { sql } from 'kysely';
import { listAudit } from '../src/store/audit.ts';
import { FAST_SCRIPT, freePort, startHarness, type Harness } from './support/engine-harness.ts';
import { killChild, spawnNode, type Child } from './support/processes.ts';
import { hasPostgres, hasRedis, redisUrl } from './support/services.ts';
import { storeFactories } from './support/stores.ts';

const postgres = storeFactories.find((f) => f.name === 'postgres')!;
const available = hasPostgres && hasRedis;
const TTL = 3;

function startWorkerProcess(h: Harness, id: string, extra: Record<string, string> = {}): Child {
  return spawnNode(['bin/ocq.js', 'worker'], h.childEnv({ OCQ_WORKER_ID: id, ...extra }));
}

describe.skipIf(!available)('worker processes on PostgreSQL + Redis', () => {
  let h: Harness;
  const children: Child[] = [];

  beforeAll(async () => {
    h = await startHarness(postgres, { redisUrl, leaseTtlSeconds: TTL, noWorker: true });
  });
  afterAll(async () => {
    for (const child of children) await killChild(child, 'SIGKILL');
    await h?.close();
  });

  function spawnTracked(id: string, extra: Record<string, string> = {}): Child {
    const child = startWorkerProcess(h, id, extra);
    children.push(child);
    return child;
  }

  it('kill -9 mid-run: another worker takes over within ttl + 2 s, completes it, and dials nobody twice', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [100, 300] });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 60), 3);
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    const first = spawnTracked('victim:1');
    await h.sim.waitFor(() => line().dials.length >= 10, 20_000, '10 dials');
    first.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    const rescuer = spawnTracked('rescuer:2', { OCQ_RECONCILE_WINDOW_SECONDS: '5' });
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed', 'cancelled', 'stopped'], 40_000);
    expect(ended.status).toBe('completed');
    const audit = await listAudit(h.store.db, business.id, { limit: 50 });
    const takeover = audit.items.find((e) => e.action === 'run.lease_takeover' && e.target_id === run.id);
    expect(takeover).toBeDefined();
    expect(takeover!.data).toMatchObject({ previous_worker: 'victim:1' });
    expect(takeover!.at.getTime() - killedAt).toBeLessThanOrEqual((TTL + 2) * 1000);
    // The witness: nobody dialled twice; every lead was dialled, except any the crash left
    // `unknown` (committed but never sent), which are never redialled blindly.
    expect(line().duplicates).toEqual([]);
    expect(line().dials.length + ended.unknown_count).toBe(60);
    expect(line().highWater).toBeLessThanOrEqual(3);
    await h.expectCountersAgree(business.id, run.id);
    await killChild(rescuer);
  }, PROCESS_TEST_TIMEOUT_MS);

  it('4 worker processes, 10 runs, 5 businesses: no duplicate dial, every cap held, all complete', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [5, 40] });
    const businesses = await Promise.all([2, 3, 3, 1, 2].map((cap) => h.createBusiness({ maxConcurrentCalls: cap })));
    const workers = [1, 2, 3, 4].map((n) => spawnTracked(`pool:${n}`));
    await Promise.all(workers.map((w) => w.waitFor('worker started')));
    // The pool is ended even when an assertion fails, so it cannot take the next scenario's run.
    try {
      const runs = [];
      for (const business of businesses) {
        for (let i = 0; i < 2; i++) runs.push({ business, run: await h.createRun(business.id, await h.createLeads(business.id, 20), 3) });
      }
      for (const { business, run } of runs) {
        expect((await h.waitForRun(business.id, run.id, ['completed', 'failed'], 60_000)).status).toBe('completed');
        await h.expectCountersAgree(business.id, run.id);
      }
      // Once everything is over, each business's live-call counter is back to zero with its rows.
      for (const { business, run } of runs) await h.expectCountersAgree(business.id, run.id);
      const caps = [2, 3, 3, 1, 2];
      businesses.forEach((business, i) => {
        const line = h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
        expect(line.dials).toHaveLength(40);
        expect(line.duplicates).toEqual([]);
        expect(line.highWater).toBeLessThanOrEqual(caps[i]!);
      });
      const owners = await sql<{ n: number }>`SELECT count(DISTINCT locked_by_worker)::int AS n FROM runs WHERE id = ANY(${runs.map((r) => r.run.id)}::uuid[])`.execute(h.store.db);
      expect(owners.rows[0]!.n).toBeGreaterThan(1);
    } finally {
      for (const w of workers) await killChild(w);
    }
  }, PROCESS_TEST_TIMEOUT_MS);

  it('a paused worker whose lease was taken over makes no write when it wakes', async () => {
    h.sim.setScript({ ...FAST_SCRIPT, talkMs: [50, 150] });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 40), 3);
    const line = () => h.sim.record.callerId(h.config.twilio.accountSid!, business.callerId);
    const paused = spawnTracked('sleeper:1');
    await h.sim.waitFor(() => line().dials.length >= 5, 20_000, '5 dials');
    paused.proc.kill('SIGSTOP');
    const rescuer = spawnTracked('rescuer:3', { OCQ_RECONCILE_WINDOW_SECONDS: '5' });
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed'], 40_000);
    expect(ended.status).toBe('completed');
    expect(ended.locked_by_worker).toBe('rescuer:3');
    await killChild(rescuer);
    const snapshot = async () =>
      (await sql`SELECT r.status, r.lock_token, r.lock_ts, r.ended_at, r.completed_count, r.unknown_count,
                   (SELECT json_agg(j ORDER BY j.position) FROM (SELECT position, status, attempt_id, provider_call_id, ended_at FROM jobs WHERE run_id = r.id) j) AS jobs
              FROM runs r WHERE r.id = ${run.id}`.execute(h.store.db)).rows[0];
    const before = await snapshot();
    paused.proc.kill('SIGCONT');
    await paused.waitFor('lease lost');
    await killChild(paused);
    expect(await snapshot()).toEqual(before);
  }, PROCESS_TEST_TIMEOUT_MS);
});

describe.skipIf(!hasPostgres)('Redis restarted mid-run', () => {
  let redis: ChildProcess | undefined;
  let port: number;
  let h: Harness | undefined;

  async function startRedis(): Promise<void> {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'pipe' });
    await new Promise<void>((resolve, reject) => {
      redis!.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        if (chunk.includes('Ready to accept connections')) resolve();
      });
      redis!.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
    });
  }

  afterAll(async () => {
    await h?.close();
    redis?.kill('SIGKILL');
  });

  it('no dial over the cap while Redis is down or after, and the run resumes once it is back', async () => {
    port = await freePort();
    await startRedis();
    h = await startHarness(postgres, { redisUrl: `redis://127.0.0.1:${port}`, script: { ...FAST_SCRIPT, talkMs: [100, 300] } });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 40), 3);
    const line = () => h!.sim.record.callerId(h!.config.twilio.accountSid!, business.callerId);
    await h.sim.waitFor(() => line().dials.length >= 8, 20_000, '8 dials');
    const exited = new Promise((resolve) => redis!.once('exit', resolve));
    redis!.kill('SIGKILL');
    await exited;
    // Fail closed: while Redis is down nothing new dials. Calls already live end meanwhile.
    const dialsWhenDown = line().dials.length;
    await h.sim.waitFor(() => line().live === 0, 10_000, 'live calls to end');
    expect(line().dials.length).toBe(dialsWhenDown);
    await startRedis(); // empty: every slot it held is gone, the database cap still holds
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed'], 40_000);
    expect(ended.status).toBe('completed');
    expect(line().dials).toHaveLength(40);
    expect(line().duplicates).toEqual([]);
    expect(line().highWater).toBeLessThanOrEqual(3);
    await h.expectCountersAgree(business.id, run.id);
  }, PROCESS_TEST_TIMEOUT_MS);
});

describe.skipIf(!available)('PostgreSQL connections cut mid-run', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('every connection of the database is terminated mid-run: the run completes, nobody dialled twice, the cap held', async () => {
    h = await startHarness(postgres, { redisUrl, script: { ...FAST_SCRIPT, talkMs: [50, 150] } });
    const business = await h.createBusiness({ maxConcurrentCalls: 3 });
    const run = await h.createRun(business.id, await h.createLeads(business.id, 40), 3);
    const line = () => h!.sim.record.callerId(h!.config.twilio.accountSid!, business.callerId);
    await h.sim.waitFor(() => line().dials.length >= 10, 20_000, '10 dials');
    const killed = await sql<{ n: number }>`
      SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()`.execute(h.store.db);
    expect(killed.rows[0]!.n).toBeGreaterThan(0);
    const ended = await h.waitForRun(business.id, run.id, ['completed', 'failed'], 60_000);
    expect(ended.status).toBe('completed');
    expect(line().duplicates).toEqual([]);
    expect(line().dials.length + ended.unknown_count).toBe(40);
    expect(line().highWater).toBeLessThanOrEqual(3);
    await h.expectCountersAgree(business.id, run.id);
  }, PROCESS_TEST_TIMEOUT_MS);
});
