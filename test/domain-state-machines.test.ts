/**
 * Walks every (state, event) pair of the run and job state machines against tables written out
 * here by hand from the specification (issue 2), not derived from the code under test.
 */
import { describe, expect, it } from 'vitest';
import {
  ACTIVE_RUN_STATUSES,
  RUN_EVENTS,
  RUN_STATUSES,
  TERMINAL_RUN_STATUSES,
  isTerminalRun,
  nextRunStatus,
  runSourcesFor,
  runTargetFor,
  type RunEvent,
  type RunStatus,
} from '../src/domain/run-state.ts';
import {
  JOB_EVENT_TYPES,
  JOB_STATUSES,
  LIVE_JOB_STATUSES,
  TERMINAL_JOB_STATUSES,
  isLiveJob,
  isTerminalJob,
  jobSourcesFor,
  jobTargetFor,
  nextJobStatus,
  type CallOutcome,
  type JobEvent,
  type JobStatus,
} from '../src/domain/job-state.ts';

// ---------------------------------------------------------------------------------------------
// Run machine. `_` = the event does not apply (nothing changes).
// ---------------------------------------------------------------------------------------------
const _ = null;

const RUN_STATES_SPEC = ['pending', 'running', 'completed', 'cancelled', 'stopped', 'failed'] as const;
const RUN_EVENTS_SPEC = ['start', 'complete', 'fail', 'cancel', 'stop'] as const;

const RUN_TABLE: Record<(typeof RUN_STATES_SPEC)[number], Record<(typeof RUN_EVENTS_SPEC)[number], RunStatus | null>> = {
  //          start       complete      fail       cancel        stop
  pending: { start: 'running', complete: _, fail: 'failed', cancel: 'cancelled', stop: 'stopped' },
  running: { start: _, complete: 'completed', fail: 'failed', cancel: 'cancelled', stop: 'stopped' },
  completed: { start: _, complete: _, fail: _, cancel: _, stop: _ },
  cancelled: { start: _, complete: _, fail: _, cancel: _, stop: _ },
  stopped: { start: _, complete: _, fail: _, cancel: _, stop: _ },
  failed: { start: _, complete: _, fail: _, cancel: _, stop: _ },
};

const RUN_TERMINAL_SPEC: readonly string[] = ['completed', 'cancelled', 'stopped', 'failed'];

describe('run state machine', () => {
  it('has exactly the specified states and events (so the walk below covers every pair)', () => {
    expect([...RUN_STATUSES].sort()).toEqual([...RUN_STATES_SPEC].sort());
    expect([...RUN_EVENTS].sort()).toEqual([...RUN_EVENTS_SPEC].sort());
    expect([...TERMINAL_RUN_STATUSES].sort()).toEqual([...RUN_TERMINAL_SPEC].sort());
    expect([...ACTIVE_RUN_STATUSES].sort()).toEqual(['pending', 'running']);
  });

  const pairs = RUN_STATES_SPEC.flatMap((state) => RUN_EVENTS_SPEC.map((event) => [state, event, RUN_TABLE[state][event]] as const));
  it('the walk has 6 x 5 = 30 pairs', () => {
    expect(pairs).toHaveLength(30);
  });

  it.each(pairs)('%s --%s--> %s', (state, event, expected) => {
    expect(nextRunStatus(state, event)).toBe(expected);
    // The store's conditional UPDATE uses sources/target: they must say the same thing.
    expect(runSourcesFor(event).includes(state)).toBe(expected !== null);
    if (expected !== null) expect(runTargetFor(event)).toBe(expected);
  });

  it.each(RUN_STATES_SPEC)('isTerminalRun(%s) follows the spec', (state) => {
    expect(isTerminalRun(state)).toBe(RUN_TERMINAL_SPEC.includes(state));
  });

  it('a terminal state is final: no event leaves completed, cancelled, stopped or failed', () => {
    for (const state of RUN_TERMINAL_SPEC as RunStatus[]) {
      for (const event of RUN_EVENTS_SPEC) expect(nextRunStatus(state, event), `${state} + ${event}`).toBeNull();
    }
  });

  it('the old bugs cannot happen: completed over failed, cancelled over stopped', () => {
    expect(nextRunStatus('failed', 'complete')).toBeNull();
    expect(nextRunStatus('stopped', 'cancel')).toBeNull();
    expect(runSourcesFor('complete')).not.toContain('failed');
    expect(runSourcesFor('cancel')).not.toContain('stopped');
  });

  it('every event has at least one source, and no source is terminal', () => {
    for (const event of RUN_EVENTS_SPEC) {
      const sources = runSourcesFor(event);
      expect(sources.length).toBeGreaterThan(0);
      for (const s of sources) expect(RUN_TERMINAL_SPEC).not.toContain(s);
    }
  });

  it('every state is reachable from pending', () => {
    const seen = new Set<RunStatus>(['pending']);
    const frontier: RunStatus[] = ['pending'];
    while (frontier.length > 0) {
      const s = frontier.pop()!;
      for (const e of RUN_EVENTS as readonly RunEvent[]) {
        const n = nextRunStatus(s, e);
        if (n !== null && !seen.has(n)) {
          seen.add(n);
          frontier.push(n);
        }
      }
    }
    expect([...seen].sort()).toEqual([...RUN_STATES_SPEC].sort());
  });
});

// ---------------------------------------------------------------------------------------------
// Job machine.
// ---------------------------------------------------------------------------------------------
const JOB_STATES_SPEC = ['queued', 'dialing', 'ringing', 'in_call', 'completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown'] as const;
type SpecJobState = (typeof JOB_STATES_SPEC)[number];
const OUTCOMES: readonly CallOutcome[] = ['completed', 'no_answer', 'busy', 'failed', 'cancelled'];

/** Every concrete event: `end` once per outcome. */
const JOB_EVENTS_SPEC: readonly { key: string; event: JobEvent }[] = [
  { key: 'dial', event: { type: 'dial' } },
  { key: 'ring', event: { type: 'ring' } },
  { key: 'answer', event: { type: 'answer' } },
  ...OUTCOMES.map((outcome) => ({ key: `end:${outcome}`, event: { type: 'end', outcome } as JobEvent })),
  { key: 'cancel', event: { type: 'cancel' } },
  { key: 'reject', event: { type: 'reject' } },
  { key: 'lost', event: { type: 'lost' } },
];

type JobRow = Record<string, JobStatus | null>;
const none: JobRow = {
  dial: _, ring: _, answer: _,
  'end:completed': _, 'end:no_answer': _, 'end:busy': _, 'end:failed': _, 'end:cancelled': _,
  cancel: _, reject: _, lost: _,
};
/** A live call may end with any outcome. */
const ends: JobRow = {
  'end:completed': 'completed', 'end:no_answer': 'no_answer', 'end:busy': 'busy', 'end:failed': 'failed', 'end:cancelled': 'cancelled',
};

const JOB_TABLE: Record<SpecJobState, JobRow> = {
  // Never dialled: it can be dialled, or cancelled. Nothing else (no callback can exist yet).
  queued: { ...none, dial: 'dialing', cancel: 'cancelled' },
  // Dial committed: the provider may ring, answer (no ringing callback), end it, refuse it, or
  // the process died and the provider has no record (unknown).
  dialing: { ...none, ring: 'ringing', answer: 'in_call', ...ends, reject: 'failed', lost: 'unknown' },
  ringing: { ...none, answer: 'in_call', ...ends },
  in_call: { ...none, ...ends },
  completed: none,
  no_answer: none,
  busy: none,
  failed: none,
  cancelled: none,
  unknown: none,
};

const JOB_TERMINAL_SPEC: readonly string[] = ['completed', 'no_answer', 'busy', 'failed', 'cancelled', 'unknown'];
const JOB_LIVE_SPEC: readonly string[] = ['dialing', 'ringing', 'in_call'];
/** Progress order: a transition must strictly increase the rank. */
const RANK: Record<SpecJobState, number> = {
  queued: 0, dialing: 1, ringing: 2, in_call: 3,
  completed: 4, no_answer: 4, busy: 4, failed: 4, cancelled: 4, unknown: 4,
};

describe('job state machine', () => {
  it('has exactly the specified states and event types', () => {
    expect([...JOB_STATUSES].sort()).toEqual([...JOB_STATES_SPEC].sort());
    expect([...JOB_EVENT_TYPES].sort()).toEqual(['answer', 'cancel', 'dial', 'end', 'lost', 'reject', 'ring']);
    expect([...TERMINAL_JOB_STATUSES].sort()).toEqual([...JOB_TERMINAL_SPEC].sort());
    expect([...LIVE_JOB_STATUSES].sort()).toEqual([...JOB_LIVE_SPEC].sort());
    // The table itself covers every event key for every state.
    for (const state of JOB_STATES_SPEC) expect(Object.keys(JOB_TABLE[state]).sort()).toEqual(JOB_EVENTS_SPEC.map((e) => e.key).sort());
  });

  const pairs = JOB_STATES_SPEC.flatMap((state) =>
    JOB_EVENTS_SPEC.map(({ key, event }) => [state, key, JOB_TABLE[state][key] ?? null, event] as const),
  );
  it('the walk has 10 states x 11 events = 110 pairs', () => {
    expect(pairs).toHaveLength(110);
  });

  it.each(pairs)('%s --%s--> %s', (state, key, expected, event) => {
    expect(nextJobStatus(state, event), `${state} + ${key}`).toBe(expected);
    expect(jobSourcesFor(event).includes(state)).toBe(expected !== null);
    if (expected !== null) expect(jobTargetFor(event)).toBe(expected);
  });

  it.each(JOB_STATES_SPEC)('isTerminalJob / isLiveJob(%s) follow the spec', (state) => {
    expect(isTerminalJob(state)).toBe(JOB_TERMINAL_SPEC.includes(state));
    expect(isLiveJob(state)).toBe(JOB_LIVE_SPEC.includes(state));
  });

  it('terminal states are final', () => {
    for (const state of JOB_TERMINAL_SPEC as JobStatus[]) {
      for (const { key, event } of JOB_EVENTS_SPEC) expect(nextJobStatus(state, event), `${state} + ${key}`).toBeNull();
    }
  });

  it('progress only moves forward: a late or duplicate callback changes nothing', () => {
    for (const state of JOB_STATES_SPEC) {
      for (const { key, event } of JOB_EVENTS_SPEC) {
        const next = nextJobStatus(state, event);
        if (next !== null) expect(RANK[next as SpecJobState], `${state} + ${key} -> ${next}`).toBeGreaterThan(RANK[state]);
      }
    }
    expect(nextJobStatus('completed', { type: 'ring' })).toBeNull();
    expect(nextJobStatus('in_call', { type: 'ring' })).toBeNull();
    expect(nextJobStatus('ringing', { type: 'ring' })).toBeNull();
    expect(nextJobStatus('in_call', { type: 'answer' })).toBeNull();
    expect(nextJobStatus('busy', { type: 'end', outcome: 'completed' })).toBeNull();
    expect(nextJobStatus('completed', { type: 'dial' })).toBeNull();
  });

  it('a dial is never repeated: only a queued job may be dialled, and unknown is never redialled', () => {
    expect(jobSourcesFor({ type: 'dial' })).toEqual(['queued']);
    expect(nextJobStatus('unknown', { type: 'dial' })).toBeNull();
  });

  it('a live call cannot be "cancelled" as if it never rang: cancel applies to queued only', () => {
    for (const state of JOB_LIVE_SPEC as JobStatus[]) expect(nextJobStatus(state, { type: 'cancel' })).toBeNull();
  });
});
