/**
 * The run state machine. Pure: the store turns each transition into a conditional UPDATE
 * (`WHERE status IN (allowed sources)`), so a racing or illegal transition changes nothing.
 *
 *   pending ──start──▶ running ──complete──▶ completed
 *      │                  ├────fail────────▶ failed
 *      │                  ├────cancel──────▶ cancelled   (graceful: live calls finish)
 *      │                  └────stop────────▶ stopped     (immediate: live calls hung up)
 *      ├──cancel──▶ cancelled
 *      ├──stop────▶ stopped
 *      └──fail────▶ failed   (cannot start: e.g. the business has no caller id)
 *
 * A terminal state is final. The old system let a live worker write `completed` over `failed`
 * and `cancelled` over `stopped`; here no event leaves a terminal state.
 */
export const RUN_STATUSES = ['pending', 'running', 'completed', 'cancelled', 'stopped', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const RUN_EVENTS = ['start', 'complete', 'fail', 'cancel', 'stop'] as const;
export type RunEvent = (typeof RUN_EVENTS)[number];

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['completed', 'cancelled', 'stopped', 'failed'];
export const ACTIVE_RUN_STATUSES: readonly RunStatus[] = ['pending', 'running'];

const runTransitions: Record<RunEvent, { from: readonly RunStatus[]; to: RunStatus }> = {
  start: { from: ['pending'], to: 'running' },
  complete: { from: ['running'], to: 'completed' },
  fail: { from: ['pending', 'running'], to: 'failed' },
  cancel: { from: ['pending', 'running'], to: 'cancelled' },
  stop: { from: ['pending', 'running'], to: 'stopped' },
};

/** The states an event may leave from: the store's `WHERE status IN (...)`. */
export function runSourcesFor(event: RunEvent): readonly RunStatus[] {
  return runTransitions[event].from;
}

export function runTargetFor(event: RunEvent): RunStatus {
  return runTransitions[event].to;
}

/** The next state, or null when the event does not apply (the caller learns nothing changed). */
export function nextRunStatus(current: RunStatus, event: RunEvent): RunStatus | null {
  const t = runTransitions[event];
  return t.from.includes(current) ? t.to : null;
}

export function isTerminalRun(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}
