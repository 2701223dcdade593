/**
 * Cancel and stop, as seen by whoever receives the request (an API process, the CLI).
 *
 * Semantics (written here, where they are implemented):
 * - **Cancel (graceful).** The flag is committed first. From that commit on no new dial leaves:
 *   the worker's dial commit locks the run row and re-checks the flags (store/dispatch.ts), so
 *   it serialises against this write. Queued jobs become `cancelled`. Calls already live finish
 *   and are recorded. The run becomes `cancelled` when no call is live.
 * - **Stop (immediate).** As cancel, and every live call is hung up through the provider. The
 *   run becomes `stopped` when the last call's final status arrives.
 * - Both are idempotent, and both work with no worker alive: this side does all of it itself.
 *   A worker that holds the run is told at once (a pushed run event) and re-reads the flags
 *   before every dial anyway.
 * - The response is sent only once every dial committed before the request has reached the
 *   provider (its call id is stored), so "no dial leaves after the response" holds.
 */
import type { Run } from '../store/schema.ts';
import type { Actor } from '../store/audit.ts';

export interface StopResult {
  run: Run;
  /** Queued jobs this request cancelled. */
  cancelledJobs: number;
}

export interface RunControl {
  /** @throws NotFoundError for a missing or foreign run; ConflictError `run_already_ended` (details.status) for an ended run. */
  cancel(businessId: string, runId: string, actor: Actor): Promise<StopResult>;
  /** @throws NotFoundError for a missing or foreign run; ConflictError `run_already_ended` (details.status) for an ended run. */
  stop(businessId: string, runId: string, actor: Actor): Promise<StopResult>;
}
