/**
 * How a simulated call moves, on timers (real ms; a Twilio second lasts `secondMs`):
 *
 *     create → queued ─(CPS queue)→ initiated → ringing ─ringMs→ in-progress ─talkMs→ completed
 *                                       │            └─ busy / no-answer (at ringMs, or at Timeout)
 *                                       └─ failed (at ringMs, never rings)
 *
 * An answer that would come after `Timeout` becomes no-answer at `Timeout`; talk is cut at
 * `TimeLimit`. A phase of zero length moves on in the same tick. Hang-up: `canceled` ends a queued or ringing call; `completed` ends any live call
 * (a not-yet-answered one ends as `canceled`).
 */
import { isFinalCallStatus, type ProviderCallStatus } from '../port.ts';
import type { CallbackDispatcher } from './callbacks.ts';
import type { CallRecord } from './record.ts';
import type { CallbackEvent, SimCall } from './sim-call.ts';
import { amdCallbackParams, statusCallbackParams } from './twilio-shapes.ts';

type FinalStatus = 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';

/** What the lifecycle needs from the simulator. */
export interface LifecycleDeps {
  secondMs: number;
  /** Calls per Twilio second leaving each account's queue; undefined or 0: no queue. */
  cps: number | undefined;
  callbacks: CallbackDispatcher;
  record: CallRecord;
  /** Tells listeners the call changed (`ended` on its final status). */
  changed(call: SimCall, ended: boolean): void;
}

/** Drives calls from create to final status, and sends their callbacks. */
export class CallLifecycle {
  private readonly queueFreeAt = new Map<string, number>();
  private stopped = false;

  constructor(private readonly deps: LifecycleDeps) {}

  /** Puts a freshly created call in its account's queue; it leaves on a timer even with no queue, so the create answers first. */
  start(call: SimCall): void {
    if (this.stopped) return;
    call.timer = setTimeout(() => this.initiate(call), this.queueDelay(call.accountSid));
  }

  /** The hang-up (`Status=completed|canceled`). Ended calls stay as they are. */
  hangUp(call: SimCall, status: 'completed' | 'canceled'): void {
    if (isFinalCallStatus(call.status)) return;
    if (call.status === 'in-progress') {
      if (status === 'completed') this.finish(call, 'completed');
      return; // `canceled` does not end an answered call, as with Twilio
    }
    this.finish(call, 'canceled');
  }

  /** Cancels the pending transition of each call, silently. */
  forget(calls: Iterable<SimCall>): void {
    for (const call of calls) clearTimeout(call.timer);
    this.queueFreeAt.clear();
  }

  /** Stops for good: no transition runs afterwards. */
  stop(calls: Iterable<SimCall>): void {
    this.stopped = true;
    this.forget(calls);
  }

  /** With a CPS limit, calls leave each account's queue one interval apart. */
  private queueDelay(accountSid: string): number {
    const { cps, secondMs } = this.deps;
    if (!cps || cps <= 0) return 0;
    const now = Date.now();
    const leaveAt = Math.max(now, this.queueFreeAt.get(accountSid) ?? 0);
    this.queueFreeAt.set(accountSid, leaveAt + secondMs / cps);
    return leaveAt - now;
  }

  /** Runs `step` after `delayMs`; a zero-length phase (a script with no ring or talk time) moves on at once, without a timer. */
  private schedule(call: SimCall, delayMs: number, step: () => void): void {
    clearTimeout(call.timer);
    call.timer = undefined;
    if (this.stopped) return;
    if (delayMs <= 0) step();
    else call.timer = setTimeout(step, delayMs);
  }

  /**
   * Moves the call to `status` and sends the callback for `event`. The callback is queued before
   * the record and the listeners hear of the change, so `idle()` can never slip in between.
   */
  private transition(call: SimCall, status: ProviderCallStatus, event: CallbackEvent): void {
    call.status = status;
    call.dateUpdated = new Date();
    this.fire(call, event, status);
    const final = isFinalCallStatus(status);
    this.deps.record.callStatus(call, final);
    this.deps.changed(call, final);
  }

  private initiate(call: SimCall): void {
    const { plan } = call;
    call.startTime = new Date();
    call.dateUpdated = call.startTime;
    // The resource stays `queued` until it rings; `initiated` exists only as a callback.
    this.fire(call, 'initiated', 'initiated');
    if (plan.outcome === 'failed') {
      this.schedule(call, plan.ringMs, () => this.finish(call, 'failed'));
      return;
    }
    this.transition(call, 'ringing', 'ringing');
    const timeoutMs = call.timeoutSeconds * this.deps.secondMs;
    if (plan.outcome === 'answered' && plan.ringMs <= timeoutMs) {
      this.schedule(call, plan.ringMs, () => this.answer(call));
    } else if (plan.outcome === 'answered') {
      this.schedule(call, timeoutMs, () => this.finish(call, 'no-answer'));
    } else {
      const outcome = plan.outcome;
      this.schedule(call, Math.min(plan.ringMs, timeoutMs), () => this.finish(call, outcome));
    }
  }

  private answer(call: SimCall): void {
    call.answeredAt = new Date();
    if (call.machineDetection) call.answeredBy = call.plan.answeredBy;
    this.transition(call, 'in-progress', 'answered');
    if (call.asyncAmdCallback) {
      void this.deps.callbacks.enqueue(call, call.asyncAmdCallback, 'amd', amdCallbackParams(call));
    }
    const talkMs = Math.min(call.plan.talkMs, call.timeLimitSeconds * this.deps.secondMs);
    this.schedule(call, talkMs, () => this.finish(call, 'completed', talkMs));
  }

  /**
   * Ends the call. `talkMs` is the scripted talk time of a call that ran its course, so its
   * duration does not depend on timer jitter; a hung-up call reports the time it really talked.
   */
  private finish(call: SimCall, status: FinalStatus, talkMs?: number): void {
    clearTimeout(call.timer);
    call.timer = undefined;
    call.endTime = new Date();
    const talked = talkMs ?? (call.answeredAt ? call.endTime.getTime() - call.answeredAt.getTime() : 0);
    call.durationSeconds = status === 'completed' ? Math.round(talked / this.deps.secondMs) : 0;
    // The final callback is always sent, even when `completed` was not asked for.
    this.transition(call, status, 'completed');
  }

  /** Sends the callback for `event` if the call asked for it (the final one always). */
  private fire(call: SimCall, event: CallbackEvent, callStatus: string): void {
    if (!call.statusCallback) return;
    if (event !== 'completed' && !call.events.has(event)) return;
    const params = statusCallbackParams(call, callStatus, call.nextSequence++, new Date());
    void this.deps.callbacks.enqueue(call, call.statusCallback, callStatus, params);
  }
}
