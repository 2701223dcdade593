/**
 * Request and response shapes of the old system's outbound paths (docs/api-runs.md, "Old paths").
 * Field names are the old ones; in them `job_id` means the run id. They may say more than the old
 * system did, never less.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, RunStatusSchema, SafeText, Uuid } from './schemas.ts';

const IsoTime = Type.String({ format: 'date-time' });
const Count = Type.Integer({ minimum: 0 });

export const LegacyRunIdParams = Type.Object({ run_id: Uuid('run id (the old "job" id)') });
export type LegacyRunIdParams = Static<typeof LegacyRunIdParams>;

export const StopQueueBody = Type.Object({
  // Absent, null or "" is a missing id (as the old `if not run_id`): the old Hebrew 400, not a generic one.
  run_id: Type.Optional(Type.Union([Uuid(), Type.Literal(''), Type.Null()])),
});
export type StopQueueBody = Static<typeof StopQueueBody>;

export const StopQueueResponse = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  cancelled_jobs: Count,
  run_id: Type.String(),
  status: RunStatusSchema,
  already_ended: Type.Boolean(),
});

export const CancelResponse = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  run_id: Type.String(),
  job_id: Type.String(),
  status: RunStatusSchema,
  cancelled_jobs: Count,
});

const ExternalRef = Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), SafeText(200)]);

export const BulkEnqueueBody = Type.Object({
  lead_ids: Type.Array(Uuid(), { maxItems: 100_000 }),
  // Only its type here: the range is checked in the handler to answer with the old Hebrew message.
  concurrency: Type.Optional(Type.Integer({ description: '1..10, default 3' })),
  outbound_list_id: Type.Optional(Nullable(ExternalRef)),
  project_id: Type.Optional(Nullable(ExternalRef)),
});
export type BulkEnqueueBody = Static<typeof BulkEnqueueBody>;

export const BulkEnqueueResponse = Type.Object({
  success: Type.Boolean(),
  run_id: Type.String(),
  job_id: Type.String(),
  queued: Count,
  status: RunStatusSchema,
});

export const BulkEnqueueConflict = Type.Object({
  success: Type.Literal(false),
  error: Type.String(),
  message: Type.String(),
  code: Type.String(),
  active_job_id: Type.String(),
  active_job_status: Type.String(),
  active_run_id: Type.String(),
});

const statusFields = {
  job_id: Type.String(),
  run_id: Type.String(),
  status: RunStatusSchema,
  total: Count,
  processed: Count,
  success: Count,
  failed: Count,
  cancelled: Count,
  in_progress: Count,
  queued: Count,
  progress_pct: Type.Number(),
  can_cancel: Type.Boolean(),
  cancel_requested: Type.Boolean(),
  concurrency: Type.Integer(),
  created_at: IsoTime,
  started_at: Nullable(IsoTime),
  completed_at: Nullable(IsoTime),
};

export const LegacyStatusResponse = Type.Object(statusFields);

export const LegacyActiveResponse = Type.Object({
  ok: Type.Boolean(),
  active: Type.Boolean(),
  job_id: Nullable(Type.String()),
  run_id: Nullable(Type.String()),
  status: Nullable(RunStatusSchema),
  total: Count,
  processed: Count,
  success: Count,
  failed: Count,
  cancelled: Count,
  in_progress: Count,
  queued: Count,
  queue_len: Count,
  progress_pct: Type.Number(),
  can_cancel: Type.Boolean(),
  cancel_requested: Type.Boolean(),
  concurrency: Nullable(Type.Integer()),
  created_at: Nullable(IsoTime),
  started_at: Nullable(IsoTime),
  completed_at: Nullable(IsoTime),
  last_activity: Nullable(IsoTime),
});

export const CountsResponse = Type.Object({
  active_total: Count,
  active_outbound: Count,
  max_total: Count,
  max_outbound: Count,
});
