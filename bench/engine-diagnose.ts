/**
 * Why the engine misses its targets: the experiments behind the diagnosis in the bench report.
 * Not part of `npm run bench` (about 3 minutes); run it on its own:
 *
 *   npx tsx bench/engine-diagnose.ts        → stdout, and .tmp/bench-engine-diagnose.json
 *
 * 1. SQL statements per dial, by statement (zero-length calls, 200 businesses, in-process), counted
 *    at the `pg` client: the dial path's database work.
 * 2. CPU per dial in each process (this one: carrier + webhook; the `ocq worker` child; the
 *    database's PostgreSQL backends): 2 cores / the sum bounds dials/s on this machine.
 * 3. Worker RSS with 1,000 runs live, `bin/ocq.js` (TypeScript compiled at run time by tsx)
 *    against the same source bundled ahead of time with esbuild (plain `node`), and the graceful
 *    shutdown (SIGTERM) of a worker holding 1,000 runs.
 * 4. The cost of one job transition (a single-row autocommit UPDATE of `jobs`) with and without
 *    the statement-level counter trigger that updates the run row (scratch database only).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ROOT, Rig, ScratchDatabases } from './engine-rig.ts';
import { dispatchThroughput, processCpuMs, script, workerMemory } from './engine-scenarios.ts';
import { round } from './stats.ts';

const OUT = path.join(ROOT, '.tmp', 'bench-engine-diagnose.json');
const BUNDLE_DIR = path.join(ROOT, '.tmp', 'bench-bundle');

function log(message: string): void {
  process.stderr.write(`[bench:diagnose ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Counts every statement sent by any `pg` client of this process while `on`. */
function statementCounter(): { start(): void; stop(): Map<string, number> } {
  const counts = new Map<string, number>();
  let on = false;
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    if (on) {
      const q = args[0] as string | { text?: string } | undefined;
      const text = (typeof q === 'string' ? q : (q?.text ?? '?')).replace(/\s+/g, ' ').trim().slice(0, 100);
      counts.set(text, (counts.get(text) ?? 0) + 1);
    }
    return original.apply(this, args);
  };
  return {
    start: () => void (on = true),
    stop: () => {
      on = false;
      proto.query = original;
      return counts;
    },
  };
}

/** `src/cli.ts` bundled with esbuild (packages external), beside links to the files it reads at run time. */
function buildBundle(): string {
  const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
  fs.mkdirSync(BUNDLE_DIR, { recursive: true });
  const out = path.join(BUNDLE_DIR, 'ocq.mjs');
  execFileSync(esbuild, ['src/cli.ts', '--bundle', '--platform=node', '--format=esm', '--packages=external', `--outfile=${out}`, '--log-level=warning'], { cwd: ROOT });
  // migrate.ts and redis-scripts.ts read files next to themselves (import.meta.url).
  for (const [link, target] of [
    ['migrations', path.join(ROOT, 'src', 'store', 'migrations')],
    ['lua', path.join(ROOT, 'src', 'slots', 'lua')],
  ] as const) {
    const at = path.join(BUNDLE_DIR, link);
    fs.rmSync(at, { force: true, recursive: true });
    fs.symlinkSync(target, at);
  }
  return path.relative(ROOT, out);
}

/** Wall and backend CPU per single-row `queued → dialing` UPDATE, trigger on vs off. */
async function transitionCost(databases: ScratchDatabases): Promise<Record<string, { wallMs: number; backendCpuMs: number }>> {
  const N = 1000;
  const rig = await Rig.start(databases, { mode: 'ocq', script: script([0, 0]) });
  try {
    const [business] = await rig.createBusinesses(1, 3);
    const leads = await rig.createLeads([{ businessId: business!.id, count: 2 * N }]);
    const [run] = await rig.createRuns([{ businessId: business!.id, leadIds: leads.get(business!.id)!, concurrency: 3 }], { announce: false });
    const jobs = await rig.db.selectFrom('jobs').select('id').where('run_id', '=', run!.id).orderBy('position').execute();
    const client = new pg.Client({ connectionString: rig.databaseUrl });
    await client.connect();
    try {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const time = async (ids: string[]): Promise<{ wallMs: number; backendCpuMs: number }> => {
        const cpu0 = processCpuMs(pid) ?? 0;
        const t0 = performance.now();
        for (const id of ids) {
          await client.query(`UPDATE jobs SET status = 'dialing', attempt_id = gen_random_uuid(), dial_started_at = now() WHERE id = $1 AND status = 'queued'`, [id]);
        }
        return { wallMs: round((performance.now() - t0) / ids.length, 3), backendCpuMs: round(((processCpuMs(pid) ?? 0) - cpu0) / ids.length, 3) };
      };
      const ids = jobs.map((j) => j.id);
      const withTrigger = await time(ids.slice(0, N));
      await client.query('ALTER TABLE jobs DISABLE TRIGGER jobs_counters_update');
      const withoutTrigger = await time(ids.slice(N, 2 * N));
      return { withTrigger, withoutTrigger };
    } finally {
      await client.end();
    }
  } finally {
    await rig.close();
  }
}

const dbs = new ScratchDatabases();
const result: Record<string, unknown> = { startedAt: new Date().toISOString(), loadavgBefore: os.loadavg() };
try {
  log('1–2. statements and CPU per dial (200 businesses × 3–5 leads, zero-length calls)');
  {
    const counter = statementCounter();
    const rig = await Rig.start(dbs, { mode: 'ocq', script: script([0, 0], [0, 0]) });
    let dials = 0;
    try {
      counter.start();
      const r = await dispatchThroughput(rig, { businesses: 200, timeBoxMs: 60_000 });
      dials = r.dials;
      result.inProcess = r;
    } finally {
      const counts = counter.stop();
      await rig.close({ abandon: true });
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      result.statementsPerDial = round(total / Math.max(1, dials), 2);
      result.statementsPerDialByText = Object.fromEntries(
        [...counts].sort((a, b) => b[1] - a[1]).filter(([, n]) => n / Math.max(1, dials) >= 0.01).map(([text, n]) => [text, round(n / Math.max(1, dials), 2)]),
      );
    }
    const child = await Rig.start(dbs, { mode: 'ocq', script: script([0, 0], [0, 0]) });
    try {
      result.childWorker = await dispatchThroughput(child, { businesses: 1000, children: 1, timeBoxMs: 30_000 });
    } finally {
      await child.close({ abandon: true });
    }
  }
  log('3. worker RSS and graceful shutdown with 1,000 runs: tsx vs ahead-of-time bundle');
  result.memoryTsx = await workerMemory(dbs, 1000, { measureShutdown: true });
  const bundle = buildBundle();
  result.memoryBundle = await workerMemory(dbs, 1000, { entry: bundle });
  log('4. one job transition with and without the run-counter trigger');
  result.jobTransition = await transitionCost(dbs);
} finally {
  await dbs.dropAll();
}
result.loadavgAfter = os.loadavg();
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
log(`written to ${path.relative(process.cwd(), OUT)}`);
process.exit(0);
