/**
 * TypeBox schemas of the run, job and audit resources and their requests. The serializers in
 * serialize.ts return exactly these shapes (`Static<...>`), so the OpenAPI document, the response
 * serializer and the code cannot drift apart.
 */
// Brings @fastify/swagger's `tags`/`summary` route-schema fields into the types.
import type {} from '@fastify/swagger';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { JOB_STATUSES, type JobStatus } from '../domain/job-state.ts';
import { RUN_STATUSES, type RunStatus } from '../domain/run-state.ts';

/** PostgreSQL `integer` bound: a larger cursor would be a database error, so it is a 400 here. */
export const PG_INT_MAX = 2_147_483_647;

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Free text that PostgreSQL can store: `text` cannot hold U+0000. */
export const SafeText = (maxLength: number, options: { minLength?: number; description?: string } = {}) =>
  Type.String({ maxLength, pattern: '^[^\\u0000]*$', ...options });

export const Uuid = (description?: string) => Type.String({ format: 'uuid', ...(description ? { description } : {}) });

const IsoTime = Type.String({ format: 'date-time', description: 'ISO 8601 with zone (UTC)' });
const NullableIsoTime = Nullable(IsoTime);
const Count = Type.Integer({ minimum: 0 });

// A plain `enum` (not a union of literals): a clearer OpenAPI document and "must be one of ..." errors.
export const RunStatusSchema = Type.Unsafe<RunStatus>({ type: 'string', enum: [...RUN_STATUSES] });
export const JobStatusSchema = Type.Unsafe<JobStatus>({ type: 'string', enum: [...JOB_STATUSES] });

export const RunIdParams = Type.Object({ id: Uuid('run id') });
export type RunIdParams = Static<typeof RunIdParams>;

/** The run, every field at the top level. The old `/api/outbound/runs/:id` names are kept as aliases. */
export const RunSchema = Type.Object(
  {
    id: Type.String(),
    status: RunStatusSchema,
    name: Nullable(Type.String()),
    concurrency: Type.Integer(),
    total: Count,
    queued: Count,
    in_progress: Type.Integer({ minimum: 0, description: 'dialing + ringing + in_call' }),
    dialing: Count,
    ringing: Count,
    in_call: Count,
    completed: Count,
    failed: Count,
    no_answer: Count,
    busy: Count,
    cancelled: Count,
    unknown: Count,
    cursor_position: Type.Integer({ minimum: 0, description: 'jobs in a terminal state: progress and resume point' }),
    progress_pct: Type.Number({ minimum: 0, maximum: 100 }),
    cancel_requested: Type.Boolean(),
    stop_requested: Type.Boolean(),
    can_cancel: Type.Boolean({ description: 'active, and neither cancel nor stop requested yet' }),
    locked_by_worker: Nullable(Type.String()),
    lock_ts: NullableIsoTime,
    created_by_user_id: Nullable(Type.String()),
    created_at: IsoTime,
    started_at: NullableIsoTime,
    ended_at: NullableIsoTime,
    last_error: Nullable(Type.String()),
    run_id: Type.String({ description: 'old name of `id`' }),
    total_leads: Type.Integer({ minimum: 0, description: 'old name of `total`' }),
    completed_at: Type.Union([IsoTime, Type.Null()], { description: 'old name of `ended_at`' }),
  },
);
export type RunJson = Static<typeof RunSchema>;

export const JobSchema = Type.Object(
  {
    id: Type.String(),
    run_id: Type.String(),
    position: Type.Integer({ minimum: 0 }),
    lead_id: Type.String(),
    phone: Type.String({ description: 'E.164, as dialled' }),
    name: Nullable(Type.String({ description: "the lead's name" })),
    status: JobStatusSchema,
    outcome: Nullable(Type.String()),
    answered_by: Nullable(Type.String()),
    provider_call_id: Nullable(Type.String()),
    attempt_id: Nullable(Type.String()),
    dial_started_at: NullableIsoTime,
    answered_at: NullableIsoTime,
    ended_at: NullableIsoTime,
    duration_seconds: Nullable(Type.Integer()),
    error: Nullable(Type.String()),
  },
);
export type JobJson = Static<typeof JobSchema>;

export const AuditEventSchema = Type.Object(
  {
    id: Type.String(),
    at: IsoTime,
    actor_type: Type.String(),
    actor_id: Type.String(),
    action: Type.String(),
    target_type: Type.String(),
    target_id: Type.String(),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
);
export type AuditEventJson = Static<typeof AuditEventSchema>;

export const pageOf = <T extends TSchema>(item: T, cursorDescription: string) =>
  Type.Object({ items: Type.Array(item), next_cursor: Nullable(Type.String({ description: cursorDescription })) });

export const CreateRunBody = Type.Object(
  {
    lead_ids: Type.Optional(Type.Array(Uuid(), { minItems: 1, maxItems: 100_000, description: 'dial order; a repeated id yields one job' })),
    all_leads: Type.Optional(Type.Boolean({ description: 'every lead of the business (instead of lead_ids)' })),
    name: Type.Optional(Nullable(SafeText(200))),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'default min(3, business max_concurrent_calls)' })),
  },
  { additionalProperties: false },
);
export type CreateRunBody = Static<typeof CreateRunBody>;

export const ListRunsQuery = Type.Object({
  status: Type.Optional(RunStatusSchema),
  cursor: Type.Optional(Uuid('next_cursor of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
});
export type ListRunsQuery = Static<typeof ListRunsQuery>;

export const ListJobsQuery = Type.Object({
  status: Type.Optional(JobStatusSchema),
  cursor: Type.Optional(Type.Integer({ minimum: 0, maximum: PG_INT_MAX, description: 'next_cursor of the previous page (a position)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});
export type ListJobsQuery = Static<typeof ListJobsQuery>;

export const ListAuditQuery = Type.Object({
  cursor: Type.Optional(Uuid('next_cursor of the previous page')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});
export type ListAuditQuery = Static<typeof ListAuditQuery>;

export const RunControlResponse = Type.Composite([RunSchema, Type.Object({ cancelled_jobs: Count })]);

/** Large enough for 100,000 lead ids (about 3.9 MB of JSON). */
export const RUN_CREATE_BODY_LIMIT = 6 * 1024 * 1024;
