/**
 * Run, job and audit rows → JSON, for every run route, the old system's paths and SSE. One
 * module, so a run looks the same wherever it is read. Timestamps are ISO 8601 with zone: the old
 * UI showed ghost queues from naive timestamps.
 */
import { ACTIVE_RUN_STATUSES } from '../domain/run-state.ts';
import type { JobWithLead } from '../store/runs.ts';
import type { AuditEvent, Run } from '../store/schema.ts';
import type { AuditEventJson, JobJson, RunJson } from './schemas.ts';

const iso = (value: Date | null): string | null => (value ? value.toISOString() : null);

export function liveCount(run: Run): number {
  return run.dialing_count + run.ringing_count + run.in_call_count;
}

/** Whole percent of jobs in a terminal state; 100 only when every job is. */
export function progressPercent(run: Run): number {
  return run.total_jobs === 0 ? 0 : Math.floor((run.cursor_position * 100) / run.total_jobs);
}

export function isActive(run: Run): boolean {
  return ACTIVE_RUN_STATUSES.includes(run.status);
}

export function canCancel(run: Run): boolean {
  return isActive(run) && !run.cancel_requested && !run.stop_requested;
}

export function serializeRun(run: Run): RunJson {
  return {
    id: run.id,
    status: run.status,
    name: run.name,
    concurrency: run.concurrency,
    total: run.total_jobs,
    queued: run.queued_count,
    in_progress: liveCount(run),
    dialing: run.dialing_count,
    ringing: run.ringing_count,
    in_call: run.in_call_count,
    completed: run.completed_count,
    failed: run.failed_count,
    no_answer: run.no_answer_count,
    busy: run.busy_count,
    cancelled: run.cancelled_count,
    unknown: run.unknown_count,
    cursor_position: run.cursor_position,
    progress_pct: progressPercent(run),
    cancel_requested: run.cancel_requested,
    stop_requested: run.stop_requested,
    can_cancel: canCancel(run),
    locked_by_worker: run.locked_by_worker,
    lock_ts: iso(run.lock_ts),
    created_by_user_id: run.created_by_user_id,
    created_at: run.created_at.toISOString(),
    started_at: iso(run.started_at),
    ended_at: iso(run.ended_at),
    last_error: run.last_error,
    run_id: run.id,
    total_leads: run.total_jobs,
    completed_at: iso(run.ended_at),
  };
}

export function serializeJob(job: JobWithLead): JobJson {
  return {
    id: job.id,
    run_id: job.run_id,
    position: job.position,
    lead_id: job.lead_id,
    phone: job.phone_e164,
    name: job.lead_name,
    status: job.status,
    outcome: job.outcome,
    answered_by: job.answered_by,
    provider_call_id: job.provider_call_id,
    attempt_id: job.attempt_id,
    dial_started_at: iso(job.dial_started_at),
    answered_at: iso(job.answered_at),
    ended_at: iso(job.ended_at),
    duration_seconds: job.duration_seconds,
    error: job.error,
  };
}

export function serializeAuditEvent(event: AuditEvent): AuditEventJson {
  return {
    id: event.id,
    at: event.at.toISOString(),
    actor_type: event.actor_type,
    actor_id: event.actor_id,
    action: event.action,
    target_type: event.target_type,
    target_id: event.target_id,
    data: event.data,
  };
}

/**
 * The old `/api/outbound_calls/jobs/<id>/status` body (`job_id` is the run id). The old system
 * knew only success and failure: `failed` here counts every dialled call that did not complete
 * (failed, no answer, busy, unknown); `processed` is every job in a terminal state.
 */
export function serializeLegacyStatus(run: Run) {
  return {
    job_id: run.id,
    run_id: run.id,
    status: run.status,
    total: run.total_jobs,
    processed: run.cursor_position,
    success: run.completed_count,
    failed: run.failed_count + run.no_answer_count + run.busy_count + run.unknown_count,
    cancelled: run.cancelled_count,
    in_progress: liveCount(run),
    queued: run.queued_count,
    progress_pct: progressPercent(run),
    can_cancel: canCancel(run),
    cancel_requested: run.cancel_requested || run.stop_requested,
    concurrency: run.concurrency,
    created_at: run.created_at.toISOString(),
    started_at: iso(run.started_at),
    completed_at: iso(run.ended_at),
  };
}

export type LegacyStatusJson = ReturnType<typeof serializeLegacyStatus>;

/** The old `/api/outbound_calls/jobs/active` body: always the same fields, nulls when idle. */
export function serializeLegacyActive(run: Run | undefined) {
  if (!run) {
    return {
      ok: true,
      active: false,
      job_id: null,
      run_id: null,
      status: null,
      total: 0,
      processed: 0,
      success: 0,
      failed: 0,
      cancelled: 0,
      in_progress: 0,
      queued: 0,
      queue_len: 0,
      progress_pct: 0,
      can_cancel: false,
      cancel_requested: false,
      concurrency: null,
      created_at: null,
      started_at: null,
      completed_at: null,
      last_activity: null,
    };
  }
  const status = serializeLegacyStatus(run);
  return {
    ok: true,
    active: true,
    ...status,
    queue_len: run.queued_count,
    // The worker's lease heartbeat is the freshest sign of life; before a worker took it, creation.
    last_activity: iso(run.lock_ts ?? run.started_at ?? run.created_at),
  };
}
