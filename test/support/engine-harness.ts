/**
 * An engine under test, made of real parts: a real database (PGlite or PostgreSQL), real slots
 * (memory or Redis), the simulated carrier on a real port reached through the real Twilio
 * adapter, and the status webhook on a real HTTP server that the carrier calls back.
 * The carrier's record is the independent witness of dials and concurrency.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import type { EngineContext } from '../../src/engine/context.ts';
import { createRunControl } from '../../src/engine/run-control-impl.ts';
import type { RunControl } from '../../src/engine/run-control.ts';
import { publishRunEvent, subscribeRunEvents } from '../../src/engine/run-events.ts';
import { statusWebhookDeps } from '../../src/engine/status-webhook.ts';
import { Worker } from '../../src/engine/worker.ts';
import { silentLogger } from '../../src/logger.ts';
import { createCallSlots, type CallSlots } from '../../src/slots/index.ts';
import { newId } from '../../src/store/ids.ts';
import { countJobsByStatus, createRun, getRun } from '../../src/store/runs.ts';
import type { Run } from '../../src/store/schema.ts';
import { createCarrierSim, type CarrierSim } from '../../src/telephony/carrier-sim/index.ts';
import type { ScriptChange } from '../../src/telephony/carrier-sim/script.ts';
import { createTwilioProvider } from '../../src/telephony/twilio-adapter.ts';
import { twilioStatusWebhook } from '../../src/telephony/webhook-route.ts';
import type { StoreFactory, TestStore } from './stores.ts';

import { freePort } from './net.ts';

export { freePort };

export const ACCOUNT_SID = `AC${randomBytes(16).toString('hex')}`;
export const AUTH_TOKEN = randomBytes(16).toString('hex');

/** Fast calls: a few ms of ringing and talk, every call answered. */
export const FAST_SCRIPT: ScriptChange = {
  ringMs: [2, 10],
  talkMs: [0, 20],
  shares: { answered: 1, noAnswer: 0, busy: 0, failed: 0 },
  machineShare: 0,
};

export interface HarnessOptions {
  redisUrl?: string;
  leaseTtlSeconds?: number;
  safetyPollSeconds?: number;
  script?: ScriptChange;
  /** Start no in-process worker (process-level tests start their own). */
  noWorker?: boolean;
}

export interface Harness {
  store: TestStore;
  sim: CarrierSim;
  config: Config;
  ctx: EngineContext;
  slots: CallSlots;
  runControl: RunControl;
  webhookServer: FastifyInstance;
  workers: Worker[];
  /** Env for child processes (`ocq worker`) wired to the same database, carrier and webhook. */
  childEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
  startWorker(id?: string): Promise<Worker>;
  createBusiness(options?: { maxConcurrentCalls?: number; callerId?: string | null }): Promise<{ id: string; callerId: string }>;
  createLeads(businessId: string, count: number): Promise<string[]>;
  createRun(businessId: string, leadIds: string[], concurrency?: number): Promise<Run>;
  /** Resolves when the run reaches one of `statuses` (woken by run events; re-checked every 250 ms as a backstop). */
  waitForRun(businessId: string, runId: string, statuses: Run['status'][], timeoutMs?: number): Promise<Run>;
  /** The run's counters agree with its job rows, and cursor_position with the terminal count. */
  expectCountersAgree(businessId: string, runId: string): Promise<void>;
  close(): Promise<void>;
}

let callerSeq = 0;

export async function startHarness(factory: StoreFactory, options: HarnessOptions = {}): Promise<Harness> {
  const store = await factory.open();
  const sim = createCarrierSim({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }], script: options.script ?? FAST_SCRIPT });
  const apiBaseUrl = await sim.listen();
  const webhookPort = await freePort();
  const config = loadConfig({
    PORT: String(webhookPort),
    PUBLIC_URL: `http://127.0.0.1:${webhookPort}`,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_BASE_URL: apiBaseUrl,
    OCQ_LEASE_TTL_SECONDS: String(options.leaseTtlSeconds ?? 15),
    OCQ_SAFETY_POLL_SECONDS: String(options.safetyPollSeconds ?? 5),
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
  });
  // The default key layout: child workers share it, and fresh business ids keep tests apart.
  const slots = createCallSlots({ redisUrl: options.redisUrl, logger: silentLogger });
  const telephony = createTwilioProvider({ apiBaseUrl, logger: silentLogger });
  const ctx: EngineContext = { config, store, slots, telephony, logger: silentLogger };
  const webhookServer = Fastify({ logger: false });
  await webhookServer.register(twilioStatusWebhook(statusWebhookDeps(ctx)));
  await webhookServer.listen({ port: webhookPort, host: '127.0.0.1' });
  const runControl = createRunControl(ctx);
  const workers: Worker[] = [];

  const harness: Harness = {
    store,
    sim,
    config,
    ctx,
    slots,
    runControl,
    webhookServer,
    workers,
    childEnv(extra = {}) {
      return {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: store.url,
        ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
        PUBLIC_URL: config.publicUrl,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_BASE_URL: apiBaseUrl,
        OCQ_LEASE_TTL_SECONDS: String(config.leaseTtlSeconds),
        OCQ_SAFETY_POLL_SECONDS: String(config.safetyPollSeconds),
        OCQ_LOG_LEVEL: 'info',
        ...extra,
      };
    },
    async startWorker(id = `test-worker-${workers.length + 1}`) {
      const worker = new Worker(ctx, { workerId: id });
      await worker.start();
      workers.push(worker);
      return worker;
    },
    async createBusiness({ maxConcurrentCalls = 3, callerId } = {}) {
      const id = newId();
      const number = callerId === undefined ? `+97230000${String(++callerSeq).padStart(4, '0')}` : callerId;
      await store.db
        .insertInto('businesses')
        .values({ id, name: `Business ${id.slice(-6)}`, max_concurrent_calls: maxConcurrentCalls, caller_id: number })
        .execute();
      return { id, callerId: number ?? '' };
    },
    async createLeads(businessId, count) {
      const ids = Array.from({ length: count }, () => newId());
      await store.db
        .insertInto('leads')
        .values(ids.map((id, i) => ({ id, business_id: businessId, phone_e164: `+9725${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}${i % 10}`.slice(0, 13), name: `Lead ${i}` })))
        .execute();
      return ids;
    },
    async createRun(businessId, leadIds, concurrency = 3) {
      const run = await createRun(store.db, { businessId, createdByUserId: null, name: 'test run', concurrency, leads: { ids: leadIds } });
      await publishRunEvent(store.notifier, { kind: 'created', runId: run.id, businessId });
      return run;
    },
    async waitForRun(businessId, runId, statuses, timeoutMs = 30_000) {
      let unsubscribe: (() => Promise<void>) | undefined;
      let backstop: NodeJS.Timeout | undefined;
      try {
        return await new Promise<Run>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error(`run ${runId} did not reach ${statuses.join('|')} in ${timeoutMs} ms`)), timeoutMs);
          const check = async () => {
            // A database blip (a test may cause one) is retried by the next event or backstop.
            const run = await getRun(store.db, businessId, runId).catch(() => undefined);
            if (run && statuses.includes(run.status)) {
              clearTimeout(deadline);
              resolve(run);
            }
          };
          void subscribeRunEvents(store.notifier, (event) => {
            if (event.runId === runId) void check();
          }).then((off) => {
            unsubscribe = off;
            void check();
          });
          backstop = setInterval(() => void check(), 250);
        });
      } finally {
        clearInterval(backstop);
        await unsubscribe?.();
      }
    },
    async expectCountersAgree(businessId, runId) {
      // Every read in one snapshot: calls of this run (or another run of the business) may still
      // be moving between separate reads.
      const { run, counts, businessLive } = await store.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => ({
          run: await getRun(trx, businessId, runId),
          counts: await countJobsByStatus(trx, businessId, runId),
          businessLive: (
            await sql<{ counter: number; live: number }>`
              SELECT b.live_calls AS counter,
                     (SELECT count(*)::int FROM jobs j
                       WHERE j.business_id = b.id AND j.status IN ('dialing', 'ringing', 'in_call')) AS live
                FROM businesses b WHERE b.id = ${businessId}`.execute(trx)
          ).rows,
        }));
      const c = (s: keyof typeof counts) => counts[s] ?? 0;
      expect(run).toBeDefined();
      expect({
        total: run!.total_jobs,
        queued: run!.queued_count,
        dialing: run!.dialing_count,
        ringing: run!.ringing_count,
        in_call: run!.in_call_count,
        completed: run!.completed_count,
        no_answer: run!.no_answer_count,
        busy: run!.busy_count,
        failed: run!.failed_count,
        cancelled: run!.cancelled_count,
        unknown: run!.unknown_count,
      }).toEqual({
        total: Object.values(counts).reduce((a, b) => a + (b ?? 0), 0),
        queued: c('queued'),
        dialing: c('dialing'),
        ringing: c('ringing'),
        in_call: c('in_call'),
        completed: c('completed'),
        no_answer: c('no_answer'),
        busy: c('busy'),
        failed: c('failed'),
        cancelled: c('cancelled'),
        unknown: c('unknown'),
      });
      const terminal = c('completed') + c('no_answer') + c('busy') + c('failed') + c('cancelled') + c('unknown');
      expect(run!.cursor_position).toBe(terminal);
      // The business's live-call counter (the database cap) agrees with its job rows too.
      expect(businessLive).toHaveLength(1);
      expect(businessLive[0]!.counter).toBe(businessLive[0]!.live);
    },
    async close() {
      for (const worker of workers) await worker.stop();
      await sim.close();
      await webhookServer.close();
      await slots.close();
      await store.close();
    },
  };
  if (!options.noWorker) await harness.startWorker();
  return harness;
}

/** Every job's attempt reached the carrier at most once: the witness's duplicate list is empty. */
export async function jobsOf(harness: Harness, runId: string) {
  return sql<{ phone_e164: string; status: string }>`SELECT phone_e164, status FROM jobs WHERE run_id = ${runId}`.execute(harness.store.db);
}
