/**
 * Lets the database server settle between benchmark parts: the engine part leaves dirty buffers
 * and fresh rows behind, and a checkpoint or an autovacuum worker running under the next part's
 * latency windows would be measured as the API's own cost. Flushes with CHECKPOINT, then waits
 * (bounded) until no autovacuum worker has run for two seconds.
 */
import pg from 'pg';
import { POSTGRES_URL } from './engine-rig.ts';

const QUIET_FOR_MS = 2_000;
const MAX_WAIT_MS = 60_000;

/** Returns how long it waited (ms). */
export async function settleDatabase(): Promise<number> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query('CHECKPOINT');
    let quietSince = performance.now();
    while (performance.now() - started < MAX_WAIT_MS) {
      const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`);
      if ((rows[0]?.n ?? 0) > 0) quietSince = performance.now();
      else if (performance.now() - quietSince >= QUIET_FOR_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.end();
  }
  return Math.round(performance.now() - started);
}
