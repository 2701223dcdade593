/**
 * The HTTP API benchmark of issue 5 ("Benchmark"), against real `ocq` processes on PostgreSQL:
 *
 * 1. `GET /api/outbound/runs/:id` latency at 500 requests/s for 10 s, sent to a
 *    `node bin/ocq.js serve` child WHILE a run is dispatching: a `node bin/ocq.js worker` child
 *    dials a 2,000-lead run at the business cap (10 live calls) through the simulated carrier (in
 *    this process; ring 1–3 s, talk 2–5 s), whose status callbacks go to the same serve child
 *    (PUBLIC_URL is the serve child's own URL). Target: p99 < 10 ms. Four 10 s windows: autocannon
 *    (`overallRate`, 10 connections), autocannon over 1 connection, an evenly paced open-loop
 *    sender (the headline row: 500 requests/s as the target states them), and that sender on
 *    `/healthz` (no token, no database: the control that tells the route's own cost from the
 *    machine's). Each window also records the serve child's own timings (Fastify `responseTime`
 *    from its log), its CPU per request, and the machine's CPU pressure (PSI).
 * 2. Creating a run of 100,000 jobs: 100,000 leads imported first (store `upsertLeads`), then one
 *    `POST /api/outbound/runs {all_leads: true}` to the serve child, still while dispatching; and,
 *    separately, the store's `createRun` for the same size in this process on a fresh business
 *    (best of 2). Target: < 2 s. Then, with the children gone, where the INSERT of the jobs spends
 *    its time (EXPLAIN ANALYZE in a rolled-back transaction: FK checks, the counter trigger, and
 *    index maintenance measured as the difference against copies of `jobs` with and without its
 *    indexes).
 *
 * Everything runs on a scratch database (copied from a migrated template, dropped at the end, also
 * on failure) of the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), and
 * Redis at REDIS_URL. The children's logs go to .tmp/bench-http-api-{serve,worker}.log; the
 * figures to .tmp/bench-http-api.json.
 *
 *   npx tsx bench/http-api.ts               # both measures
 *   npx tsx bench/http-api.ts --get-only    # measure 1 only (the GET latency windows), ~1 min
 *
 * OCQ_BENCH_API_SERVE_CPU_PROF=<dir> runs the serve child under `node --cpu-prof` (the profile is
 * written to <dir> when it exits on SIGTERM after the measures).
 *
 * The load comes from a process of its own (bench/http-load.ts), started once for all windows, so
 * neither this process's garbage collection nor the simulated carrier counts as server latency.
 *
 * Notes on the load: autocannon's rate limit is a per-connection quota per 1 s window (each of the
 * `connections` sends its share back to back, then waits for the next window), so the 500 req/s
 * arrive as bursts of `connections` concurrent requests; its coordinated-omission correction uses
 * `ceil(1 / rate)` = 1 ms as the expected interval (a unit slip: it should be 1000 / rate ms) and
 * would add synthetic samples, so it is turned off and the latencies are autocannon's own
 * per-response times, kept unrounded. The serve child runs with `OCQ_RATE_LIMIT_PER_MINUTE` at
 * its maximum: the default (600 per token per minute) would answer 429 after the first second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createBusiness, createToken, createUser } from '../src/admin/service.ts';
import { silentLogger } from '../src/logger.ts';
import { createCallSlots } from '../src/slots/index.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { newId } from '../src/store/ids.ts';
import { upsertLeads, type LeadUpsertRow } from '../src/store/leads.ts';
import { createRun } from '../src/store/runs.ts';
import { createCarrierSim, type CarrierSim } from '../src/telephony/carrier-sim/index.ts';
import { ACCOUNT_SID, AUTH_TOKEN, delay, freePort, REDIS_URL, ROOT, ScratchDatabases } from './engine-rig.ts';
import { LoadChild, type LatencyResult, type LoadSpec } from './http-load.ts';
import { formatTable, type Row } from './report.ts';
import { percentile, round } from './stats.ts';

// ── settings ─────────────────────────────────────────────────────────────────────────────────

const RATE = 500;
const MEASURE_SECONDS = 10;
const WARMUP_SECONDS = 2;
/** Client connections sharing the 500 req/s in the headline measure: autocannon's default (OCQ_BENCH_API_CONNECTIONS overrides). */
const CONNECTIONS = Number(process.env.OCQ_BENCH_API_CONNECTIONS ?? 10);
/** The serve child's log level: the product default (OCQ_BENCH_API_SERVE_LOG_LEVEL overrides, for experiments). */
const SERVE_LOG_LEVEL = process.env.OCQ_BENCH_API_SERVE_LOG_LEVEL ?? 'info';
const DISPATCH_LEADS = 2_000;
const DISPATCH_CAP = 10;
const RUN_JOBS = 100_000;
const P99_TARGET_MS = 10;
const CREATE_TARGET_MS = 2_000;
/** Every wait is bounded by these. */
const CHILD_START_TIMEOUT_MS = 45_000;
const DISPATCH_START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 60_000;

const RUN_COUNTER_FIELDS = new Set(['status', 'total', 'queued', 'in_progress', 'completed', 'no_answer', 'busy', 'failed', 'cursor_position']);

const OUT_JSON = path.join(ROOT, '.tmp', 'bench-http-api.json');
const LOG_DIR = path.join(ROOT, '.tmp');

// ── child processes: `node bin/ocq.js serve|worker` ──────────────────────────────────────────

const liveChildren = new Set<OcqChild>();

/** One `ocq` child, logging to a file (not a pipe: this process is the load generator and must not parse 1,000 log lines/s). */
class OcqChild {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | string>;
  readonly logFile: string;

  constructor(readonly command: 'serve' | 'worker', env: NodeJS.ProcessEnv) {
    this.logFile = path.join(LOG_DIR, `bench-http-api-${command}.log`);
    const fd = fs.openSync(this.logFile, 'w');
    try {
      const profileDir = command === 'serve' ? process.env.OCQ_BENCH_API_SERVE_CPU_PROF : undefined;
      const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)] : [];
      this.proc = spawn(process.execPath, [...nodeArgs, 'bin/ocq.js', command], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => {
        liveChildren.delete(this);
        resolve(code ?? signal ?? 'unknown');
      }),
    );
    liveChildren.add(this);
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Resolves when the log contains `text` (checked every 100 ms); rejects on exit or after `timeoutMs`. */
  async waitForLog(text: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.log().includes(text)) return;
      if (!this.alive) throw new Error(`ocq ${this.command} exited before "${text}":\n${this.log().slice(-3000)}`);
      await delay(100);
    }
    throw new Error(`ocq ${this.command} did not log "${text}" in ${timeoutMs} ms:\n${this.log().slice(-3000)}`);
  }

  /** `signal`, then SIGKILL if still alive after `graceMs`; by this child's own pid only. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => {
      if (this.alive) this.proc.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Interrupted (Ctrl-C): SIGKILL our own children by pid. */
function killChildrenNow(): void {
  for (const child of liveChildren) if (child.alive) child.proc.kill('SIGKILL');
}

// ── data ─────────────────────────────────────────────────────────────────────────────────────

let phoneSeq = 0;

function leadRows(count: number): LeadUpsertRow[] {
  return Array.from({ length: count }, (_, i) => ({
    id: newId(),
    phoneE164: `+9725${String(++phoneSeq).padStart(8, '0')}`,
    name: `Lead ${i}`,
    externalId: null,
    attributesJson: '{}',
  }));
}

interface Tenant {
  businessId: string;
  token: string;
}

let callerSeq = 0;

async function tenant(store: Store, name: string, maxConcurrentCalls: number): Promise<Tenant> {
  const business = await createBusiness(store.db, { name, max_concurrent_calls: maxConcurrentCalls, caller_id: `+9723${String(++callerSeq).padStart(8, '0')}` });
  const user = await createUser(store.db, { businessId: business.id, email: `bench-${callerSeq}@example.com`, role: 'agent' });
  const { token } = await createToken(store.db, { userId: user.id });
  return { businessId: business.id, token };
}

async function postRun(base: string, token: string, body: Record<string, unknown>): Promise<{ ms: number; run: { id: string; total: number } }> {
  const started = performance.now();
  const response = await fetch(`${base}/api/outbound/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 201) throw new Error(`POST /api/outbound/runs answered ${response.status}: ${text.slice(0, 500)}`);
  return { ms, run: JSON.parse(text) as { id: string; total: number } };
}

async function waitHealthy(base: string, child: OcqChild): Promise<void> {
  const deadline = performance.now() + CHILD_START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (!child.alive) throw new Error(`ocq serve exited at start:\n${child.log().slice(-3000)}`);
    try {
      const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  throw new Error(`ocq serve not ready in ${CHILD_START_TIMEOUT_MS} ms:\n${child.log().slice(-3000)}`);
}

// ── measure 1: GET /api/outbound/runs/:id at 500 req/s ───────────────────────────────────────


/** Server-side times of the GETs of `pathPrefix` that completed in [fromMs, toMs] (epoch ms), from the serve child's pino log. */
function serverSideTimes(logFile: string, pathPrefix: string, fromMs: number, toMs: number): LatencyResult['server'] {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return null;
  }
  const urls = new Map<string, string>();
  const times: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"reqId"')) continue;
    let entry: { reqId?: string; time?: string; msg?: string; req?: { method?: string; url?: string }; responseTime?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (!entry.reqId) continue;
    if (entry.msg === 'incoming request' && entry.req?.method === 'GET' && entry.req.url) urls.set(entry.reqId, entry.req.url);
    else if (entry.msg === 'request completed' && entry.responseTime !== undefined && entry.time) {
      // One line per request (the request on the completion line), or Fastify's default two.
      const url = entry.req ? (entry.req.method === 'GET' ? entry.req.url : undefined) : urls.get(entry.reqId);
      urls.delete(entry.reqId);
      const at = Date.parse(entry.time);
      if (url?.startsWith(pathPrefix) && at >= fromMs && at <= toMs) times.push(entry.responseTime);
    }
  }
  if (times.length === 0) return null;
  const sorted = times.sort((x, y) => x - y);
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50), 2),
    p90: round(percentile(sorted, 90), 2),
    p99: round(percentile(sorted, 99), 2),
    p999: round(percentile(sorted, 99.9), 2),
    max: round(sorted.at(-1) ?? Number.NaN, 2),
  };
}

/** CPU time (user + system, ms) a process has used, from /proc/<pid>/stat; null when unreadable. */
function cpuMsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

/** Microseconds some task has waited for a CPU since boot (PSI), or null where PSI is absent. */
function cpuPressureMicros(): number | null {
  try {
    const match = /^some .*total=(\d+)/m.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

// ── measure 2 diagnosis: where the INSERT of 100,000 jobs spends its time ─────────────────────

export interface InsertDiagnosis {
  jobs: number;
  /** Same INSERT ... SELECT into a copy of jobs with no index, constraint or trigger (ms). */
  plainCopyMs: number;
  /** Into a copy with jobs's indexes and CHECKs (LIKE jobs INCLUDING ALL), no FK, no trigger (ms). */
  indexedCopyMs: number;
  /** The real statement under EXPLAIN ANALYZE (ms): execution time, and per trigger. */
  realMs: number;
  /** Per trigger; `constraint` names the FK an RI trigger checks. */
  triggers: Array<{ name: string; constraint: string | null; ms: number; calls: number }>;
  /** Derived: indexedCopy − plainCopy. */
  indexMaintenanceMs: number;
  /** Sum of the RI_ConstraintTrigger times (the two composite FKs, one check per row each). */
  fkChecksMs: number;
  /** The statement-level counter trigger (jobs_counters_insert). */
  counterTriggerMs: number;
  /** Derived: real − indexedCopy − FK − counters (the run row, EXPLAIN's own overhead, noise). */
  otherMs: number;
  /** WAL written by the real INSERT (EXPLAIN's WAL option), MiB. */
  walMiB: number | null;
  /** For comparison with the per-row FK checks: one set-based `SELECT ... FOR KEY SHARE` of 100,000 leads (ms; another business's leads). */
  setBasedLeadLockMs: number | null;
  /** jobs's indexes, and whether a new (queued) job puts an entry in each (size of the copy's index after the insert > one page). */
  indexes: Array<{ name: string; definition: string; takesNewJobs: boolean }>;
}

const JOBS_SELECT = (runId: string, businessId: string): string => `
  SELECT '${runId}'::uuid, l.business_id, l.id, (row_number() OVER (ORDER BY l.id) - 1)::int, l.phone_e164
    FROM leads l WHERE l.business_id = '${businessId}'::uuid
    LIMIT ${RUN_JOBS + 1}`;

async function diagnoseInsert(databaseUrl: string, businessId: string, otherBusinessId: string): Promise<InsertDiagnosis> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const timed = async (text: string): Promise<number> => {
    const started = performance.now();
    await client.query(text);
    return performance.now() - started;
  };
  try {
    await client.query(`SET statement_timeout = '60s'`);
    await client.query(`SELECT count(*) FROM leads WHERE business_id = $1`, [businessId]);
    await client.query('BEGIN');
    try {
      const cols = '(run_id, business_id, lead_id, position, phone_e164)';
      await client.query(`CREATE TABLE bench_jobs_plain (LIKE jobs INCLUDING DEFAULTS)`);
      await client.query(`CREATE TABLE bench_jobs_indexed (LIKE jobs INCLUDING ALL)`);
      const plainCopyMs = await timed(`INSERT INTO bench_jobs_plain ${cols} ${JOBS_SELECT(newId(), businessId)}`);
      const indexedCopyMs = await timed(`INSERT INTO bench_jobs_indexed ${cols} ${JOBS_SELECT(newId(), businessId)}`);
      const runId = newId();
      await client.query(`INSERT INTO runs (id, business_id, name, concurrency) VALUES ($1, $2, 'diagnosis', 1)`, [runId, businessId]);
      const explained = await client.query<{
        'QUERY PLAN': Array<{ 'Execution Time': number; Plan?: { 'WAL Bytes'?: number }; Triggers?: Array<{ 'Trigger Name': string; Relation: string; Time: number; Calls: number }> }>;
      }>(
        `EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON)
         WITH ins AS (INSERT INTO jobs ${cols} ${JOBS_SELECT(runId, businessId)} RETURNING 1)
         SELECT count(*)::int FROM ins`,
      );
      const plan = explained.rows[0]?.['QUERY PLAN'][0];
      if (!plan) throw new Error('EXPLAIN returned no plan');
      const constraints = await client.query<{ tgname: string; conname: string }>(
        `SELECT t.tgname, c.conname FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint WHERE t.tgrelid = 'jobs'::regclass`,
      );
      const constraintOf = new Map(constraints.rows.map((r) => [r.tgname, r.conname]));
      const triggers = (plan.Triggers ?? []).map((t) => ({ name: t['Trigger Name'], constraint: constraintOf.get(t['Trigger Name']) ?? null, ms: round(t.Time, 1), calls: t.Calls }));
      let setBasedLeadLockMs: number | null = null;
      if (otherBusinessId) {
        setBasedLeadLockMs = round(await timed(`SELECT count(*) FROM (SELECT 1 FROM leads WHERE business_id = '${otherBusinessId}'::uuid FOR KEY SHARE) s`), 0);
      }
      const sizes = await client.query<{ def: string; bytes: string }>(
        `SELECT pg_get_indexdef(indexrelid) AS def, pg_relation_size(indexrelid)::text AS bytes FROM pg_index WHERE indrelid = 'bench_jobs_indexed'::regclass`,
      );
      const definitions = await client.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' ORDER BY indexname`);
      const shape = (def: string): string => def.replace(/^.*USING btree /, '');
      const populated = new Map(sizes.rows.map((r) => [shape(r.def), Number(r.bytes) > 8192]));
      const fkChecksMs = triggers.filter((t) => t.name.startsWith('RI_ConstraintTrigger')).reduce((sum, t) => sum + t.ms, 0);
      const counterTriggerMs = triggers.filter((t) => t.name === 'jobs_counters_insert').reduce((sum, t) => sum + t.ms, 0);
      const realMs = plan['Execution Time'];
      return {
        jobs: RUN_JOBS,
        plainCopyMs: round(plainCopyMs, 0),
        indexedCopyMs: round(indexedCopyMs, 0),
        realMs: round(realMs, 0),
        triggers,
        indexMaintenanceMs: round(indexedCopyMs - plainCopyMs, 0),
        fkChecksMs: round(fkChecksMs, 0),
        counterTriggerMs: round(counterTriggerMs, 0),
        otherMs: round(realMs - indexedCopyMs - fkChecksMs - counterTriggerMs, 0),
        setBasedLeadLockMs,
        walMiB: plan.Plan?.['WAL Bytes'] === undefined ? null : round(plan.Plan['WAL Bytes'] / 1024 / 1024, 1),
        indexes: definitions.rows.map((r) => ({ name: r.indexname, definition: shape(r.indexdef), takesNewJobs: populated.get(shape(r.indexdef)) ?? false })),
      };
    } finally {
      await client.query('ROLLBACK');
    }
  } finally {
    await client.end();
  }
}

// ── the bench ────────────────────────────────────────────────────────────────────────────────

export interface HttpApiBenchResult {
  at: string;
  machine: { cpus: number; node: string };
  /** 1-minute load average of the machine (shared with other sessions) at the start and after the latency measures. */
  loadAverage: { start: number; afterLatency: number };
  settings: { rate: number; measureSeconds: number; warmupSeconds: number; connections: number; serveLogLevel: string; dispatchLeads: number; dispatchCap: number; runJobs: number };
  /** The headline (autocannon, `connections`), then autocannon over 1 connection, the evenly paced sender, and the paced control on /healthz. */
  latency: LatencyResult[];
  warmup: Pick<LatencyResult, 'requests' | 'achievedRate' | 'p50' | 'p99' | 'non2xx' | 'errors'>;
  /** The dispatching run after the latency measures. */
  dispatch: { callbacksNot2xx: number; liveCallsAtEnd: number; runCounters: Record<string, unknown> | null };
  /** Null with `getOnly`. */
  createRun: {
    leadImportMs: number;
    httpPostMs: number;
    httpTotalJobs: number;
    storeCreateRunMs: number[];
    storeCreateRunBestMs: number;
  } | null;
  diagnosis: InsertDiagnosis | null;
  totalSeconds: number;
}

let lastResult: HttpApiBenchResult | undefined;

/** The figures of the last {@link runHttpApiBench} (for the standalone printout). */
export function lastHttpApiResult(): HttpApiBenchResult | undefined {
  return lastResult;
}

export interface HttpApiBenchOptions {
  /** Measure 1 only (the GET latency windows); no run of 100,000 jobs. */
  getOnly?: boolean;
}

async function measure(options: HttpApiBenchOptions): Promise<HttpApiBenchResult> {
  const benchStarted = performance.now();
  const loadStart = os.loadavg()[0] ?? Number.NaN;
  const dbs = new ScratchDatabases();
  const children: OcqChild[] = [];
  let sim: CarrierSim | undefined;
  let store: Store | undefined;
  const onSignal = (): void => {
    // Interrupted: the children go at once (by pid), then the scratch databases, within 5 s.
    killChildrenNow();
    setTimeout(() => process.exit(130), 5_000).unref();
    void dbs.dropAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const { url: databaseUrl } = await dbs.create();
    store = await openStore({ databaseUrl, poolSize: 4 });

    // The carrier, in this process: status callbacks go to the serve child.
    sim = createCarrierSim({
      accounts: [{ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }],
      script: { ringMs: [1_000, 3_000], talkMs: [2_000, 5_000] },
    });
    const carrierUrl = await sim.listen();
    let dials = 0;
    let callbacks = 0;
    let callbacksNot2xx = 0;
    sim.on('call-created', () => void dials++);
    sim.on('callback', (entry) => {
      callbacks++;
      if (entry.outcome !== 'delivered' || (entry.httpStatus !== undefined && (entry.httpStatus < 200 || entry.httpStatus >= 300))) callbacksNot2xx++;
    });

    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      HOST: '127.0.0.1',
      PORT: String(port),
      // The serve child's own URL: the worker signs callbacks for it, the carrier calls it back.
      PUBLIC_URL: base,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_BASE_URL: carrierUrl,
      OCQ_LOG_LEVEL: 'info',
      ...extra,
    });
    const serve = new OcqChild('serve', env({ OCQ_RATE_LIMIT_PER_MINUTE: '1000000', OCQ_LOG_LEVEL: SERVE_LOG_LEVEL }));
    children.push(serve);
    const worker = new OcqChild('worker', env({ OCQ_WORKER_ID: 'bench-http-api-worker' }));
    children.push(worker);

    const a = await tenant(store, 'Bench dispatch', DISPATCH_CAP);
    await upsertLeads(store.db, a.businessId, leadRows(DISPATCH_LEADS));
    await Promise.all([waitHealthy(base, serve), worker.waitForLog('worker started', CHILD_START_TIMEOUT_MS)]);
    process.stderr.write(`[bench] http-api: serve and worker up after ${((performance.now() - benchStarted) / 1000).toFixed(1)} s\n`);

    // The dispatching run, created over HTTP like a tenant would.
    const { run: runA } = await postRun(base, a.token, { all_leads: true, concurrency: DISPATCH_CAP, name: 'dispatching' });
    const deadline = performance.now() + DISPATCH_START_TIMEOUT_MS;
    while (dials < DISPATCH_CAP && performance.now() < deadline) await delay(50);
    if (dials < DISPATCH_CAP) throw new Error(`the run did not reach ${DISPATCH_CAP} dials in ${DISPATCH_START_TIMEOUT_MS} ms (dials: ${dials}):\n${worker.log().slice(-3000)}`);

    // 1. GET /api/outbound/runs/:id at 500 req/s: warm-up, then three load shapes of MEASURE_SECONDS each.
    const getUrl = `${base}/api/outbound/runs/${runA.id}`;
    process.stderr.write(
      `[bench] http-api: GET /api/outbound/runs/:id at ${RATE} req/s: ${WARMUP_SECONDS} s warm-up, then ${MEASURE_SECONDS} s each of autocannon ` +
        `(${CONNECTIONS} connections), autocannon (1 connection), evenly paced; then evenly paced on /healthz (control) ...\n`,
    );
    const load = await LoadChild.start();
    const spec = (tool: LoadSpec['tool'], url: string, token: string | null, seconds: number, connections: number): LoadSpec => ({ tool, url, token, seconds, connections, rate: RATE });
    const warm = await load.run(spec('autocannon', getUrl, a.token, WARMUP_SECONDS, CONNECTIONS));
    const latency: LatencyResult[] = [];
    const windows: Array<{ result: LatencyResult; prefix: string; from: number; to: number }> = [];
    const window = async (path: string, run: () => Promise<LatencyResult>): Promise<void> => {
      const dials0 = dials;
      const callbacks0 = callbacks;
      const pressure0 = cpuPressureMicros();
      const serveCpu0 = cpuMsOf(serve.proc.pid);
      const workerCpu0 = cpuMsOf(worker.proc.pid);
      const from = Date.now();
      const result = await run();
      const to = Date.now();
      const pressure1 = cpuPressureMicros();
      const serveCpu1 = cpuMsOf(serve.proc.pid);
      const workerCpu1 = cpuMsOf(worker.proc.pid);
      const serveCpuMsPerRequest = serveCpu0 === null || serveCpu1 === null ? null : round((serveCpu1 - serveCpu0) / Math.max(1, result.requests), 3);
      const workerCpuMs = workerCpu0 === null || workerCpu1 === null ? null : round(workerCpu1 - workerCpu0, 0);
      const cpuPressurePct = pressure0 === null || pressure1 === null ? null : round(((pressure1 - pressure0) / 1000 / (result.durationS * 1000)) * 100, 1);
      const measured: LatencyResult = { ...result, path, dialsDuring: dials - dials0, callbacksDuring: callbacks - callbacks0, cpuPressurePct, serveCpuMsPerRequest, workerCpuMs };
      latency.push(measured);
      windows.push({ result: measured, prefix: path === '/healthz' ? '/healthz' : `/api/outbound/runs/${runA.id}`, from, to });
    };
    const runPath = '/api/outbound/runs/:id';
    try {
      await window(runPath, () => load.run(spec('autocannon', getUrl, a.token, MEASURE_SECONDS, CONNECTIONS)));
      if (CONNECTIONS !== 1) await window(runPath, () => load.run(spec('autocannon', getUrl, a.token, MEASURE_SECONDS, 1)));
      await window(runPath, () => load.run(spec('paced', getUrl, a.token, MEASURE_SECONDS, 64)));
      // The control: the same paced load on a route with no token look-up and no database, on the same process.
      await window('/healthz', () => load.run(spec('paced', `${base}/healthz`, null, MEASURE_SECONDS, 64)));
    } finally {
      load.close();
    }
    const loadAfterLatency = os.loadavg()[0] ?? Number.NaN;
    // Give pino a moment to flush, then read the serve child's own timings of each window.
    await delay(200);
    for (const w of windows) w.result.server = serverSideTimes(serve.logFile, w.prefix, w.from, w.to);
    const runNow = await fetch(getUrl, { headers: { authorization: `Bearer ${a.token}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const runCounters = runNow.ok ? ((await runNow.json()) as Record<string, unknown>) : null;
    const counters = runCounters
      ? Object.fromEntries(Object.entries(runCounters).filter(([k]) => RUN_COUNTER_FIELDS.has(k)))
      : null;
    const liveCallsAtEnd = (await store.db.selectFrom('businesses').select('live_calls').where('id', '=', a.businessId).executeTakeFirst())?.live_calls ?? -1;

    let createRunResult: HttpApiBenchResult['createRun'] = null;
    let diagnosis: InsertDiagnosis | null = null;
    if (options.getOnly) {
      await worker.stop('SIGKILL');
      await serve.stop('SIGTERM');
    } else {
      ({ createRun: createRunResult, diagnosis } = await measureCreateRun(databaseUrl, store, base, serve, worker));
    }
    await releaseSlots(store);
    await sim.close();
    sim = undefined;

    const result: HttpApiBenchResult = {
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, node: process.version },
      loadAverage: { start: round(loadStart, 2), afterLatency: round(loadAfterLatency, 2) },
      settings: { rate: RATE, measureSeconds: MEASURE_SECONDS, warmupSeconds: WARMUP_SECONDS, connections: CONNECTIONS, serveLogLevel: SERVE_LOG_LEVEL, dispatchLeads: DISPATCH_LEADS, dispatchCap: DISPATCH_CAP, runJobs: RUN_JOBS },
      latency,
      warmup: { requests: warm.requests, achievedRate: warm.achievedRate, p50: warm.p50, p99: warm.p99, non2xx: warm.non2xx, errors: warm.errors },
      dispatch: { callbacksNot2xx, liveCallsAtEnd, runCounters: counters },
      createRun: createRunResult,
      diagnosis,
      totalSeconds: round((performance.now() - benchStarted) / 1000, 1),
    };
    fs.writeFileSync(OUT_JSON, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    for (const child of children) await child.stop('SIGKILL').catch(() => undefined);
    if (store) await releaseSlots(store).catch(() => undefined);
    await sim?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await dbs.dropAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Measure 2: a run of 100,000 jobs over HTTP, still while dispatching, then in-process; then the
 * children go and the INSERT is diagnosed on a quiet server.
 */
async function measureCreateRun(
  databaseUrl: string,
  store: Store,
  base: string,
  serve: OcqChild,
  worker: OcqChild,
): Promise<{ createRun: NonNullable<HttpApiBenchResult['createRun']>; diagnosis: InsertDiagnosis | null }> {
  // 2. A run of 100,000 jobs over HTTP, still while dispatching. Business cap 1: once created,
  //    the worker dials it at one call at a time, which adds little to the load.
  process.stderr.write(`[bench] http-api: creating a run of ${RUN_JOBS} jobs over HTTP and in-process ...\n`);
  const b = await tenant(store, 'Bench big run', 1);
  const importStarted = performance.now();
  await upsertLeads(store.db, b.businessId, leadRows(RUN_JOBS));
  const leadImportMs = performance.now() - importStarted;
  const posted = await postRun(base, b.token, { all_leads: true, name: '100k' });
  if (posted.run.total !== RUN_JOBS) throw new Error(`POST created ${posted.run.total} jobs, expected ${RUN_JOBS}`);

  //    The store's createRun in this process, same size, fresh business, best of 2.
  const c = await tenant(store, 'Bench createRun', 1);
  await upsertLeads(store.db, c.businessId, leadRows(RUN_JOBS));
  const storeTimes: number[] = [];
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    const run = await createRun(store.db, { businessId: c.businessId, createdByUserId: null, name: `store ${i}`, concurrency: 1, leads: { all: true } });
    storeTimes.push(performance.now() - started);
    if (run.total_jobs !== RUN_JOBS) throw new Error(`createRun created ${run.total_jobs} jobs, expected ${RUN_JOBS}`);
  }

  // The measurements are over: the children go (the worker at once), then the diagnosis runs on a quiet server.
  await worker.stop('SIGKILL');
  await serve.stop('SIGTERM');

  let diagnosis: InsertDiagnosis | null = null;
  try {
    diagnosis = await diagnoseInsert(databaseUrl, c.businessId, b.businessId);
  } catch (error) {
    process.stderr.write(`[bench] http-api: diagnosis failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return {
    createRun: {
      leadImportMs: round(leadImportMs, 0),
      httpPostMs: round(posted.ms, 0),
      httpTotalJobs: posted.run.total,
      storeCreateRunMs: storeTimes.map((t) => round(t, 0)),
      storeCreateRunBestMs: round(Math.min(...storeTimes), 0),
    },
    diagnosis,
  };
}

/** Frees the Redis slots still held by live attempts of this database (a killed worker leaves them until their TTL). */
async function releaseSlots(store: Store): Promise<void> {
  const live = await store.db
    .selectFrom('jobs')
    .select(['business_id', 'attempt_id'])
    .where('attempt_id', 'is not', null)
    .where('status', 'in', ['dialing', 'ringing', 'in_call'])
    .execute();
  if (live.length === 0) return;
  const slots = createCallSlots({ redisUrl: REDIS_URL, logger: silentLogger });
  try {
    for (const job of live) await slots.release(job.business_id, job.attempt_id!).catch(() => false);
  } finally {
    await slots.close().catch(() => undefined);
  }
}

function diagnosisNote(d: InsertDiagnosis | null): string {
  if (!d) return '';
  const fk = d.triggers
    .filter((t) => t.name.startsWith('RI_ConstraintTrigger'))
    .map((t) => `${t.constraint ?? t.name} ${t.ms} ms/${t.calls} checks`)
    .join(' + ');
  const taking = d.indexes.filter((i) => i.takesNewJobs).length;
  return (
    `INSERT of ${d.jobs} jobs under EXPLAIN ANALYZE ${d.realMs} ms = heap insert ${d.plainCopyMs} ms + index maintenance ${d.indexMaintenanceMs} ms ` +
    `(${taking} of ${d.indexes.length} indexes take a new job) + FK checks ${d.fkChecksMs} ms (${fk}) + counter trigger ${d.counterTriggerMs} ms + other ${d.otherMs} ms; ` +
    `one set-based FOR KEY SHARE of ${d.jobs} leads takes ${d.setBasedLeadLockMs ?? '?'} ms; ${d.walMiB ?? '?'} MiB of WAL`
  );
}

function shapeName(l: LatencyResult): string {
  return l.tool === 'paced' ? 'evenly paced, open loop' : `autocannon, ${l.connections} conn, per-second bursts`;
}

function latencyNote(l: LatencyResult): string {
  const ac = l.autocannon ? ` (autocannon histogram, whole ms: p50 ${l.autocannon.p50}, p99 ${l.autocannon.p99})` : ` (sender lag p99 ${l.senderLagP99 ?? '?'} ms)`;
  const server = l.server ? `; server-side (Fastify responseTime) p50 ${l.server.p50} ms, p99 ${l.server.p99} ms, max ${l.server.max} ms` : '';
  return (
    `p50 ${l.p50} ms, p90 ${l.p90} ms, p99 ${l.p99} ms, p99.9 ${l.p999} ms, max ${l.max} ms${ac}${server}; ${l.requests} requests, ${l.achievedRate} req/s, ` +
    `errors ${l.errors}, non-2xx ${l.non2xx}; 500 requests answered within ${l.burstSpanMsMedian} ms of each second (median); ` +
    `${l.dialsDuring ?? '?'} dials and ${l.callbacksDuring ?? '?'} status callbacks in the window; ` +
    `CPU pressure (some task waiting for a CPU) ${l.cpuPressurePct ?? '?'}% of the window; serve CPU ${l.serveCpuMsPerRequest ?? '?'} ms per request`
  );
}

/** The HTTP API measures of issue 5 as table rows; figures also in .tmp/bench-http-api.json. */
export async function runHttpApiBench(options: HttpApiBenchOptions = {}): Promise<Row[]> {
  const r = await measure(options);
  lastResult = r;
  // The headline is the evenly paced sender: 500 requests/s as the target states them, open loop
  // (no coordinated omission). autocannon's rate limit sends each second's quota back to back
  // (500 requests within ~160 ms over 10 connections): its rows follow, with the same target.
  const head = r.latency.find((l) => l.tool === 'paced' && l.path !== '/healthz') ?? r.latency[0];
  if (!head) throw new Error('no latency measured');
  const others = r.latency.filter((l) => l !== head);
  const get = `GET /api/outbound/runs/:id at ${r.settings.rate} req/s while dispatching`;
  const latencyRows: Row[] = [
    { measure: `${get}: p99 (${shapeName(head)})`, unit: 'ms', ocq: head.p99, baseline: null, target: `< ${P99_TARGET_MS} ms`, pass: head.p99 < P99_TARGET_MS, note: latencyNote(head) },
    { measure: `${get}: p50 (${shapeName(head)})`, unit: 'ms', ocq: head.p50, baseline: null, target: '', pass: null },
    { measure: `${get}: achieved rate (${shapeName(head)})`, unit: 'req/s', ocq: head.achievedRate, baseline: null, target: `≈ ${r.settings.rate} req/s`, pass: head.achievedRate >= r.settings.rate * 0.95 },
    {
      measure: `${get}: errors + non-2xx (all shapes)`,
      unit: '',
      ocq: r.latency.filter((l) => l.path !== '/healthz').reduce((n, l) => n + l.errors + l.non2xx, 0),
      baseline: null,
      target: '0',
      pass: r.latency.filter((l) => l.path !== '/healthz').every((l) => l.errors + l.non2xx === 0),
    },
    ...others.map((l): Row =>
      l.path === '/healthz'
        ? { measure: `control: GET /healthz (no token, no database) at ${r.settings.rate} req/s: p99 (${shapeName(l)})`, unit: 'ms', ocq: l.p99, baseline: null, target: '', pass: null, note: latencyNote(l) }
        : { measure: `${get}: p99 (${shapeName(l)})`, unit: 'ms', ocq: l.p99, baseline: null, target: `< ${P99_TARGET_MS} ms`, pass: l.p99 < P99_TARGET_MS, note: latencyNote(l) },
    ),
  ];
  const created = r.createRun;
  if (!created) return latencyRows;
  const diag = diagnosisNote(r.diagnosis);
  const httpPass = created.httpPostMs < CREATE_TARGET_MS;
  const storePass = created.storeCreateRunBestMs < CREATE_TARGET_MS;
  return [
    ...latencyRows,
    {
      measure: `create a run of ${RUN_JOBS.toLocaleString('en')} jobs: POST /api/outbound/runs {all_leads} (while dispatching)`,
      unit: 'ms',
      ocq: created.httpPostMs,
      baseline: null,
      target: `< ${CREATE_TARGET_MS} ms`,
      pass: httpPass,
      note: !httpPass && diag ? diag : undefined,
    },
    {
      measure: `create a run of ${RUN_JOBS.toLocaleString('en')} jobs: store createRun in-process (best of 2)`,
      unit: 'ms',
      ocq: created.storeCreateRunBestMs,
      baseline: null,
      target: `< ${CREATE_TARGET_MS} ms`,
      pass: storePass,
      note: `rounds ${created.storeCreateRunMs.join(', ')} ms${!storePass && diag && httpPass ? `; ${diag}` : ''}`,
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await runHttpApiBench({ getOnly: process.argv.includes('--get-only') });
  console.log(formatTable(rows));
  const r = lastHttpApiResult();
  if (r?.diagnosis) {
    const d = r.diagnosis;
    console.log(`\nrun-creation INSERT (${d.jobs} jobs, quiet server, rolled back): ${diagnosisNote(d)}`);
    for (const t of d.triggers) console.log(`  trigger ${t.name}${t.constraint ? ` (${t.constraint})` : ''}: ${t.ms} ms, ${t.calls} calls`);
    for (const i of d.indexes) console.log(`  index ${i.name} ${i.definition}: ${i.takesNewJobs ? 'takes every new job' : 'no entry for a new job'}`);
  }
  console.log(`\n(${r?.totalSeconds ?? '?'} s; figures in .tmp/bench-http-api.json)`);
  process.exit(0);
}
