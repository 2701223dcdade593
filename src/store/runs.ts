/**
 * Runs as tenants see them. Every function takes the business id and puts it in its WHERE:
 * there is no "get run by id" here. (The worker's lease path lives in run-lease.ts.)
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.ts';
import { ACTIVE_RUN_STATUSES, type RunStatus } from '../domain/run-state.ts';
import type { JobStatus } from '../domain/job-state.ts';
import { newId } from './ids.ts';
import type { Database, Job, Run } from './schema.ts';

export interface CreateRunInput {
  businessId: string;
  createdByUserId: string | null;
  name: string | null;
  concurrency: number;
  /** Leads in dial order; duplicates are dropped (first one wins). Or every lead of the business. */
  leads: { ids: readonly string[] } | { all: true };
}

/** Largest run one request may create. */
export const MAX_JOBS_PER_RUN = 100_000;

/**
 * Creates the run and its jobs in one transaction, so a rejected request (a lead of another
 * business, an empty selection) leaves no orphan run behind.
 *
 * @example
 * const run = await createRun(db, { businessId, createdByUserId: userId, name: 'Monday',
 *   concurrency: 3, leads: { ids: [leadA, leadB] } });
 */
export async function createRun(db: Kysely<Database>, input: CreateRunInput): Promise<Run> {
  return createRunWith(db, input, {});
}

export interface CreateRunOptions {
  /**
   * The old bulk-enqueue rule: refuse when the business already has an active run. Checked inside
   * the creating transaction, after locking the business row, so two racing requests cannot both
   * pass and a refused request leaves no orphan run (the old bug #16).
   * @throws ConflictError `active_run_exists` with details `{active_run_id, active_run_status}`.
   */
  refuseIfActive?: boolean;
  /** Runs inside the creating transaction (e.g. the audit event): both commit or neither does. */
  inTransaction?: (trx: Transaction<Database>, run: Run) => Promise<void>;
}

/** {@link createRun} with options; see {@link CreateRunOptions}. */
export async function createRunWith(db: Kysely<Database>, input: CreateRunInput, options: CreateRunOptions): Promise<Run> {
  const runId = newId();
  const leadIds = 'ids' in input.leads ? [...new Set(input.leads.ids)] : null;
  if (leadIds && leadIds.length === 0) {
    throw new ValidationError({ en: 'lead_ids: at least one lead is required', he: 'lead_ids: נדרש לפחות ליד אחד' }, { field: 'lead_ids' });
  }
  if (leadIds && leadIds.length > MAX_JOBS_PER_RUN) {
    throw new ValidationError(
      { en: `lead_ids: at most ${MAX_JOBS_PER_RUN} leads per run`, he: `lead_ids: לכל היותר ${MAX_JOBS_PER_RUN} לידים בהרצה` },
      { field: 'lead_ids' },
    );
  }
  return db.transaction().execute(async (trx) => {
    if (options.refuseIfActive) await refuseIfActiveRun(trx, input.businessId);
    await trx
      .insertInto('runs')
      .values({
        id: runId,
        business_id: input.businessId,
        created_by_user_id: input.createdByUserId,
        name: input.name,
        concurrency: input.concurrency,
      })
      .execute();
    const inserted = leadIds
      ? await sql<{ n: number }>`
          WITH ins AS (
            INSERT INTO jobs (run_id, business_id, lead_id, position, phone_e164)
            SELECT ${runId}, l.business_id, l.id, (t.ord - 1)::int, l.phone_e164
              FROM unnest(${leadIds}::uuid[]) WITH ORDINALITY AS t(lead_id, ord)
              JOIN leads l ON l.id = t.lead_id AND l.business_id = ${input.businessId}
            RETURNING 1)
          SELECT count(*)::int AS n FROM ins`.execute(trx)
      : await sql<{ n: number }>`
          WITH ins AS (
            INSERT INTO jobs (run_id, business_id, lead_id, position, phone_e164)
            SELECT ${runId}, l.business_id, l.id, (row_number() OVER (ORDER BY l.id) - 1)::int, l.phone_e164
              FROM leads l WHERE l.business_id = ${input.businessId}
              LIMIT ${MAX_JOBS_PER_RUN + 1}
            RETURNING 1)
          SELECT count(*)::int AS n FROM ins`.execute(trx);
    const count = inserted.rows[0]?.n ?? 0;
    // A lead of another business answers exactly as a missing one: not found.
    if (leadIds && count !== leadIds.length) throw new NotFoundError('lead');
    if (count === 0) {
      throw new ValidationError({ en: 'the business has no leads to call', he: 'אין לעסק לידים להתקשר אליהם' }, { field: 'all_leads' });
    }
    if (count > MAX_JOBS_PER_RUN) {
      throw new ValidationError(
        { en: `at most ${MAX_JOBS_PER_RUN} leads per run`, he: `לכל היותר ${MAX_JOBS_PER_RUN} לידים בהרצה` },
        { field: 'all_leads' },
      );
    }
    const run = await trx.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    await options.inTransaction?.(trx, run);
    return run;
  });
}

/** Serialises exclusive creators of one business (NO KEY UPDATE: other inserts referencing it go on). */
async function refuseIfActiveRun(trx: Transaction<Database>, businessId: string): Promise<void> {
  await trx.selectFrom('businesses').select('id').where('id', '=', businessId).forNoKeyUpdate().execute();
  const active = await findActiveRun(trx, businessId);
  if (active) {
    throw new ConflictError(
      'active_run_exists',
      { en: 'an active call queue already exists for this business', he: 'תור שיחות פעיל כבר קיים לעסק - יש לבטל אותו או להמתין לסיומו' },
      { active_run_id: active.id, active_run_status: active.status },
    );
  }
}

export async function getRun(db: Kysely<Database>, businessId: string, runId: string): Promise<Run | undefined> {
  return db.selectFrom('runs').selectAll().where('business_id', '=', businessId).where('id', '=', runId).executeTakeFirst();
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** Newest first. The cursor is the last id seen (ids are time-ordered UUIDv7). */
export async function listRuns(
  db: Kysely<Database>,
  businessId: string,
  options: { status?: RunStatus; cursor?: string; limit: number },
): Promise<Page<Run>> {
  let query = db.selectFrom('runs').selectAll().where('business_id', '=', businessId);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.cursor) query = query.where('id', '<', options.cursor);
  const rows = await query.orderBy('id', 'desc').limit(options.limit + 1).execute();
  return pageOf(rows, options.limit);
}

function pageOf<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
}

/** The business's most recent active run (the old `/jobs/active`), if any. */
export async function findActiveRun(db: Kysely<Database>, businessId: string): Promise<Run | undefined> {
  return db
    .selectFrom('runs')
    .selectAll()
    .where('business_id', '=', businessId)
    .where('status', 'in', [...ACTIVE_RUN_STATUSES])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export type JobWithLead = Job & { lead_name: string | null };

/** A run's jobs in dial order, with the lead's name. Undefined when the run is not this business's. */
export async function listJobs(
  db: Kysely<Database>,
  businessId: string,
  runId: string,
  options: { status?: JobStatus; cursor?: number; limit: number },
): Promise<{ items: JobWithLead[]; nextCursor: number | null } | undefined> {
  const run = await db.selectFrom('runs').select('id').where('business_id', '=', businessId).where('id', '=', runId).executeTakeFirst();
  if (!run) return undefined;
  let query = db
    .selectFrom('jobs')
    .innerJoin('leads', (join) => join.onRef('leads.id', '=', 'jobs.lead_id').onRef('leads.business_id', '=', 'jobs.business_id'))
    .selectAll('jobs')
    .select('leads.name as lead_name')
    .where('jobs.business_id', '=', businessId)
    .where('jobs.run_id', '=', runId);
  if (options.status) query = query.where('jobs.status', '=', options.status);
  if (options.cursor !== undefined) query = query.where('jobs.position', '>', options.cursor);
  const rows = await query.orderBy('jobs.position').limit(options.limit + 1).execute();
  const items = rows.slice(0, options.limit);
  return { items, nextCursor: rows.length > options.limit ? (items.at(-1)?.position ?? null) : null };
}

/** Counts of a run's jobs by status, straight from the job rows (the counters' cross-check). */
export async function countJobsByStatus(db: Kysely<Database>, businessId: string, runId: string): Promise<Partial<Record<JobStatus, number>>> {
  const rows = await db
    .selectFrom('jobs')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('business_id', '=', businessId)
    .where('run_id', '=', runId)
    .groupBy('status')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Calls live right now across all the business's runs (the old `/counts`). */
export async function countLiveCalls(db: Kysely<Database>, businessId: string): Promise<number> {
  const row = await db
    .selectFrom('runs')
    .select(sql<number>`coalesce(sum(dialing_count + ringing_count + in_call_count), 0)::int`.as('live'))
    .where('business_id', '=', businessId)
    .executeTakeFirst();
  return Number(row?.live ?? 0);
}

/** Which of `leadIds` are not leads of this business (missing or another's), in the order given; at most `limit`. */
export async function leadIdsNotInBusiness(
  db: Kysely<Database>,
  businessId: string,
  leadIds: readonly string[],
  limit: number,
): Promise<string[]> {
  const result = await sql<{ id: string }>`
    SELECT t.id FROM unnest(${[...leadIds]}::uuid[]) WITH ORDINALITY AS t(id, ord)
     WHERE NOT EXISTS (SELECT 1 FROM leads l WHERE l.id = t.id AND l.business_id = ${businessId})
     ORDER BY t.ord LIMIT ${limit}`.execute(db);
  return result.rows.map((row) => row.id);
}
