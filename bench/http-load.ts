/**
 * The HTTP API benchmark's load generator (http-api.ts, measure 1), in a process of its own: the
 * client's own pauses (its garbage collection, the simulated carrier it would otherwise share a
 * thread with) must not count as the server's latency. As wrk or autocannon from a shell would be.
 *
 * Protocol (bench/http-load.js): "ready" on stdout once loaded; then one JSON {@link LoadSpec} a
 * line on stdin, answered by one JSON {@link LatencyResult} a line on stdout; it exits when stdin
 * ends. {@link LoadChild} is the parent's side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { percentile, round } from './stats.ts';

export interface LoadSpec {
  /** `autocannon`: overallRate over `connections`; `paced`: one request every 1000/rate ms, open loop. */
  tool: 'autocannon' | 'paced';
  url: string;
  token: string | null;
  seconds: number;
  connections: number;
  rate: number;
}

// ── autocannon, typed here (the package ships no types) ──────────────────────────────────────

interface AutocannonHistogram {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: AutocannonHistogram;
  requests: AutocannonHistogram & { total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}

interface AutocannonOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  overallRate?: number;
  duration?: number;
  amount?: number;
  timeout?: number;
  ignoreCoordinatedOmission?: boolean;
}

interface AutocannonTracker {
  on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): AutocannonTracker;
  stop(): void;
}

type Autocannon = (options: AutocannonOptions, done: (error: Error | null, result: AutocannonResult) => void) => AutocannonTracker;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface LatencyResult {
  /** `autocannon`: overallRate over `connections`; `paced`: this file's open-loop sender, one request every 1000/rate ms. */
  tool: 'autocannon' | 'paced';
  connections: number;
  targetRate: number;
  durationS: number;
  requests: number;
  achievedRate: number;
  /** Per-response times (ms), unrounded until here: autocannon's own (send to last byte), or the paced sender's. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** autocannon's own histogram (whole ms); null for the paced sender. */
  autocannon: { p50: number; p90: number; p99: number; max: number; average: number } | null;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Median time (ms) from the first to the last response within each 1 s window: ~1000 when evenly paced, less when bursty. */
  burstSpanMsMedian: number;
  /** Paced sender only: p99 of how late a request left against its schedule (ms); the sender's own jitter. */
  senderLagP99?: number;
  /** Proof that the run was dispatching: carrier dials and status callbacks (to the serve child) in the window. */
  dialsDuring?: number;
  callbacksDuring?: number;
  /** Share of the window during which some runnable task of the machine waited for a CPU (/proc/pressure/cpu "some"), in %. */
  cpuPressurePct?: number | null;
  /** The path measured (the run, or /healthz for the control). */
  path?: string;
  /** CPU time (user + system) of the serve child per request in the window, and of the worker child over the window (ms). */
  serveCpuMsPerRequest?: number | null;
  workerCpuMs?: number | null;
  /** The serve child's own view: Fastify's `responseTime` (onRequest to response sent) from its log lines; null when it does not log requests. */
  server?: { n: number; p50: number; p90: number; p99: number; p999: number; max: number } | null;
}

function summarise(
  tool: LatencyResult['tool'],
  rate: number,
  connections: number,
  durationS: number,
  times: readonly number[],
  responseAt: readonly number[],
  started: number,
  counts: { requests: number; errors: number; timeouts: number; non2xx: number; statusCodes: Record<string, number> },
): LatencyResult {
  const sorted = [...times].sort((a, b) => a - b);
  const windows = new Map<number, { first: number; last: number }>();
  for (const t of responseAt) {
    const w = Math.floor((t - started) / 1000);
    const win = windows.get(w);
    if (!win) windows.set(w, { first: t, last: t });
    else win.last = t;
  }
  const spans = [...windows.values()].map(({ first, last }) => last - first);
  return {
    tool,
    connections,
    targetRate: rate,
    durationS,
    requests: counts.requests,
    achievedRate: round(counts.requests / durationS, 1),
    p50: round(percentile(sorted, 50), 2),
    p90: round(percentile(sorted, 90), 2),
    p99: round(percentile(sorted, 99), 2),
    p999: round(percentile(sorted, 99.9), 2),
    max: round(sorted.at(-1) ?? Number.NaN, 2),
    mean: round(sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length), 2),
    autocannon: null,
    errors: counts.errors,
    timeouts: counts.timeouts,
    non2xx: counts.non2xx,
    statusCodes: counts.statusCodes,
    burstSpanMsMedian: round(percentile(spans, 50), 0),
  };
}

/** autocannon at `overallRate: rate` over `connections` for `seconds`. */
function loadAutocannon(url: string, token: string, seconds: number, connections: number, rate: number): Promise<LatencyResult> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    const at: number[] = [];
    const started = performance.now();
    // Bounded: autocannon stops itself after `duration`; this is the backstop.
    const backstop = setTimeout(() => tracker.stop(), (seconds + 15) * 1000);
    const tracker = autocannon(
      { url, headers: { authorization: `Bearer ${token}` }, connections, overallRate: rate, duration: seconds, timeout: 10, ignoreCoordinatedOmission: true },
      (error, result) => {
        clearTimeout(backstop);
        if (error) return reject(error);
        const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
        const summary = summarise('autocannon', rate, connections, result.duration, times, at, started, {
          requests: result.requests.total,
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          statusCodes,
        });
        summary.autocannon = { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, average: result.latency.average };
        resolve(summary);
      },
    );
    tracker.on('response', (_client, statusCode, _bytes, responseTime) => {
      // Only 2xx count toward latency (as autocannon's own histogram); errors are reported apart.
      if (statusCode >= 200 && statusCode < 300) times.push(responseTime);
      at.push(performance.now());
    });
  });
}

/**
 * The cross-check: an open-loop sender that starts one request every 1000/rate ms on schedule,
 * whatever the earlier ones are doing (keep-alive sockets, up to 64 in flight), so 500 req/s
 * arrive evenly rather than in autocannon's per-second bursts. Bounded: rate × seconds requests,
 * and a deadline of seconds + 15 s.
 */
function loadPaced(url: string, token: string | null, seconds: number, rate: number): Promise<LatencyResult> {
  const total = rate * seconds;
  const interval = 1000 / rate;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(url);
  const times: number[] = [];
  const at: number[] = [];
  const lags: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  let sent = 0;
  let done = 0;
  return new Promise((resolve) => {
    const started = performance.now();
    const deadline = setTimeout(() => finish(), (seconds + 15) * 1000);
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(deadline);
      clearTimeout(timer);
      agent.destroy();
      const durationS = (performance.now() - started) / 1000;
      const result = summarise('paced', rate, 64, round(durationS, 2), times, at, started, { requests: done, errors, timeouts, non2xx, statusCodes });
      result.senderLagP99 = round(percentile(lags, 99), 2);
      resolve(result);
    };
    const one = (): void => {
      const t0 = performance.now();
      const request = http.request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'GET', agent, headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 10_000 },
        (response) => {
          response.resume();
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            statusCodes[status] = (statusCodes[status] ?? 0) + 1;
            if (status >= 200 && status < 300) times.push(performance.now() - t0);
            else non2xx++;
            at.push(performance.now());
            if (++done + errors >= total) finish();
          });
        },
      );
      request.on('timeout', () => {
        timeouts++;
        request.destroy(new Error('timeout'));
      });
      request.on('error', () => {
        errors++;
        if (done + errors >= total) finish();
      });
      request.end();
    };
    const tick = (): void => {
      const now = performance.now();
      // Every request whose slot has come (catching up after a late timer), then sleep to the next slot.
      while (sent < total && started + sent * interval <= now) {
        lags.push(now - (started + sent * interval));
        sent++;
        one();
      }
      if (sent < total) timer = setTimeout(tick, Math.max(0, started + sent * interval - performance.now()));
    };
    tick();
  });
}

/** Runs one load shape here, in this process. */
export function runLoad(spec: LoadSpec): Promise<LatencyResult> {
  if (spec.tool === 'paced') return loadPaced(spec.url, spec.token, spec.seconds, spec.rate);
  if (!spec.token) throw new Error('autocannon load needs a token');
  return loadAutocannon(spec.url, spec.token, spec.seconds, spec.connections, spec.rate);
}

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'http-load.js');

/** The parent's side: one load-generator process for every window of a bench. */
export class LoadChild {
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly proc: ChildProcess) {
    this.lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }

  /** Starts the process and waits for its "ready" (bounded). */
  static async start(timeoutMs = 45_000): Promise<LoadChild> {
    const proc = spawn(process.execPath, [ENTRY], { stdio: ['pipe', 'pipe', 'inherit'] });
    const child = new LoadChild(proc);
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    try {
      const first = await child.lines.next();
      if (first.done || first.value !== 'ready') throw new Error(`the load generator did not start (got ${JSON.stringify(first.value)})`);
    } finally {
      clearTimeout(timer);
    }
    return child;
  }

  /** One window: bounded by the spec's duration plus the load's own deadline. */
  async run(spec: LoadSpec): Promise<LatencyResult> {
    this.proc.stdin!.write(`${JSON.stringify(spec)}\n`);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), (spec.seconds + 30) * 1000);
    try {
      const line = await this.lines.next();
      if (line.done) throw new Error('the load generator exited');
      return JSON.parse(line.value) as LatencyResult;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

// Set by bench/http-load.js: this module is the child's main.
if (process.env.OCQ_BENCH_LOAD_CHILD === '1') {
  process.stdout.write('ready\n');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const result = await runLoad(JSON.parse(line) as LoadSpec);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}
