/** Kysely table types, mirroring migrations/*.sql. Both drivers return these JS types. */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { JobStatus } from '../domain/job-state.ts';
import type { RunStatus } from '../domain/run-state.ts';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<Record<string, unknown>, string, string>;

export type Role = 'owner' | 'admin' | 'agent' | 'viewer';

export interface BusinessesTable {
  id: string;
  name: string;
  max_concurrent_calls: Generated<number>;
  caller_id: string | null;
  timezone: Generated<string>;
  default_region: Generated<string>;
  call_handler_url: string | null;
  ring_timeout_seconds: Generated<number>;
  call_time_limit_seconds: Generated<number>;
  machine_detection: Generated<boolean>;
  provider_credentials_ref: string | null;
  /** Calls in dialing, ringing or in_call, kept by triggers on jobs (migration 005). */
  live_calls: ColumnType<number, never, never>;
  created_at: CreatedAt;
}

export interface UsersTable {
  id: string;
  business_id: string;
  email: string;
  name: string | null;
  role: Role;
  created_at: CreatedAt;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  business_id: string;
  token_sha256: string;
  prefix: string;
  name: string | null;
  created_at: CreatedAt;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export interface LeadsTable {
  id: string;
  business_id: string;
  phone_e164: string;
  name: string | null;
  external_id: string | null;
  attributes: ColumnType<Record<string, unknown>, string | undefined, string>;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

type Counter = ColumnType<number, never, never>;

export interface RunsTable {
  id: string;
  business_id: string;
  created_by_user_id: string | null;
  name: string | null;
  status: Generated<RunStatus>;
  concurrency: Generated<number>;
  total_jobs: Counter;
  queued_count: Counter;
  dialing_count: Counter;
  ringing_count: Counter;
  in_call_count: Counter;
  completed_count: Counter;
  no_answer_count: Counter;
  busy_count: Counter;
  failed_count: Counter;
  cancelled_count: Counter;
  unknown_count: Counter;
  cursor_position: Counter;
  cancel_requested: Generated<boolean>;
  cancel_requested_at: Timestamp | null;
  cancel_requested_by: string | null;
  stop_requested: Generated<boolean>;
  stop_requested_at: Timestamp | null;
  stop_requested_by: string | null;
  locked_by_worker: string | null;
  lock_token: string | null;
  lock_ts: Timestamp | null;
  created_at: CreatedAt;
  started_at: Timestamp | null;
  ended_at: Timestamp | null;
  last_error: string | null;
}

export interface JobsTable {
  id: string;
  run_id: string;
  business_id: string;
  lead_id: string;
  position: number;
  phone_e164: string;
  status: Generated<JobStatus>;
  attempt_id: string | null;
  provider_call_id: string | null;
  outcome: string | null;
  answered_by: string | null;
  error: string | null;
  dial_started_at: Timestamp | null;
  answered_at: Timestamp | null;
  ended_at: Timestamp | null;
  duration_seconds: number | null;
  created_at: CreatedAt;
}

export interface AuditEventsTable {
  id: string;
  business_id: string | null;
  actor_type: 'user' | 'worker' | 'admin' | 'system';
  actor_id: string;
  action: string;
  target_type: string;
  target_id: string;
  data: Json;
  at: CreatedAt;
}

export interface SecurityEventsTable {
  id: string;
  kind: string;
  actor_user_id: string | null;
  actor_business_id: string | null;
  target_type: string;
  target_id: string;
  owner_business_id: string | null;
  route: string | null;
  at: CreatedAt;
}

export interface SchemaMigrationsTable {
  name: string;
  applied_at: CreatedAt;
}

export interface Database {
  businesses: BusinessesTable;
  users: UsersTable;
  api_tokens: ApiTokensTable;
  leads: LeadsTable;
  runs: RunsTable;
  jobs: JobsTable;
  audit_events: AuditEventsTable;
  security_events: SecurityEventsTable;
  ocq_migrations: SchemaMigrationsTable;
}

export type Business = Selectable<BusinessesTable>;
export type User = Selectable<UsersTable>;
export type ApiToken = Selectable<ApiTokensTable>;
export type Lead = Selectable<LeadsTable>;
export type NewLead = Insertable<LeadsTable>;
export type Run = Selectable<RunsTable>;
export type Job = Selectable<JobsTable>;
export type JobUpdate = Updateable<JobsTable>;
export type AuditEvent = Selectable<AuditEventsTable>;
