/**
 * Prometheus metrics on a registry of their own (no global state, so several apps can live in one
 * test process). The engine updates the counters and gauges; `runsByState` is read from the
 * database at scrape time, so it is right whichever process changed the runs.
 */
import type { Kysely } from 'kysely';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RUN_STATUSES } from './domain/run-state.ts';
import type { Database } from './store/schema.ts';

export interface Metrics {
  readonly registry: Registry;
  /** Dial attempts by final outcome (completed, no_answer, busy, failed, cancelled, unknown). */
  readonly dials: Counter<'outcome'>;
  /** Calls holding a slot now, per business. */
  readonly liveCalls: Gauge<'business_id'>;
  /** Runs waiting for a free call slot now, per business. */
  readonly waitingRuns: Gauge<'business_id'>;
  /** Time from asking for a call slot to getting it. */
  readonly slotWaitSeconds: Histogram;
  /** Runs per status, counted in the database when scraped. */
  readonly runsByState: Gauge<'status'>;
  /** Provider status callbacks by how they were handled. */
  readonly webhookResults: Counter<'result'>;
}

export interface MetricsOptions {
  /** Reads `status → count` for every run; called on each scrape. */
  collectRunsByState?: () => Promise<ReadonlyArray<{ status: string; count: number }>>;
  /** Reads each business's live calls (the database's own counter); called on each scrape. */
  collectLiveCalls?: () => Promise<ReadonlyArray<{ businessId: string; live: number }>>;
  /** Also export Node.js process metrics (CPU, memory, event loop). Default true. */
  processMetrics?: boolean;
}

/** 1 ms to 60 s: an idle business gets a slot at once; a busy one waits for a call to end. */
export const SLOT_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const { collectRunsByState, collectLiveCalls } = options;
  return {
    registry,
    dials: new Counter({ name: 'ocq_dials_total', help: 'Dial attempts by outcome', labelNames: ['outcome'], registers: [registry] }),
    liveCalls: new Gauge({
      name: 'ocq_live_calls',
      help: 'Live calls per business (read from the database at scrape time, so right whichever process placed them)',
      labelNames: ['business_id'],
      registers: [registry],
      async collect() {
        if (!collectLiveCalls) return;
        try {
          const rows = await collectLiveCalls();
          this.reset();
          for (const row of rows) this.set({ business_id: row.businessId }, row.live);
        } catch {
          // database unreachable: keep the last values; /readyz reports the outage
        }
      },
    }),
    waitingRuns: new Gauge({ name: 'ocq_waiting_runs', help: 'Runs waiting for a call slot, per business', labelNames: ['business_id'], registers: [registry] }),
    slotWaitSeconds: new Histogram({ name: 'ocq_slot_wait_seconds', help: 'Time waited for a call slot', buckets: SLOT_WAIT_BUCKETS, registers: [registry] }),
    runsByState: new Gauge({
      name: 'ocq_runs',
      help: 'Runs by status (read from the database at scrape time)',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        if (!collectRunsByState) return;
        let rows: ReadonlyArray<{ status: string; count: number }>;
        try {
          rows = await collectRunsByState();
        } catch {
          return; // database unreachable: keep the last values; /readyz reports the outage
        }
        // Every status is exported, zero included, so a series never disappears.
        const counts = new Map(rows.map((row) => [row.status, row.count]));
        for (const status of RUN_STATUSES) this.set({ status }, counts.get(status) ?? 0);
      },
    }),
    webhookResults: new Counter({ name: 'ocq_webhook_results_total', help: 'Provider status callbacks by result', labelNames: ['result'], registers: [registry] }),
  };
}

/** System-level, for metrics only: runs per status across all businesses. */
export function runsByStateFromDatabase(db: Kysely<Database>): () => Promise<Array<{ status: string; count: number }>> {
  return async () => {
    const rows = await db
      .selectFrom('runs')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    return rows.map((row) => ({ status: row.status, count: Number(row.count) }));
  };
}

/** System-level, for metrics only: businesses with calls live now. */
export function liveCallsFromDatabase(db: Kysely<Database>): () => Promise<Array<{ businessId: string; live: number }>> {
  return async () => {
    const rows = await db.selectFrom('businesses').select(['id', 'live_calls']).where('live_calls', '>', 0).execute();
    return rows.map((row) => ({ businessId: row.id, live: row.live_calls }));
  };
}
