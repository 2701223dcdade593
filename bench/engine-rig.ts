/**
 * The benchmark's engine rig, modelled on test/support/engine-harness.ts but built here (the
 * harness imports vitest, and its global setup drops other suites' databases): a scratch
 * PostgreSQL database copied from a migrated template, real Redis slots, the simulated carrier on
 * a real port reached through the real Twilio adapter, the status webhook on a real HTTP server,
 * and an in-process Worker, or `ocq worker` children wired to the same pieces.
 *
 * Two modes share every part but the waiting strategy:
 * - `ocq`: the product as shipped (FIFO slot waits woken by releases, run events wake drivers);
 * - `baseline`: the old system's strategy. Slots come from {@link BaselineCallSlots} (sleep 1 s
 *   when full), and the worker is not told that a call ended (the `progress` / `ended` run events
 *   are withheld from it), so a driver at its cap re-checks on a 1 s poll
 *   (OCQ_SAFETY_POLL_SECONDS=1). Without the second half the baseline would still be woken by
 *   the product's own events and be the product.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.ts';
import type { EngineContext } from '../src/engine/context.ts';
import { createRunControl } from '../src/engine/run-control-impl.ts';
import type { RunControl } from '../src/engine/run-control.ts';
import { publishRunEvent } from '../src/engine/run-events.ts';
import { statusWebhookDeps } from '../src/engine/status-webhook.ts';
import { Worker } from '../src/engine/worker.ts';
import { silentLogger } from '../src/logger.ts';
import { createCallSlots, type CallSlots } from '../src/slots/index.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { newId } from '../src/store/ids.ts';
import { migrate } from '../src/store/migrate.ts';
import { createRun } from '../src/store/runs.ts';
import type { Database, Run } from '../src/store/schema.ts';
import { createCarrierSim, type CarrierSim, type ScriptChange } from '../src/telephony/carrier-sim/index.ts';
import { createTwilioProvider } from '../src/telephony/twilio-adapter.ts';
import { twilioStatusWebhook } from '../src/telephony/webhook-route.ts';
import { withoutSlotWakeups } from './baseline-notifier.ts';
import { BaselineCallSlots } from './baseline-slots.ts';
import { Probe } from './probe.ts';
import { freePort } from '../test/support/net.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export type Mode = 'ocq' | 'baseline';

/** Milliseconds on this process's monotonic clock. */
export const now = (): number => performance.now();

// ── scratch databases ────────────────────────────────────────────────────────────────────────

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

function urlOf(name: string): string {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Leftovers of an interrupted bench are dropped once they are this old (a bench lasts < 8 min). */
const STALE_AFTER_SECONDS = 3600;

/**
 * One migrated template per bench run (`ocq_bench_e_<created, base-36 s>_<random>_tpl`), copied
 * for each rig. Only databases this run created are dropped, and leftovers of interrupted runs
 * once they are an hour old: other sessions' databases are left alone.
 */
export class ScratchDatabases {
  private readonly id = `${Math.floor(Date.now() / 1000).toString(36)}_${randomBytes(4).toString('hex')}`;
  private readonly template = `ocq_bench_e_${this.id}_tpl`;
  private readonly created = new Set<string>();
  private seq = 0;
  private ready: Promise<void> | undefined;

  private async dropStale(): Promise<void> {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const rows = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ocq\\_bench\\_e\\_%'`);
      for (const { datname } of rows.rows) {
        const created = /^ocq_bench_e_([0-9a-z]+)_[0-9a-f]{8}_/.exec(datname)?.[1];
        if (created && Date.now() / 1000 - parseInt(created, 36) > STALE_AFTER_SECONDS) {
          await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
        }
      }
    } finally {
      await client.end();
    }
  }

  private async init(): Promise<void> {
    await this.dropStale().catch(() => undefined);
    await adminQuery(`CREATE DATABASE "${this.template}"`);
    this.created.add(this.template);
    const store = await openStore({ databaseUrl: urlOf(this.template), poolSize: 1 });
    try {
      await migrate(store.db);
    } finally {
      await store.close();
    }
  }

  async create(): Promise<{ url: string; drop: () => Promise<void> }> {
    await (this.ready ??= this.init());
    const name = `ocq_bench_e_${this.id}_${++this.seq}`;
    await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${this.template}"`);
    this.created.add(name);
    return {
      url: urlOf(name),
      drop: async () => {
        await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        this.created.delete(name);
      },
    };
  }

  async dropAll(): Promise<void> {
    for (const name of [...this.created].reverse()) {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      this.created.delete(name);
    }
  }
}

// ── the carrier's record, timed on this process's clock ──────────────────────────────────────

export interface DialEvent {
  sid: string;
  from: string;
  to: string;
  /** performance.now() when the carrier accepted the create. */
  at: number;
  /** performance.now() when the call reached its final status (undefined while live). */
  endedAt?: number;
}

/** Every dial and call end the carrier sees, per caller id (one business = one caller id). */
export class DialLog {
  readonly bySid = new Map<string, DialEvent>();
  readonly byFrom = new Map<string, DialEvent[]>();
  total = 0;
  private readonly listeners = new Set<(event: DialEvent, kind: 'created' | 'ended') => void>();

  constructor(sim: CarrierSim) {
    sim.on('call-created', (call) => {
      const event: DialEvent = { sid: call.sid, from: call.from, to: call.to, at: now() };
      this.bySid.set(call.sid, event);
      let list = this.byFrom.get(call.from);
      if (!list) this.byFrom.set(call.from, (list = []));
      list.push(event);
      this.total += 1;
      for (const l of this.listeners) l(event, 'created');
    });
    sim.on('call-ended', (call) => {
      const event = this.bySid.get(call.sid);
      if (!event || event.endedAt !== undefined) return;
      event.endedAt = now();
      for (const l of this.listeners) l(event, 'ended');
    });
  }

  dialsOf(from: string): DialEvent[] {
    return this.byFrom.get(from) ?? [];
  }

  /** Resolves when `predicate` holds (checked on every dial and end), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }
}

// ── the rig ──────────────────────────────────────────────────────────────────────────────────

export const ACCOUNT_SID = `AC${randomBytes(16).toString('hex')}`;
export const AUTH_TOKEN = randomBytes(16).toString('hex');

export { freePort };

export interface RigOptions {
  mode: Mode;
  script: ScriptChange;
  leaseTtlSeconds?: number;
  /** Store pool size of this process (default 10, as `ocq`). */
  poolSize?: number;
  /** Experiments only: `ALTER DATABASE ... SET name = value` before anything connects (e.g. synchronous_commit). */
  databaseSettings?: Record<string, string>;
}

export interface BusinessRef {
  id: string;
  callerId: string;
}

let callerSeq = 0;
let phoneSeq = 0;

export class Rig {
  readonly log: DialLog;
  readonly runControl: RunControl;
  readonly workers: Worker[] = [];
  readonly children: WorkerChild[] = [];
  private closed = false;

  private constructor(
    readonly mode: Mode,
    readonly store: Store,
    readonly databaseUrl: string,
    private readonly dropDatabase: () => Promise<void>,
    readonly sim: CarrierSim,
    readonly apiBaseUrl: string,
    readonly config: Config,
    /** The webhook's and API's context (the product's own). */
    readonly ctx: EngineContext,
    /** The in-process worker's context (baseline: baseline slots, no slot wake-ups). */
    readonly workerCtx: EngineContext,
    readonly slots: CallSlots,
    readonly webhook: FastifyInstance,
    /** Timestamps inside this process's engine (webhook, slots, provider, run events). */
    readonly probe: Probe,
  ) {
    this.log = new DialLog(sim);
    this.runControl = createRunControl(ctx);
  }

  get db(): Kysely<Database> {
    return this.store.db;
  }

  static async start(dbs: ScratchDatabases, options: RigOptions): Promise<Rig> {
    const { url, drop } = await dbs.create();
    for (const [name, value] of Object.entries(options.databaseSettings ?? {})) {
      if (!/^[a-z_]+$/.test(name) || !/^[a-z0-9_]+$/.test(value)) throw new Error(`bad setting ${name}=${value}`);
      await adminQuery(`ALTER DATABASE "${new URL(url).pathname.slice(1)}" SET ${name} = ${value}`);
    }
    const store = await openStore({ databaseUrl: url, poolSize: options.poolSize ?? 10 });
    const sim = createCarrierSim({ accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }], script: options.script });
    const apiBaseUrl = await sim.listen();
    const webhookPort = await freePort();
    const config = loadConfig({
      DATABASE_URL: url,
      REDIS_URL,
      PORT: String(webhookPort),
      PUBLIC_URL: `http://127.0.0.1:${webhookPort}`,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_BASE_URL: apiBaseUrl,
      OCQ_LEASE_TTL_SECONDS: String(options.leaseTtlSeconds ?? 15),
      // ocq: the default safety poll (wake-ups are pushed). baseline: the old 1 s sleep.
      OCQ_SAFETY_POLL_SECONDS: options.mode === 'baseline' ? '1' : '5',
    });
    const probe = new Probe();
    const slots = createCallSlots({ redisUrl: REDIS_URL, logger: silentLogger });
    const telephony = probe.telephony(createTwilioProvider({ apiBaseUrl, logger: silentLogger }));
    const probedStore: Store = { db: store.db, kind: store.kind, notifier: probe.notifier(store.notifier), close: () => store.close() };
    const ctx: EngineContext = { config, store: probedStore, slots: probe.slots(slots), telephony, logger: silentLogger };
    let workerCtx = ctx;
    if (options.mode === 'baseline') {
      const baselineSlots = new BaselineCallSlots(slots, { redisUrl: REDIS_URL, sleepMs: 1000 });
      const workerStore: Store = { ...probedStore, notifier: withoutSlotWakeups(probedStore.notifier) };
      workerCtx = { ...ctx, store: workerStore, slots: probe.slots(baselineSlots) };
    }
    const webhook = Fastify({ logger: false });
    probe.webhook(webhook);
    await webhook.register(twilioStatusWebhook(statusWebhookDeps(ctx)));
    await webhook.listen({ port: webhookPort, host: '127.0.0.1' });
    return new Rig(options.mode, store, url, drop, sim, apiBaseUrl, config, ctx, workerCtx, slots, webhook, probe);
  }

  async startWorker(id = `bench-${this.mode}-${this.workers.length + 1}`): Promise<Worker> {
    const worker = new Worker(this.workerCtx, { workerId: id });
    await worker.start();
    this.workers.push(worker);
    return worker;
  }

  /** Env for `node bin/ocq.js worker` children wired to this rig (baseline children read the same). */
  childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: this.databaseUrl,
      REDIS_URL,
      PUBLIC_URL: this.config.publicUrl,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_BASE_URL: this.apiBaseUrl,
      OCQ_LEASE_TTL_SECONDS: String(this.config.leaseTtlSeconds),
      OCQ_SAFETY_POLL_SECONDS: String(this.config.safetyPollSeconds),
      OCQ_LOG_LEVEL: 'info',
      ...extra,
    };
  }

  /** A worker child: the product's `ocq worker`, or in baseline mode bench/baseline-worker.js. */
  spawnWorker(id: string, extra: Record<string, string> = {}, entry = this.mode === 'baseline' ? 'bench/baseline-worker.js' : undefined): WorkerChild {
    const child = new WorkerChild(this.childEnv({ OCQ_WORKER_ID: id, ...extra }), entry);
    this.children.push(child);
    return child;
  }

  /** Businesses with unique caller ids, inserted in one statement. */
  async createBusinesses(count: number, maxConcurrentCalls: number): Promise<BusinessRef[]> {
    const rows = Array.from({ length: count }, () => {
      const id = newId();
      const callerId = `+9723${String(++callerSeq).padStart(8, '0')}`;
      return { id, name: `Bench ${id.slice(-6)}`, max_concurrent_calls: maxConcurrentCalls, caller_id: callerId };
    });
    for (let i = 0; i < rows.length; i += 2000) await this.db.insertInto('businesses').values(rows.slice(i, i + 2000)).execute();
    return rows.map((r) => ({ id: r.id, callerId: r.caller_id }));
  }

  /** Leads with unique phones, in as few statements as parameters allow. Returns their ids per business. */
  async createLeads(counts: ReadonlyArray<{ businessId: string; count: number }>): Promise<Map<string, string[]>> {
    const byBusiness = new Map<string, string[]>();
    const rows: Array<{ id: string; business_id: string; phone_e164: string; name: string }> = [];
    for (const { businessId, count } of counts) {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = newId();
        ids.push(id);
        rows.push({ id, business_id: businessId, phone_e164: `+9725${String(++phoneSeq).padStart(8, '0')}`, name: `Lead ${i}` });
      }
      byBusiness.set(businessId, ids);
    }
    for (let i = 0; i < rows.length; i += 5000) await this.db.insertInto('leads').values(rows.slice(i, i + 5000)).execute();
    return byBusiness;
  }

  /** Creates runs through the product's own createRun, `parallel` at a time; announces each unless told not to. */
  async createRuns(specs: ReadonlyArray<{ businessId: string; leadIds: string[]; concurrency: number }>, options: { announce?: boolean; parallel?: number } = {}): Promise<Run[]> {
    const runs: Run[] = new Array<Run>(specs.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let i = next++; i < specs.length; i = next++) {
        const spec = specs[i]!;
        const run = await createRun(this.db, { businessId: spec.businessId, createdByUserId: null, name: 'bench', concurrency: spec.concurrency, leads: { ids: spec.leadIds } });
        if (options.announce ?? true) await publishRunEvent(this.store.notifier, { kind: 'created', runId: run.id, businessId: spec.businessId });
        runs[i] = run;
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.parallel ?? 8, specs.length) }, lane));
    return runs;
  }

  /** Polls (every `everyMs`) until every run is in one of `statuses`; rejects after `timeoutMs`. */
  async waitForRuns(runIds: readonly string[], statuses: readonly Run['status'][], timeoutMs: number, everyMs = 100): Promise<number> {
    const started = now();
    for (;;) {
      const row = await this.db
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('id', 'in', runIds as string[])
        .where('status', 'in', statuses as Run['status'][])
        .executeTakeFirstOrThrow();
      if (Number(row.n) === runIds.length) return now();
      if (now() - started > timeoutMs) throw new Error(`${runIds.length - Number(row.n)} of ${runIds.length} runs not ${statuses.join('|')} after ${timeoutMs} ms`);
      await delay(everyMs);
    }
  }

  /** Frees every slot still held by this rig's attempts (long calls left live), so Redis is left clean. */
  async releaseLiveSlots(): Promise<void> {
    const live = await this.db
      .selectFrom('jobs')
      .select(['business_id', 'attempt_id'])
      .where('attempt_id', 'is not', null)
      .where('status', 'in', ['dialing', 'ringing', 'in_call'])
      .execute();
    for (let i = 0; i < live.length; i += 50) {
      await Promise.all(live.slice(i, i + 50).map((j) => this.slots.release(j.business_id, j.attempt_id!).catch(() => false)));
    }
  }

  /**
   * Stops everything and drops the database. `abandon`: first take every lease away in one
   * statement, so the workers' graceful stop (one lease-release commit per run, sequential: tens
   * of seconds with 1,000 runs on a busy server) finds nothing to release; for rigs whose
   * measurement is over.
   */
  async close(options: { abandon?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const child of this.children) await child.kill('SIGKILL');
    if (options.abandon) {
      await this.db.updateTable('runs').set({ locked_by_worker: null, lock_token: null, lock_ts: null }).where('lock_token', 'is not', null).execute().catch(() => undefined);
    }
    for (const worker of this.workers) await worker.stop().catch(() => undefined);
    await this.releaseLiveSlots().catch(() => undefined);
    await this.sim.close();
    await this.webhook.close();
    // Closes the baseline wrapper's own connection (and the pool), or just the pool.
    await this.workerCtx.slots.close().catch(() => undefined);
    await this.slots.close().catch(() => undefined);
    await this.store.close().catch(() => undefined);
    await this.dropDatabase();
  }
}

// ── `ocq worker` children ────────────────────────────────────────────────────────────────────

const liveChildren = new Set<WorkerChild>();

/** SIGKILL every worker child still running (the bench is being interrupted). By their own pids only. */
export function killAllChildren(): void {
  for (const child of liveChildren) if (child.alive) child.proc.kill('SIGKILL');
}

/** `node bin/ocq.js worker`, run from the project root; stdout is kept for waitFor. */
export class WorkerChild {
  readonly proc: ChildProcess;
  private out = '';
  private err = '';
  readonly exited: Promise<number | string>;
  private readonly waiters: Array<{ test: (s: string) => boolean; resolve: () => void }> = [];

  /** @param entry the CLI to run (default the product's `bin/ocq.js`), relative to the project root. */
  constructor(env: NodeJS.ProcessEnv, entry = 'bin/ocq.js') {
    this.proc = spawn(process.execPath, [entry, 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.out += chunk;
      if (this.out.length > 2_000_000) this.out = this.out.slice(-1_000_000);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        if (this.waiters[i]!.test(this.out)) this.waiters.splice(i, 1)[0]!.resolve();
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.err = (this.err + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => {
        liveChildren.delete(this);
        resolve(code ?? signal ?? 'unknown');
      }),
    );
    liveChildren.add(this);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  /** Resolves when stdout contains `text`; rejects on exit or after `timeoutMs`. */
  waitFor(text: string, timeoutMs: number): Promise<void> {
    if (this.out.includes(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.pid} did not print "${text}" in ${timeoutMs} ms.\nstdout: ${this.out.slice(-2000)}\nstderr: ${this.err.slice(-2000)}`)), timeoutMs);
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${this.pid} exited (${code}) before printing "${text}".\nstdout: ${this.out.slice(-2000)}\nstderr: ${this.err.slice(-2000)}`));
      });
      this.waiters.push({
        test: (s) => s.includes(text),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Resident set size now and its peak (VmRSS / VmHWM), in MiB; null once gone. */
  memory(): { rssMiB: number; peakMiB: number } | null {
    try {
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
      return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
    } catch {
      return null;
    }
  }

  /** Kills this child (by its own pid) and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.alive) this.proc.kill(signal);
    await this.exited;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
