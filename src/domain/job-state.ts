/**
 * The job (one lead in one run) state machine. Pure; the store makes each transition a
 * conditional UPDATE from {@link jobSourcesFor}.
 *
 *   queued ──dial──▶ dialing ──ring──▶ ringing ──answer──▶ in_call
 *     │                 │                 │                   │
 *     │                 └───── end(outcome) from any live state ┴─▶ completed | no_answer | busy | failed | cancelled
 *     ├──cancel──▶ cancelled          (never dialled)
 *     └──reject──▶ failed             (the provider refused the dial; nothing is live)
 *   dialing ──lost──▶ unknown         (the process died between committing the dial and learning the
 *                                      provider's answer, and the provider has no record: never redialled)
 *
 * `dialing` is committed *before* the provider is called, with a fresh attempt id: that record is
 * what makes a dial idempotent across crashes. Progress events only move forward, so a duplicate
 * or reordered callback (a `ringing` after `completed`) changes nothing.
 */
export const JOB_STATUSES = [
  'queued',
  'dialing',
  'ringing',
  'in_call',
  'completed',
  'no_answer',
  'busy',
  'failed',
  'cancelled',
  'unknown',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const LIVE_JOB_STATUSES = ['dialing', 'ringing', 'in_call'] as const satisfies readonly JobStatus[];
export type LiveJobStatus = (typeof LIVE_JOB_STATUSES)[number];

export const TERMINAL_JOB_STATUSES = [
  'completed',
  'no_answer',
  'busy',
  'failed',
  'cancelled',
  'unknown',
] as const satisfies readonly JobStatus[];
export type TerminalJobStatus = (typeof TERMINAL_JOB_STATUSES)[number];

/** How a call ended, as the job records it. */
export type CallOutcome = 'completed' | 'no_answer' | 'busy' | 'failed' | 'cancelled';

export type JobEvent =
  | { type: 'dial' }
  | { type: 'ring' }
  | { type: 'answer' }
  | { type: 'end'; outcome: CallOutcome }
  | { type: 'cancel' }
  | { type: 'reject' }
  | { type: 'lost' };

export const JOB_EVENT_TYPES = ['dial', 'ring', 'answer', 'end', 'cancel', 'reject', 'lost'] as const;

const jobSources: Record<JobEvent['type'], readonly JobStatus[]> = {
  dial: ['queued'],
  ring: ['dialing'],
  answer: ['dialing', 'ringing'],
  end: LIVE_JOB_STATUSES,
  cancel: ['queued'],
  reject: ['dialing'],
  lost: ['dialing'],
};

/** The states an event may leave from: the store's `WHERE status IN (...)`. */
export function jobSourcesFor(event: JobEvent): readonly JobStatus[] {
  return jobSources[event.type];
}

export function jobTargetFor(event: JobEvent): JobStatus {
  switch (event.type) {
    case 'dial':
      return 'dialing';
    case 'ring':
      return 'ringing';
    case 'answer':
      return 'in_call';
    case 'end':
      return event.outcome;
    case 'cancel':
      return 'cancelled';
    case 'reject':
      return 'failed';
    case 'lost':
      return 'unknown';
  }
}

/** The next state, or null when the event does not apply from `current`. */
export function nextJobStatus(current: JobStatus, event: JobEvent): JobStatus | null {
  return jobSourcesFor(event).includes(current) ? jobTargetFor(event) : null;
}

export function isTerminalJob(status: JobStatus): status is TerminalJobStatus {
  return (TERMINAL_JOB_STATUSES as readonly JobStatus[]).includes(status);
}

export function isLiveJob(status: JobStatus): status is LiveJobStatus {
  return (LIVE_JOB_STATUSES as readonly JobStatus[]).includes(status);
}
