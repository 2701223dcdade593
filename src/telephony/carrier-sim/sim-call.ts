/** One simulated call's state, and the read-only view tests and events get of it. */
import type { ProviderCallStatus } from '../port.ts';
import type { CallPlan } from './script.ts';

/** The status-callback events a call can ask for (`StatusCallbackEvent`). */
export type CallbackEvent = 'initiated' | 'ringing' | 'answered' | 'completed';

/** A simulated call (mutable, owned by the simulator). */
export interface SimCall {
  sid: string;
  accountSid: string;
  to: string;
  from: string;
  /** The TwiML URL (never fetched: the simulator plays the script instead). */
  url: string;
  statusCallback: string | undefined;
  events: ReadonlySet<CallbackEvent>;
  timeoutSeconds: number;
  timeLimitSeconds: number;
  machineDetection: boolean;
  /** Machine detection runs asynchronously: the verdict goes to `asyncAmdCallback`. */
  asyncAmd: boolean;
  asyncAmdCallback: string | undefined;
  plan: CallPlan;
  /** The resource status, as `GET .../Calls/{sid}.json` shows it. */
  status: ProviderCallStatus;
  dateCreated: Date;
  dateUpdated: Date;
  startTime: Date | undefined;
  answeredAt: Date | undefined;
  endTime: Date | undefined;
  durationSeconds: number | undefined;
  answeredBy: string | undefined;
  /** Next `SequenceNumber` for this call's callbacks. */
  nextSequence: number;
  /** The pending transition. */
  timer: NodeJS.Timeout | undefined;
  /** Callbacks go out one after another: each waits for the previous delivery. */
  callbackChain: Promise<void>;
}

/** A snapshot of a simulated call. */
export interface SimCallView {
  sid: string;
  accountSid: string;
  to: string;
  from: string;
  status: ProviderCallStatus;
  /** What the script decided the far end does. */
  plannedOutcome: CallPlan['outcome'];
  dateCreated: string;
  startTime: string | undefined;
  endTime: string | undefined;
  durationSeconds: number | undefined;
  answeredBy: string | undefined;
}

/** The snapshot of `call`. */
export function viewOf(call: SimCall): SimCallView {
  return {
    sid: call.sid,
    accountSid: call.accountSid,
    to: call.to,
    from: call.from,
    status: call.status,
    plannedOutcome: call.plan.outcome,
    dateCreated: call.dateCreated.toISOString(),
    startTime: call.startTime?.toISOString(),
    endTime: call.endTime?.toISOString(),
    durationSeconds: call.durationSeconds,
    answeredBy: call.answeredBy,
  };
}
