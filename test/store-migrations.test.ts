/**
 * Migrations: a second run is a no-op; concurrent runs (two connections, two processes) apply each
 * migration exactly once; upgrading a database full of data from the previous version loses
 * nothing.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { openStore, type Store } from '../src/store/database.ts';
import { listMigrations, migrate, MIGRATION_LOCK_KEY as LOCK_KEY } from '../src/store/migrate.ts';
import { newId } from '../src/store/ids.ts';
import { countJobsByStatus, createRun, getRun } from '../src/store/runs.ts';
import type { Database } from '../src/store/schema.ts';
import type { JobStatus } from '../src/domain/job-state.ts';
import { hasPostgres } from './support/services.ts';
import { createEmptyPostgresDatabase } from './support/pg-databases.ts';
import { ROOT } from './support/paths.ts';
import { killChild, spawnNode, type Child } from './support/processes.ts';
import { UUID_V7, addBusiness, addLeads, addUser, countersOf, phone } from './support/seed.ts';

const ALL = listMigrations().map((m) => m.name);
/** The advisory lock key migrate() serialises on (src/store/migrate.ts, MIGRATION_LOCK_KEY). */
const MIGRATION_LOCK_KEY = BigInt(LOCK_KEY);

/** Cleanup run after each test, newest first. */
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface FreshDb {
  store: Store;
  url?: string;
}

/**
 * A fresh PGlite costs an initdb (seconds on two busy cores). Instead, start from the suite's
 * migrated dump and empty it: every migration creates its objects in `public`, so dropping that
 * schema gives back a database as initdb left it (checked below: no table, no function).
 */
const pgliteTemplate = inject('ocqTemplates').pgliteTemplateFile;

/** A fresh, unmigrated database of the given kind. */
async function freshDatabase(kind: 'pglite' | 'postgres'): Promise<FreshDb> {
  if (kind === 'pglite') {
    const store = await openStore({ memory: true, loadDataDir: new Blob([fs.readFileSync(pgliteTemplate)]) });
    cleanups.push(() => store.close());
    await sql`DROP SCHEMA public CASCADE; CREATE SCHEMA public`.execute(store.db);
    await expectEmpty(store.db);
    return { store };
  }
  const { url, drop } = await createEmptyPostgresDatabase();
  cleanups.push(drop);
  const store = await openStore({ databaseUrl: url, poolSize: 2 });
  cleanups.push(() => store.close());
  await expectEmpty(store.db);
  return { store, url };
}

async function expectEmpty(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ n: number }>`
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')
         + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public') AS n`.execute(db);
  expect(rows[0]?.n).toBe(0);
}

async function appliedNames(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('ocq_migrations').select('name').orderBy('name').execute();
  return rows.map((r) => r.name);
}

const drivers = [
  { kind: 'pglite' as const, available: true },
  { kind: 'postgres' as const, available: hasPostgres },
];

it('there is a numbered list of migrations, at least two, in order', () => {
  expect(ALL.length).toBeGreaterThanOrEqual(2);
  expect(ALL[0]).toBe('001_initial');
  expect([...ALL].sort()).toEqual(ALL);
  expect(new Set(ALL.map((n) => n.slice(0, 3))).size).toBe(ALL.length);
});

describe.each(drivers)('migrate on $kind', ({ kind, available }) => {
  it.skipIf(!available)('a second run applies nothing', async () => {
    const { store } = await freshDatabase(kind);
    expect(await migrate(store.db)).toEqual(ALL);
    expect(await migrate(store.db)).toEqual([]);
    expect(await appliedNames(store.db)).toEqual(ALL);
    const applied = await store.db.selectFrom('ocq_migrations').selectAll().execute();
    for (const row of applied) expect(row.applied_at).toBeInstanceOf(Date);
  });

  // The previous version upgrades to the latest, and so does the oldest (all migrations on data).
  describe.each([...new Set([ALL[0]!, ALL.at(-2)!])])('a database at %s, full of data, migrated to the latest', (previous) => {
    it.skipIf(!available)('loses nothing, and its counters still agree with its jobs', async () => {
      const { store } = await freshDatabase(kind);
      const db = store.db;
      expect(await migrate(db, { upTo: previous })).toEqual(ALL.slice(0, ALL.indexOf(previous) + 1));
      expect(await migrate(db, { upTo: previous })).toEqual([]);
      expect(await appliedNames(db)).toEqual(ALL.slice(0, ALL.indexOf(previous) + 1));

      const seeded = await seedAtOldVersion(db);
      const before = await snapshot(db);
      expect(before.jobs).toHaveLength(seeded.jobCount);

      const applied = await migrate(db);
      expect(applied).toEqual(ALL.slice(ALL.indexOf(previous) + 1));
      expect(await migrate(db)).toEqual([]);
      expect(await appliedNames(db)).toEqual(ALL);
      const after = await snapshot(db);

      // Nothing lost or changed: every table, every row, every column that existed before
      // (counts and values). Columns a migration adds are checked on their own below.
      for (const table of TABLES) {
        expect(after[table].length, table).toBe(before[table].length);
        const columns = Object.keys(before[table][0] ?? {});
        const project = (row: Record<string, unknown>) => Object.fromEntries(columns.map((c) => [c, row[c]]));
        expect(after[table].map(project), table).toEqual(before[table]);
      }
      // 005 backfills each business's live calls from its jobs.
      const live = await sql<{ business_id: string; n: number }>`
        SELECT business_id, count(*)::int AS n FROM jobs WHERE status IN ('dialing', 'ringing', 'in_call') GROUP BY 1`.execute(db);
      for (const business of after.businesses) {
        expect(business.live_calls, 'live_calls').toBe(live.rows.find((r) => r.business_id === business.id)?.n ?? 0);
      }
      // Sampled values survive with their JS types.
      const lead = after.leads.find((l) => l.id === seeded.sampleLeadId)!;
      expect(lead).toMatchObject({ name: 'Dana Levi', external_id: 'crm-1', attributes: { vip: true, tags: ['a', 'b'] } });
      expect(lead.created_at).toEqual(new Date('2023-05-01T09:00:00.000Z'));
      const business = after.businesses.find((b) => b.id === seeded.businessId)!;
      expect(business).toMatchObject({ name: 'Acme Dialers', max_concurrent_calls: 7, timezone: 'Asia/Jerusalem' });

      for (const runId of seeded.runIds) {
        const run = (await getRun(db, seeded.businessId, runId))!;
        const rows = await countJobsByStatus(db, seeded.businessId, runId);
        expect(countersOf(run)).toEqual(rows);
        expect(run.total_jobs).toBe(Object.values(rows).reduce((a, b) => a + b, 0));
      }
      const big = (await getRun(db, seeded.businessId, seeded.runIds[0]!))!;
      expect(countersOf(big)).toEqual(seeded.expectedCounters);
      expect(big.cursor_position).toBe(6);

      // And the upgraded database works with the current code (DB-generated UUIDv7 job ids).
      const run = await createRun(db, {
        businessId: seeded.businessId,
        createdByUserId: seeded.userId,
        name: 'after upgrade',
        concurrency: 1,
        leads: { ids: seeded.leadIds.slice(0, 3) },
      });
      expect(run.total_jobs).toBe(3);
      const jobs = await db.selectFrom('jobs').select('id').where('run_id', '=', run.id).execute();
      for (const job of jobs) expect(job.id).toMatch(UUID_V7);
    });
  });
});

describe.skipIf(!hasPostgres)('concurrent migrations on a fresh PostgreSQL database', () => {
  /** Holds the migration lock on a session of its own until `release()`. */
  async function holdMigrationLock(url: string) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
      await client.end();
    };
    cleanups.push(release);
    return {
      release,
      /** Waits until `n` sessions are blocked on the migration lock (bounded; fails on `abort`). */
      async waitForWaiters(n: number, abort: () => string | undefined = () => undefined): Promise<void> {
        const deadline = Date.now() + 20_000;
        const classid = (MIGRATION_LOCK_KEY >> 32n).toString();
        const objid = (MIGRATION_LOCK_KEY & 0xffffffffn).toString();
        for (;;) {
          const { rows } = await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            [classid, objid],
          );
          if ((rows[0]?.n ?? 0) >= n) return;
          const aborted = abort();
          if (aborted) throw new Error(aborted);
          if (Date.now() > deadline) throw new Error(`only ${rows[0]?.n} of ${n} migrations reached the migration lock within 20 s (is src/store/migrate.ts MIGRATION_LOCK_KEY still ${MIGRATION_LOCK_KEY}?)`);
          // Poll the condition (not a sleep as synchronisation: the loop exits on the state itself).
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      },
    };
  }

  it('two connections migrating at once (Promise.all): both succeed, each migration applied exactly once', async () => {
    const { url } = await createEmptyPostgresDatabase().then((d) => {
      cleanups.push(d.drop);
      return d;
    });
    const a = await openStore({ databaseUrl: url, poolSize: 1 });
    cleanups.push(() => a.close());
    const b = await openStore({ databaseUrl: url, poolSize: 1 });
    cleanups.push(() => b.close());

    // Both are inside migrate(), waiting for the same lock, before either may go on.
    const gate = await holdMigrationLock(url);
    const both = Promise.all([migrate(a.db), migrate(b.db)]);
    both.catch(() => undefined);
    await gate.waitForWaiters(2);
    await gate.release();
    const [appliedA, appliedB] = await both;

    expect([...appliedA, ...appliedB].sort()).toEqual(ALL);
    expect(await appliedNames(a.db)).toEqual(ALL);
    expect(await migrate(a.db)).toEqual([]);
    // The schema is whole: the latest migration's work is present.
    const { rows } = await sql<{ id: string }>`SELECT ocq_uuidv7()::text AS id`.execute(b.db);
    expect(rows[0]?.id).toMatch(UUID_V7);
  });

  it('two processes migrating at once: both exit 0, each migration applied exactly once', async () => {
    const { url } = await createEmptyPostgresDatabase().then((d) => {
      cleanups.push(d.drop);
      return d;
    });
    const gate = await holdMigrationLock(url);
    const children: Child[] = [0, 1].map(() => spawnMigrate(url));
    for (const child of children) cleanups.push(() => killChild(child, 'SIGKILL'));

    const exitedEarly = (): string | undefined => {
      const dead = children.find((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
      return dead && `a child exited before reaching the lock: ${dead.stderr()}`;
    };
    await gate.waitForWaiters(2, exitedEarly);
    await gate.release();
    const codes = await Promise.all(children.map((c) => c.exited));
    expect(codes, children.map((c) => c.stderr()).join('\n')).toEqual([0, 0]);

    const applied = children.map((c) => parseApplied(c.stdout()));
    expect(applied.flat().sort()).toEqual(ALL);

    const check = await openStore({ databaseUrl: url, poolSize: 1 });
    cleanups.push(() => check.close());
    expect(await appliedNames(check.db)).toEqual(ALL);
  });
});

/** The real CLI: `node bin/ocq.js migrate` against `url`. */
function spawnMigrate(url: string): Child {
  return spawnNode([path.join(ROOT, 'bin/ocq.js'), 'migrate'], { DATABASE_URL: url, OCQ_LOG_LEVEL: 'silent' });
}

/** `ocq migrate` prints `applied: a, b` or `up to date: nothing to apply`. */
function parseApplied(stdout: string): string[] {
  const line = stdout.split('\n').find((l) => l.startsWith('applied: ') || l.startsWith('up to date'));
  expect(line, `ocq migrate printed: ${stdout}`).toBeDefined();
  return line!.startsWith('applied: ') ? line!.slice('applied: '.length).split(', ') : [];
}

// ---------------------------------------------------------------------------------------------
// Upgrade data: written with SQL that the oldest schema accepts (explicit ids everywhere).
// ---------------------------------------------------------------------------------------------
const TABLES = ['businesses', 'users', 'api_tokens', 'leads', 'runs', 'jobs', 'audit_events', 'security_events'] as const;
type Table = (typeof TABLES)[number];

async function snapshot(db: Kysely<Database>): Promise<Record<Table, Record<string, unknown>[]>> {
  const out = {} as Record<Table, Record<string, unknown>[]>;
  for (const table of TABLES) {
    out[table] = (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} ORDER BY id`.execute(db)).rows;
  }
  return out;
}

async function seedAtOldVersion(db: Kysely<Database>) {
  const businessId = newId();
  await db
    .insertInto('businesses')
    .values({ id: businessId, name: 'Acme Dialers', max_concurrent_calls: 7, caller_id: '+97235551234', call_handler_url: 'https://example.com/twiml' })
    .execute();
  const otherBusiness = await addBusiness(db, 'Other');
  await addLeads(db, otherBusiness, 2);
  const userId = await addUser(db, businessId, 'owner');
  const agentId = await addUser(db, businessId, 'agent');
  await db
    .insertInto('api_tokens')
    .values({ id: newId(), user_id: agentId, business_id: businessId, token_sha256: 'a'.repeat(64), prefix: 'ocq_abcd', name: 'ci', last_used_at: new Date('2024-01-02T03:04:05Z') })
    .execute();

  const sampleLeadId = newId();
  await db
    .insertInto('leads')
    .values({
      id: sampleLeadId,
      business_id: businessId,
      phone_e164: '+972501234567',
      name: 'Dana Levi',
      external_id: 'crm-1',
      attributes: JSON.stringify({ vip: true, tags: ['a', 'b'] }),
      created_at: '2023-05-01T12:00:00+03:00',
    })
    .execute();
  const leadIds = [sampleLeadId, ...(await addLeads(db, businessId, 11))];

  // A running run with jobs in every status, and a second, finished one.
  const statuses: JobStatus[] = ['queued', 'queued', 'dialing', 'ringing', 'in_call', 'completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown'];
  const runA = newId();
  const runB = newId();
  await db.insertInto('runs').values({ id: runA, business_id: businessId, created_by_user_id: userId, name: 'Monday', status: 'running', concurrency: 3, started_at: new Date() }).execute();
  await db.insertInto('runs').values({ id: runB, business_id: businessId, created_by_user_id: agentId, name: 'Tuesday', concurrency: 1 }).execute();
  const jobRow = (runId: string, leadId: string, position: number, status: JobStatus) => ({
    id: newId(),
    run_id: runId,
    business_id: businessId,
    lead_id: leadId,
    position,
    phone_e164: phone(),
    status,
    attempt_id: status === 'queued' ? null : newId(),
    provider_call_id: status === 'queued' || status === 'dialing' ? null : `CA${position}`,
    outcome: status === 'completed' ? 'completed' : null,
    ended_at: ['completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown'].includes(status) ? new Date() : null,
    duration_seconds: status === 'completed' ? 42 : null,
  });
  await db.insertInto('jobs').values(statuses.map((s, i) => jobRow(runA, leadIds[i]!, i, s))).execute();
  // Then a few transitions, so the counters went through the update trigger too.
  await sql`UPDATE jobs SET status = 'dialing', attempt_id = ${newId()} WHERE run_id = ${runA} AND position = 0`.execute(db);
  await db.insertInto('jobs').values([jobRow(runB, leadIds[0]!, 0, 'queued'), jobRow(runB, leadIds[1]!, 1, 'queued')]).execute();
  await sql`UPDATE jobs SET status = 'cancelled', ended_at = now() WHERE run_id = ${runB}`.execute(db);
  await sql`UPDATE runs SET status = 'cancelled', ended_at = now(), cancel_requested = true, cancel_requested_at = now(), cancel_requested_by = ${userId} WHERE id = ${runB}`.execute(db);

  await db
    .insertInto('audit_events')
    .values({ id: newId(), business_id: businessId, actor_type: 'user', actor_id: userId, action: 'run.cancel', target_type: 'run', target_id: runB, data: JSON.stringify({ from: 'pending', to: 'cancelled' }) })
    .execute();
  await db
    .insertInto('security_events')
    .values({ id: newId(), kind: 'cross_tenant', actor_user_id: userId, actor_business_id: businessId, target_type: 'run', target_id: newId(), owner_business_id: otherBusiness, route: 'GET /api/runs/:id' })
    .execute();

  return {
    businessId,
    userId,
    leadIds,
    sampleLeadId,
    runIds: [runA, runB],
    jobCount: statuses.length + 2,
    expectedCounters: { queued: 1, dialing: 2, ringing: 1, in_call: 1, completed: 1, no_answer: 1, busy: 1, failed: 1, cancelled: 1, unknown: 1 },
  };
}
