/**
 * `npm run bench`: every benchmark of the product, one after another, then one table.
 *
 * - the engine (bench/engine.ts): ocq against the old system's "sleep 1 s when full" baseline;
 *   figures also in .tmp/bench-engine.json;
 * - the HTTP API against `ocq serve` + `ocq worker` children while a run dispatches (bench/http-api.ts):
 *   GET /api/outbound/runs/:id at 500 req/s, creating a run of 100,000 jobs; figures also in
 *   .tmp/bench-http-api.json;
 * - lead import over HTTP (bench/http-leads.ts).
 *
 * Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) and Redis
 * (REDIS_URL, default redis://127.0.0.1:6379). `--engine-only` / `--http-only` pick one.
 */
import { runEngineBench } from './engine.ts';
import { formatTable, type Row } from './report.ts';
import { settleDatabase } from './settle.ts';

const args = new Set(process.argv.slice(2));
const started = performance.now();
const rows: Row[] = [];

if (!args.has('--http-only')) rows.push(...(await runEngineBench()));

if (!args.has('--engine-only')) {
  if (!args.has('--http-only')) process.stderr.write(`[bench] the database settled in ${await settleDatabase()} ms\n`);
  // The GET latency first: the lead import leaves 200,000 fresh rows for autovacuum to chew on.
  try {
    process.stderr.write('[bench] HTTP API against ocq serve + worker ...\n');
    const { runHttpApiBench } = await import('./http-api.ts');
    rows.push(...(await runHttpApiBench()));
  } catch (error) {
    rows.push({ measure: 'HTTP API (bench/http-api.ts)', unit: '', ocq: null, baseline: null, target: '', pass: null, note: `failed: ${error instanceof Error ? error.message : String(error)}` });
  }
  process.stderr.write(`[bench] the database settled in ${await settleDatabase()} ms\n`);
  try {
    const { benchLeadImport } = await import('./http-leads.ts');
    process.stderr.write('[bench] lead import over HTTP ...\n');
    const r = await benchLeadImport();
    // The lead-import target as http-leads.ts states it (≥ 50,000 leads/s).
    const target = 50_000;
    rows.push(
      { measure: `lead import, JSON (${r.leads} leads)`, unit: 'leads/s', ocq: Math.round(r.leadsPerSecond), baseline: null, target: `≥ ${target} leads/s`, pass: r.leadsPerSecond >= target },
      { measure: `lead import, CSV upload (${r.leads} leads)`, unit: 'leads/s', ocq: Math.round(r.csvLeadsPerSecond), baseline: null, target: `≥ ${target} leads/s`, pass: r.csvLeadsPerSecond >= target },
    );
  } catch (error) {
    rows.push({ measure: 'lead import over HTTP', unit: '', ocq: null, baseline: null, target: '', pass: null, note: `failed: ${error instanceof Error ? error.message : String(error)}` });
  }
}

console.log(formatTable(rows));
console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s; engine figures in .tmp/bench-engine.json, HTTP API figures in .tmp/bench-http-api.json)`);
// Pools, sockets and timers of the benches must not keep the process alive.
process.exit(0);
