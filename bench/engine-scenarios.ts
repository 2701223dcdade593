/**
 * The engine benchmark's scenarios. Each returns plain figures; engine.ts turns them into rows.
 * The carrier's record (its create and end events, timed on this process's clock) is the witness:
 * never the engine's own counters.
 */
import fs from 'node:fs';
import { sql } from 'kysely';
import type { ScriptChange } from '../src/telephony/carrier-sim/index.ts';
import { ACCOUNT_SID, delay, now, Rig, type BusinessRef, type DialEvent, type ScratchDatabases } from './engine-rig.ts';
import { cappedOccupancy, max, round, summary } from './stats.ts';

const TERMINAL = ['completed', 'failed', 'cancelled', 'stopped'] as const;
const ACTOR = { type: 'system', id: 'bench' } as const;

export function script(talkMs: [number, number], ringMs: [number, number] = [2, 10]): ScriptChange {
  return { ringMs, talkMs, shares: { answered: 1, noAnswer: 0, busy: 0, failed: 0 }, machineShare: 0 };
}

/** The carrier-side witness for one business: most calls live at once, numbers dialled twice. */
function witness(rig: Rig, business: BusinessRef): { highWater: number; duplicates: number; dials: number } {
  const line = rig.sim.record.callerId(ACCOUNT_SID, business.callerId);
  return { highWater: line.highWater, duplicates: line.duplicates.length, dials: line.dials.length };
}

async function oneRun(rig: Rig, cap: number, leads: number): Promise<{ business: BusinessRef; runId: string }> {
  const [business] = await rig.createBusinesses(1, cap);
  const leadIds = (await rig.createLeads([{ businessId: business!.id, count: leads }])).get(business!.id)!;
  const [run] = await rig.createRuns([{ businessId: business!.id, leadIds, concurrency: cap }]);
  return { business: business!, runId: run!.id };
}

async function settle(rig: Rig, business: BusinessRef, runId: string, timeoutMs: number): Promise<DialEvent[]> {
  await rig.waitForRuns([runId], TERMINAL, timeoutMs);
  const dials = rig.log.dialsOf(business.callerId);
  await rig.log.waitFor(() => dials.every((d) => d.endedAt !== undefined), 10_000, 'every call to end');
  return [...dials].sort((a, b) => a.at - b.at);
}

// ── 1. slot handoff latency ──────────────────────────────────────────────────────────────────

export interface HandoffResult {
  /** Calls over all rounds. */
  calls: number;
  cap: number;
  /** ms from the k-th call end to the (cap + k)-th dial, for every end while jobs were queued. */
  handoffMs: ReturnType<typeof summary>;
  samples: number[];
  /** Where the time goes (ms, p50 / p99 per segment), from the in-process probes. */
  segments: Record<string, ReturnType<typeof summary>>;
  witness: ReturnType<typeof witness>;
  wallMs: number;
}

/**
 * Pairs ends with dials: with a cap of `cap`, dial number cap + k (in time order) can only leave
 * once k + 1 calls have ended, so it is the dial that took the slot freed by the k-th end.
 */
function pairHandoffs(dials: DialEvent[], cap: number): Array<{ end: DialEvent; next: DialEvent; ms: number }> {
  const ends = [...dials].sort((a, b) => a.endedAt! - b.endedAt!);
  const pairs: Array<{ end: DialEvent; next: DialEvent; ms: number }> = [];
  for (let k = 0; cap + k < dials.length; k++) {
    const end = ends[k]!;
    const next = dials[cap + k]!;
    pairs.push({ end, next, ms: next.at - end.endedAt! });
  }
  return pairs;
}

export async function slotHandoff(rig: Rig, calls = 60, cap = 3, rounds = 1): Promise<HandoffResult> {
  rig.sim.setScript(script([50, 150]));
  rig.probe.reset();
  const started = now();
  const pairs: Array<{ end: DialEvent; next: DialEvent; ms: number }> = [];
  const segmentRounds: Array<{ business: BusinessRef; pairs: typeof pairs }> = [];
  const witnesses: Array<ReturnType<typeof witness>> = [];
  // Several rounds (one run of `calls` each) pool their samples: a p99 of 57 samples is its max.
  for (let round = 0; round < rounds; round++) {
    const { business, runId } = await oneRun(rig, cap, calls);
    const dials = await settle(rig, business, runId, 120_000);
    const roundPairs = pairHandoffs(dials, cap);
    pairs.push(...roundPairs);
    segmentRounds.push({ business, pairs: roundPairs });
    witnesses.push(witness(rig, business));
  }
  const wallMs = now() - started;
  return {
    calls: witnesses.reduce((s, w) => s + w.dials, 0),
    cap,
    handoffMs: summary(pairs.map((p) => p.ms), 2),
    samples: pairs.map((p) => round(p.ms, 2)),
    segments: handoffSegments(rig, segmentRounds),
    witness: {
      highWater: Math.max(...witnesses.map((w) => w.highWater)),
      duplicates: witnesses.reduce((s, w) => s + w.duplicates, 0),
      dials: witnesses.reduce((s, w) => s + w.dials, 0),
    },
    wallMs: round(wallMs, 0),
  };
}

/** Splits each handoff at the probes' timestamps; segments whose edges are missing are skipped. */
function handoffSegments(rig: Rig, rounds: Array<{ business: BusinessRef; pairs: Array<{ end: DialEvent; next: DialEvent }> }>): Record<string, ReturnType<typeof summary>> {
  const seg: Record<string, number[]> = {
    'end → final webhook arrives': [],
    'webhook → slot released': [],
    'final webhook → run event received': [],
    'run event → driver asks a slot': [],
    'slot acquire (driver)': [],
    'granted → placeCall (commit dial, hold slot)': [],
    'placeCall → carrier create': [],
  };
  /** The slowest handoffs, split: a tail is read from its own samples, not from per-segment p99s. */
  const slowest: Array<Record<string, number>> = [];
  let row: Record<string, number> = {};
  const add = (name: string, a: number | undefined, b: number | undefined): void => {
    if (a === undefined || b === undefined) return;
    seg[name]!.push(b - a);
    row[name] = b - a;
  };
  for (const { business, pairs } of rounds) for (const { end, next } of pairs) {
    row = { total: next.at - end.endedAt! };
    const ended = rig.probe.attempts.get(rig.probe.attemptBySid.get(end.sid) ?? '');
    const dialled = rig.probe.attempts.get(rig.probe.attemptBySid.get(next.sid) ?? '');
    const hook = ended?.webhook.get('completed');
    const event = hook !== undefined ? rig.probe.eventAfter(business.id, hook, ['progress', 'ended']) : undefined;
    add('end → final webhook arrives', end.endedAt, hook);
    add('webhook → slot released', hook, ended?.released);
    add('final webhook → run event received', hook, event);
    add('run event → driver asks a slot', event, dialled?.acquireStart);
    add('slot acquire (driver)', dialled?.acquireStart, dialled?.acquired);
    add('granted → placeCall (commit dial, hold slot)', dialled?.acquired, dialled?.placeStart);
    add('placeCall → carrier create', dialled?.placeStart, next.at);
    slowest.push(row);
  }
  slowest.sort((a, b) => b.total! - a.total!);
  const segments: Record<string, unknown> = Object.fromEntries(Object.entries(seg).filter(([, v]) => v.length > 0).map(([k, v]) => [k, summary(v, 2)]));
  segments['slowest 5 handoffs'] = slowest.slice(0, 5).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v, 2)])));
  return segments as Record<string, ReturnType<typeof summary>>;
}

// ── 2. slot utilisation ──────────────────────────────────────────────────────────────────────

export interface UtilisationResult {
  calls: number;
  cap: number;
  /** call-seconds / slot-seconds while jobs were queued (first dial → last dial), %. */
  utilisationPct: number;
  /** The same over first dial → last call end (includes the drain, where no job is left). */
  utilisationWithDrainPct: number;
  busyMs: number;
  meanTalkMs: number;
  handoffMs: ReturnType<typeof summary>;
  witness: ReturnType<typeof witness>;
}

export async function slotUtilisation(
  rig: Rig,
  calls = 60,
  cap = 3,
  talkMs: [number, number] = [200, 600],
  ringMs: [number, number] = [2, 10],
): Promise<UtilisationResult> {
  rig.sim.setScript(script(talkMs, ringMs));
  const { business, runId } = await oneRun(rig, cap, calls);
  const dials = await settle(rig, business, runId, 150_000);
  const intervals = dials.map((d) => ({ start: d.at, end: d.endedAt! }));
  const first = dials[0]!.at;
  const lastDial = dials.at(-1)!.at;
  const lastEnd = max(intervals.map((i) => i.end));
  const busy = cappedOccupancy(intervals, cap, first, lastDial);
  const busyWithDrain = cappedOccupancy(intervals, cap, first, lastEnd);
  return {
    calls: dials.length,
    cap,
    utilisationPct: round((100 * busy) / (cap * (lastDial - first)), 2),
    utilisationWithDrainPct: round((100 * busyWithDrain) / (cap * (lastEnd - first)), 2),
    busyMs: round(lastDial - first, 0),
    meanTalkMs: round(intervals.reduce((s, i) => s + i.end - i.start, 0) / intervals.length, 1),
    handoffMs: summary(pairHandoffs(dials, cap).map((p) => p.ms), 2),
    witness: witness(rig, business),
  };
}

// ── 3. cancel latency ────────────────────────────────────────────────────────────────────────

export interface CancelTrial {
  requestToResponseMs: number;
  /** Last dial of the run minus the response time (≤ 0: no dial left after the response). */
  lastDialAfterResponseMs: number;
  /** Last dial minus the request time (≤ 0: no dial left after the request). */
  lastDialAfterRequestMs: number;
  dialsAfterResponse: number;
  dialsBeforeCancel: number;
  /** Request → run `cancelled` (live calls finish first). */
  requestToCancelledMs: number;
}

const CANCEL_OFFSETS_MS = [17, 61, 113];

export async function cancelLatency(rig: Rig, trials = 3, cap = 3): Promise<{ trials: CancelTrial[] }> {
  rig.sim.setScript(script([100, 300]));
  const out: CancelTrial[] = [];
  for (let t = 0; t < trials; t++) {
    const { business, runId } = await oneRun(rig, cap, 40);
    await rig.log.waitFor(() => rig.log.dialsOf(business.callerId).length >= 10, 60_000, '10 dials before the cancel');
    // Not in step with a dial: the request lands anywhere in the dial cycle.
    await delay(CANCEL_OFFSETS_MS[t % CANCEL_OFFSETS_MS.length]!);
    const requested = now();
    await rig.runControl.cancel(business.id, runId, ACTOR);
    const responded = now();
    const cancelled = await rig.waitForRuns([runId], ['cancelled'], 20_000, 10);
    await delay(300); // anything still on its way to the carrier would show up by now
    const dials = rig.log.dialsOf(business.callerId);
    const last = max(dials.map((d) => d.at));
    out.push({
      requestToResponseMs: round(responded - requested, 2),
      lastDialAfterResponseMs: round(last - responded, 2),
      lastDialAfterRequestMs: round(last - requested, 2),
      dialsAfterResponse: dials.filter((d) => d.at > responded).length,
      dialsBeforeCancel: dials.filter((d) => d.at <= requested).length,
      requestToCancelledMs: round(cancelled - requested, 1),
    });
  }
  return { trials: out };
}

// ── 4. dispatch throughput ───────────────────────────────────────────────────────────────────

export interface ThroughputResult {
  where: string;
  businesses: number;
  dials: number;
  expectedDials: number;
  /** Dials per second between the first and the last dial. */
  dialsPerSecond: number;
  /** Dials per second from the worker's start to every run completed (null: not all done within the time box). */
  endToEndDialsPerSecond: number | null;
  firstDialAfterStartMs: number;
  dialWindowMs: number;
  allCompletedMs: number | null;
  /** The measurement stops here even if dials remain (the figure is then over the dials so far). */
  timeBoxMs: number;
  /** Creating the businesses, leads and 1,000 runs (not measured). */
  setupMs: number;
  maxHighWaterOverCap: number;
  duplicates: number;
  /** Commits and WAL flushes (fsyncs) per dial, from pg_stat_database / pg_stat_wal deltas (cluster-wide WAL: other load included). */
  commitsPerDial: number;
  walSyncsPerDial: number | null;
  /** CPU of this process during the window (ms of user+system per wall second; 1000 = one core). */
  benchProcessCpuPerSecondMs: number;
  /**
   * CPU per dial: this process (carrier + webhook, + the worker when in-process), the worker
   * children, and this database's PostgreSQL backends. 2 cores / their sum bounds dials/s.
   */
  cpuMsPerDial: { benchProcess: number; workerChildren: number | null; postgresBackends: number };
}

/** CPU time (user + system) a process has used, in ms; null when it is gone or not ours to read. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100;

/** CPU of this database's PostgreSQL backends (pids seen now), by pid. */
async function backendCpu(rig: Rig): Promise<Map<number, number>> {
  const pids = await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`.execute(rig.db);
  const out = new Map<number, number>();
  for (const { pid } of pids.rows) {
    const ms = processCpuMs(pid);
    if (ms !== null) out.set(pid, ms);
  }
  return out;
}

async function dbCounters(rig: Rig): Promise<{ commits: number; walSyncs: number | null }> {
  const commits = await sql<{ n: number }>`SELECT xact_commit::float8 AS n FROM pg_stat_database WHERE datname = current_database()`.execute(rig.db);
  const wal = await sql<{ n: number }>`SELECT wal_sync::float8 AS n FROM pg_stat_wal`.execute(rig.db).catch(() => null);
  return { commits: commits.rows[0]?.n ?? 0, walSyncs: wal?.rows[0]?.n ?? null };
}

/**
 * 1,000 businesses × 3–5 leads, one run each, zero-length calls. The runs are created (pending,
 * unannounced) first; the clock starts when the worker starts.
 */
export async function dispatchThroughput(rig: Rig, options: { businesses?: number; children?: number; timeBoxMs?: number } = {}): Promise<ThroughputResult> {
  const count = options.businesses ?? 1000;
  const children = options.children ?? 0;
  const cap = 3;
  rig.sim.setScript(script([0, 0], [0, 0]));
  const setupStarted = now();
  const businesses = await rig.createBusinesses(count, cap);
  const leads = await rig.createLeads(businesses.map((b, i) => ({ businessId: b.id, count: 3 + (i % 3) })));
  const runs = await rig.createRuns(
    businesses.map((b) => ({ businessId: b.id, leadIds: leads.get(b.id)!, concurrency: cap })),
    { announce: false, parallel: 8 },
  );
  const expected = [...leads.values()].reduce((s, l) => s + l.length, 0);
  const setupMs = round(now() - setupStarted, 0);
  const before = await dbCounters(rig);
  const dialsBefore = rig.log.total;
  let started: number;
  let where: string;
  const cpu0 = process.cpuUsage();
  if (children > 0) {
    const kids = Array.from({ length: children }, (_, i) => rig.spawnWorker(`bench-tp-${i + 1}`));
    // The clock starts once they are up (tsx start-up is not dispatch).
    await Promise.all(kids.map((k) => k.waitFor('worker started', 60_000)));
    started = now();
    where = `${children} \`ocq worker\` child process${children > 1 ? 'es' : ''}`;
  } else {
    started = now();
    await rig.startWorker();
    where = 'in-process Worker (same process as carrier + webhook)';
  }
  const t0 = process.hrtime.bigint();
  const pg0 = await backendCpu(rig);
  const child0 = rig.children.map((c) => processCpuMs(c.pid) ?? 0);
  // Time-boxed: past the box the figure is taken over the dials so far, and the rest is abandoned.
  const box = options.timeBoxMs ?? 45_000;
  const allDialled = await rig.log
    .waitFor(() => rig.log.total - dialsBefore >= expected, box, `${expected} dials`)
    .then(() => true)
    .catch(() => false);
  const completedAt = allDialled ? await rig.waitForRuns(runs.map((r) => r.id), ['completed'], 30_000, 50).catch(() => null) : null;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const pg1 = await backendCpu(rig);
  const childMs = rig.children.reduce((sum, c, i) => sum + ((processCpuMs(c.pid) ?? 0) - (child0[i] ?? 0)), 0);
  let pgMs = 0;
  for (const [pid, ms] of pg1) pgMs += ms - (pg0.get(pid) ?? 0);
  const after = await dbCounters(rig);
  const all: DialEvent[] = [];
  for (const b of businesses) all.push(...rig.log.dialsOf(b.callerId));
  all.sort((a, b) => a.at - b.at);
  const first = all[0]!.at;
  const last = all.at(-1)!.at;
  let maxOver = 0;
  let duplicates = 0;
  for (const b of businesses) {
    const w = witness(rig, b);
    maxOver = Math.max(maxOver, w.highWater - cap);
    duplicates += w.duplicates;
  }
  return {
    where,
    businesses: count,
    dials: all.length,
    expectedDials: expected,
    dialsPerSecond: round(((all.length - 1) * 1000) / (last - first), 1),
    endToEndDialsPerSecond: completedAt === null ? null : round((all.length * 1000) / (completedAt - started), 1),
    firstDialAfterStartMs: round(first - started, 0),
    dialWindowMs: round(last - first, 0),
    allCompletedMs: completedAt === null ? null : round(completedAt - started, 0),
    timeBoxMs: box,
    setupMs,
    maxHighWaterOverCap: maxOver,
    duplicates,
    commitsPerDial: round((after.commits - before.commits) / all.length, 2),
    walSyncsPerDial: after.walSyncs !== null && before.walSyncs !== null ? round((after.walSyncs - before.walSyncs) / all.length, 2) : null,
    benchProcessCpuPerSecondMs: round((cpu.user + cpu.system) / 1000 / wallS, 0),
    cpuMsPerDial: {
      benchProcess: round((cpu.user + cpu.system) / 1000 / all.length, 2),
      workerChildren: children > 0 ? round(childMs / all.length, 2) : null,
      postgresBackends: round(pgMs / all.length, 2),
    },
  };
}

// ── 5. takeover after kill -9 ────────────────────────────────────────────────────────────────

export interface TakeoverResult {
  ttlSeconds: number;
  /** kill -9 → the new owner's `run.lease_takeover` audit event. */
  killToTakeoverMs: number;
  /** kill -9 → the new owner's first dial. */
  killToFirstDialMs: number;
  /** The lease's expiry (lock_ts + ttl) as seen just before the kill, relative to the kill. */
  leaseExpiryAfterKillMs: number;
  /** Takeover minus lease expiry: the time to notice. */
  noticeMs: number;
  previousWorker: string | null;
  newOwner: string | null;
  duplicates: number;
}

export async function takeover(dbs: ScratchDatabases, ttlSeconds = 5): Promise<TakeoverResult> {
  const rig = await Rig.start(dbs, { mode: 'ocq', script: script([100, 300]), leaseTtlSeconds: ttlSeconds });
  try {
    const { business, runId } = await oneRun(rig, 3, 200);
    const victim = rig.spawnWorker('victim:1');
    await rig.log.waitFor(() => rig.log.dialsOf(business.callerId).length >= 10, 60_000, '10 dials by the first worker');
    const rescuer = rig.spawnWorker('rescuer:2', { OCQ_RECONCILE_WINDOW_SECONDS: '5' });
    await rescuer.waitFor('worker started', 60_000);
    const lease = await rig.db.selectFrom('runs').select(['locked_by_worker', 'lock_ts']).where('id', '=', runId).executeTakeFirstOrThrow();
    victim.proc.kill('SIGKILL');
    const killedWall = Date.now();
    const killed = now();
    await victim.exited;
    let audit: { at: Date; data: unknown } | undefined;
    for (const deadline = now() + (ttlSeconds + 15) * 1000; !audit && now() < deadline; ) {
      audit = await rig.db
        .selectFrom('audit_events')
        .select(['at', 'data'])
        .where('business_id', '=', business.id)
        .where('action', '=', 'run.lease_takeover')
        .where('target_id', '=', runId)
        .executeTakeFirst();
      if (!audit) await delay(20);
    }
    // The new owner's first dial: after the takeover (DB clock mapped onto this process's clock;
    // a dial the victim had already sent can still land just after the kill).
    const takenAt = audit ? killed + (audit.at.getTime() - killedWall) : killed;
    const byNewOwner = (d: DialEvent): boolean => d.at >= takenAt;
    await rig.log.waitFor(() => rig.log.dialsOf(business.callerId).some(byNewOwner), 30_000, 'a dial by the new owner');
    const firstAfter = rig.log.dialsOf(business.callerId).find(byNewOwner)!.at;
    const owner = await rig.db.selectFrom('runs').select('locked_by_worker').where('id', '=', runId).executeTakeFirstOrThrow();
    await rig.runControl.cancel(business.id, runId, ACTOR).catch(() => undefined);
    const expiry = (lease.lock_ts?.getTime() ?? Number.NaN) + ttlSeconds * 1000 - killedWall;
    const takeoverMs = audit ? audit.at.getTime() - killedWall : Number.NaN;
    return {
      ttlSeconds,
      killToTakeoverMs: round(takeoverMs, 0),
      killToFirstDialMs: round(firstAfter - killed, 0),
      leaseExpiryAfterKillMs: round(expiry, 0),
      noticeMs: round(takeoverMs - expiry, 0),
      previousWorker: lease.locked_by_worker,
      newOwner: owner.locked_by_worker,
      duplicates: witness(rig, business).duplicates,
    };
  } finally {
    await rig.close();
  }
}

// ── 6. worker memory with 1,000 runs live ────────────────────────────────────────────────────

export interface MemoryResult {
  runs: number;
  runsLeasedByWorker: number;
  liveCalls: number;
  idleRssMiB: number;
  rssMiB: number;
  peakRssMiB: number;
  leaseAllMs: number;
  /** SIGTERM → exit of the worker with its runs (diagnosis only). */
  gracefulShutdown?: { ms: number; exited: boolean; leasesNotHandedBack: number };
}

/** An `ocq worker` child drives 1,000 runs whose calls stay live (2-minute talk, cap 1, 3 leads each). */
export async function workerMemory(
  dbs: ScratchDatabases,
  runCount = 1000,
  options: { entry?: string; measureShutdown?: boolean } = {},
): Promise<MemoryResult> {
  const rig = await Rig.start(dbs, { mode: 'ocq', script: script([120_000, 120_000], [5, 20]) });
  try {
    const businesses = await rig.createBusinesses(runCount, 1);
    const leads = await rig.createLeads(businesses.map((b) => ({ businessId: b.id, count: 3 })));
    const worker = rig.spawnWorker('mem:1', {}, options.entry);
    await worker.waitFor('worker started', 60_000);
    await delay(500);
    const idle = worker.memory();
    const started = now();
    await rig.createRuns(businesses.map((b) => ({ businessId: b.id, leadIds: leads.get(b.id)!, concurrency: 1 })), { parallel: 8 });
    await rig.log.waitFor(() => rig.log.total >= runCount, 120_000, `${runCount} live calls`);
    const leaseAllMs = now() - started;
    let rss = 0;
    let peak = 0;
    for (let i = 0; i < 12; i++) {
      const m = worker.memory();
      if (m) {
        rss = Math.max(rss, m.rssMiB);
        peak = Math.max(peak, m.peakMiB);
      }
      await delay(250);
    }
    const leased = await rig.db
      .selectFrom('runs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('locked_by_worker', '=', 'mem:1')
      .where('status', '=', 'running')
      .executeTakeFirstOrThrow();
    let shutdown: MemoryResult['gracefulShutdown'];
    if (options.measureShutdown) {
      // SIGTERM: the product's graceful stop (halt drivers, hand every lease back).
      const t = now();
      worker.proc.kill('SIGTERM');
      const exited = await Promise.race([worker.exited.then(() => true), delay(60_000).then(() => false)]);
      const ms = now() - t;
      const stillLeased = await rig.db
        .selectFrom('runs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('locked_by_worker', '=', 'mem:1')
        .executeTakeFirstOrThrow();
      shutdown = { ms: round(ms, 0), exited, leasesNotHandedBack: Number(stillLeased.n) };
    }
    return {
      ...(shutdown && { gracefulShutdown: shutdown }),
      runs: runCount,
      runsLeasedByWorker: Number(leased.n),
      liveCalls: rig.sim.liveCalls,
      idleRssMiB: round(idle?.rssMiB ?? Number.NaN, 1),
      rssMiB: round(rss, 1),
      peakRssMiB: round(peak, 1),
      leaseAllMs: round(leaseAllMs, 0),
    };
  } finally {
    await rig.close();
  }
}
