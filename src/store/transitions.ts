/**
 * The only way a status changes: a conditional UPDATE whose WHERE lists the states the domain
 * allows the event to leave from. A racing or illegal transition matches no row; the caller
 * gets the rows that did change and so learns whether it applied.
 */
import { sql, type Kysely, type UpdateObject, type UpdateQueryBuilder, type UpdateResult } from 'kysely';
import { jobSourcesFor, jobTargetFor, type JobEvent } from '../domain/job-state.ts';
import { runSourcesFor, runTargetFor, type RunEvent } from '../domain/run-state.ts';
import type { Database } from './schema.ts';

/** The database clock, for timestamps written by transitions. */
export const NOW = sql<Date>`now()`;

type JobsUpdate = UpdateQueryBuilder<Database, 'jobs', 'jobs', UpdateResult>;
type RunsUpdate = UpdateQueryBuilder<Database, 'runs', 'runs', UpdateResult>;

/** `UPDATE jobs SET status = target, ...patch WHERE status IN (sources)`; narrow it with `where`. */
export function updateJobStatus(db: Kysely<Database>, event: JobEvent, patch: UpdateObject<Database, 'jobs'> = {}): JobsUpdate {
  return db
    .updateTable('jobs')
    .set({ ...patch, status: jobTargetFor(event) })
    .where('status', 'in', [...jobSourcesFor(event)]);
}

/** `UPDATE runs SET status = target, ...patch WHERE status IN (sources)`; narrow it with `where`. */
export function updateRunStatus(db: Kysely<Database>, event: RunEvent, patch: UpdateObject<Database, 'runs'> = {}): RunsUpdate {
  return db
    .updateTable('runs')
    .set({ ...patch, status: runTargetFor(event) })
    .where('status', 'in', [...runSourcesFor(event)]);
}
