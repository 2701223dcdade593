/**
 * Drives one leased run: reconcile, then dial its jobs in order while the business has slots,
 * and end it. One worker runs many drivers at once, so one long run never blocks another
 * business. A driver stops at once when its lease is lost (every write is fenced anyway).
 *
 * Waiting is pushed, not polled: a slot wait is woken by the slot pool, and "wait for a call to
 * end" is woken by run events (webhooks in any process). A slow safety poll backs both up.
 */
import { ProviderError, type Messages } from '../domain/errors.ts';
import { isTerminalRun } from '../domain/run-state.ts';
import { completeRun, failRun, loadBusinessForDispatch, readDispatchView, type DispatchView } from '../store/dispatch.ts';
import { finalizeRequestedRun } from '../store/run-flags.ts';
import type { LeaseHeld } from '../store/run-lease.ts';
import type { Business, Run } from '../store/schema.ts';
import { dialPlanFor, failReservedDial, hangUpLiveCalls, onCallProgress, placeReservedCall, reserveDial, type DialPlan, type DialTarget, type Reservation } from './call-life.ts';
import type { EngineContext } from './context.ts';
import { reconcileLiveCalls, type ReconcileScope } from './reconcile.ts';
import { publishRunEvent } from './run-events.ts';

const NO_CALLER_ID: Messages = {
  en: 'the business has no caller id: set one before starting a run',
  he: 'לעסק אין מספר מתקשר (caller id): יש להגדיר מספר לפני הפעלת הרצה',
};
const NO_CREDENTIALS: Messages = {
  en: 'no telephony provider credentials are configured for this business',
  he: 'לא הוגדרו פרטי גישה לספק הטלפוניה עבור עסק זה',
};

/** `last_error` carries the reason in both languages. */
export function bilingual(messages: Messages): string {
  return `${messages.en} | ${messages.he}`;
}

/** How often a driver re-reads its business's settings (cap, caller id, limits). */
const BUSINESS_REFRESH_MS = 5000;

export class RunDriver {
  readonly lease: LeaseHeld;
  readonly businessId: string;
  private readonly stopController = new AbortController();
  /** Aborted once a cancel or stop arrives: ends a slot wait and provider retries; the driver goes on to wind down. */
  private readonly interruptController = new AbortController();
  /** What ends a dial in progress: halt, cancel or stop. */
  private readonly dialSignal = AbortSignal.any([this.stopController.signal, this.interruptController.signal]);
  /**
   * The run's reserved attempts being sent, chained: each provider request waits for the one
   * before it, so the carrier receives them in job order, while the driver already reserves the
   * next (a freed slot does not wait for the previous dial's round trips). Never rejects.
   */
  private sending: Promise<void> = Promise.resolve();
  /** The provider refused a dial in a way every dial of this run would be (credentials, caller id). */
  private fatal: ProviderError | undefined;
  private wakeWaiter: (() => void) | null = null;
  private pendingWake = false;
  private business: Business | undefined;
  /** How this run dials, derived once per business read (null: no caller id or no credentials). */
  private plan: DialPlan | null = null;
  private businessReadAt = 0;
  private readonly hungUp = new Set<string>();
  private readonly lastChecked = new Map<string, number>();
  /**
   * Check every live call with the provider before the next dial: on takeover (what the previous
   * owner left in flight), and after a database outage (webhooks may have failed meanwhile).
   */
  private reconcileEverything: boolean;

  constructor(
    private readonly ctx: EngineContext,
    run: Run,
  ) {
    this.lease = { runId: run.id, token: run.lock_token! };
    this.businessId = run.business_id;
    // The run as leased: with no call live then, the previous owner left nothing in flight (its
    // later writes are fenced off), so there is nothing to reconcile before the first dial.
    this.reconcileEverything = run.dialing_count + run.ringing_count + run.in_call_count > 0;
  }

  /** Something changed for this run (a call ended, cancel, stop): re-read now. */
  wake(): void {
    this.pendingWake = true;
    this.wakeWaiter?.();
  }

  /** The database connection came back after an outage: status webhooks may have failed meanwhile. */
  reconcileSoon(): void {
    this.reconcileEverything = true;
    this.wake();
  }

  /** A cancel or stop was requested: give up the slot wait in progress and re-read at once. */
  interrupt(): void {
    if (!this.interruptController.signal.aborted) this.interruptController.abort(new Error('cancel or stop requested'));
    this.wake();
  }

  /** Lease lost or shutting down: stop before the next dial; aborts a slot wait. */
  halt(reason: string): void {
    if (!this.stopController.signal.aborted) this.stopController.abort(new Error(reason));
    this.wakeWaiter?.();
  }

  get halted(): boolean {
    return this.stopController.signal.aborted;
  }

  /**
   * The driver's loop; resolves when the run ended here or the driver was halted. A database
   * blip does not end it: the step is retried after a pause (every write is fenced, so a lease
   * lost meanwhile is simply noticed on the next read).
   */
  async drive(): Promise<void> {
    try {
      while (!this.halted) {
        try {
          if ((await this.step()) === 'done') return;
        } catch (error) {
          if (this.halted) return;
          this.ctx.logger.warn({ err: error, runId: this.lease.runId }, 'run step failed; retrying');
          await this.waitForEvent(null, 1000);
        }
      }
    } finally {
      // Committed dials still go out (and are recorded) before the driver is done; after a fatal
      // refusal the rest are failed unsent, and only then does the run fail, with no call live.
      await this.sending;
      if (this.fatal) await this.fail(this.fatal);
    }
  }

  /** One look at the run and, when it may dial, one dial. */
  private async step(): Promise<'done' | 'again'> {
    const business = await this.currentBusiness();
    if (!business) return 'done';
    const plan = this.plan;
    if (this.reconcileEverything && plan) {
      await reconcileLiveCalls(this.ctx, this.reconcileScope(plan), true);
      this.reconcileEverything = false;
    }
    const view = await readDispatchView(this.ctx.store.db, this.lease);
    if (!view) {
      this.ctx.logger.info({ runId: this.lease.runId }, 'lease lost; the driver stops');
      return 'done';
    }
    if (isTerminalRun(view.status)) return 'done'; // ended by someone else (a cancel with no live call)
    if (view.cancelRequested || view.stopRequested) {
      if (await this.windDown(view, plan)) return 'done';
      await this.waitForEvent(plan);
      return 'again';
    }
    if (!view.next) {
      // completeRun sends the `ended` run event itself.
      if (view.live === 0 && (await completeRun(this.ctx.store.db, this.lease))) return 'done';
      await this.waitForEvent(plan);
      return 'again';
    }
    if (!plan) {
      await this.fail(business.caller_id ? NO_CREDENTIALS : NO_CALLER_ID);
      return 'done';
    }
    // At the run's own cap (lower than the business's): wait for one of its calls to end.
    // At the business's cap: go and queue for a slot, woken directly by the next release.
    if (view.live >= view.concurrency && view.concurrency < business.max_concurrent_calls) {
      await this.waitForEvent(plan);
      return 'again';
    }
    await this.dialNext(plan, view.next);
    return 'again';
  }

  private async dialNext(plan: DialPlan, next: NonNullable<DispatchView['next']>): Promise<void> {
    const target: DialTarget = { jobId: next.jobId, phone: next.phone };
    try {
      const reserved = await reserveDial(this.ctx, this.lease, plan, target, this.dialSignal);
      if (reserved.kind === 'business_full') await this.waitForEvent(plan, 1000);
      if (reserved.kind !== 'reserved') return;
      const { reservation } = reserved;
      this.sending = this.sending.then(() => this.send(plan, target, reservation));
    } catch (error) {
      if (this.dialSignal.aborted) return;
      // Slot backend down (fail closed) or the database blipped: nothing was dialled. Back off.
      this.ctx.logger.warn({ err: error, runId: this.lease.runId }, 'dispatch step failed; retrying');
      await this.waitForEvent(plan, 1000);
    }
  }

  /** Sends one reserved attempt (see {@link sending}). */
  private async send(plan: DialPlan, target: DialTarget, reservation: Reservation): Promise<void> {
    const { attemptId } = reservation;
    try {
      if (this.interruptController.signal.aborted) {
        // A cancel or stop arrived before this attempt's turn: it never leaves. Its job is
        // cancelled like a queued one, and its slot freed.
        await onCallProgress(this.ctx, attemptId, { kind: 'ended', outcome: 'canceled' }, undefined);
        return;
      }
      if (this.fatal) {
        await failReservedDial(this.ctx, this.lease, this.businessId, attemptId, `${this.fatal.code}: ${this.fatal.message}`);
        return;
      }
      const result = await placeReservedCall(this.ctx, this.lease, plan, target, reservation, this.dialSignal);
      if (result.kind === 'fatal') {
        this.fatal = result.error;
        this.halt('the provider refuses every dial of this run');
      }
    } catch (error) {
      // The database failed while recording the outcome: the webhook stores the call id itself,
      // and reconciliation settles a dial with none (found by attempt id, or `unknown`).
      this.ctx.logger.warn({ err: error, runId: this.lease.runId, attemptId }, 'recording a dial failed; reconciliation will settle it');
    }
  }

  /** Cancel or stop requested: hang up (stop), then end the run once no call is live. */
  private async windDown(view: DispatchView, plan: DialPlan | null): Promise<boolean> {
    if (view.stopRequested && plan) {
      await hangUpLiveCalls(this.ctx, { runId: this.lease.runId, businessId: this.businessId }, plan.credentials, this.hungUp);
    }
    const ended = await finalizeRequestedRun(this.ctx.store.db, this.businessId, this.lease.runId);
    if (ended) await publishRunEvent(this.ctx.store.notifier, { kind: 'ended', runId: this.lease.runId, businessId: this.businessId });
    return ended !== undefined;
  }

  private async fail(reason: Messages | ProviderError): Promise<void> {
    const text = bilingual(reason instanceof ProviderError ? { en: reason.message, he: reason.he } : reason);
    if (await failRun(this.ctx.store.db, this.lease, text)) {
      this.ctx.logger.warn({ runId: this.lease.runId, reason: text }, 'run failed');
      await publishRunEvent(this.ctx.store.notifier, { kind: 'ended', runId: this.lease.runId, businessId: this.businessId });
    }
    this.halt('run failed');
  }

  /** Waits for a wake-up or the safety poll; on the poll, checks stale calls with the provider. */
  private async waitForEvent(plan: DialPlan | null, timeoutMs = this.ctx.config.safetyPollSeconds * 1000): Promise<void> {
    if (this.pendingWake || this.halted) {
      this.pendingWake = false;
      return;
    }
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
      this.wakeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeWaiter = null;
    this.pendingWake = false;
    if (timedOut && plan && !this.halted) {
      await reconcileLiveCalls(this.ctx, this.reconcileScope(plan), false).catch((error: unknown) => {
        this.ctx.logger.warn({ err: error, runId: this.lease.runId }, 'reconciliation failed');
      });
    }
  }

  private async currentBusiness(): Promise<Business | undefined> {
    if (!this.business || Date.now() - this.businessReadAt > BUSINESS_REFRESH_MS) {
      this.business = (await loadBusinessForDispatch(this.ctx.store.db, this.businessId)) ?? this.business;
      this.plan = this.business ? dialPlanFor(this.business, this.ctx.config) : null;
      this.businessReadAt = Date.now();
    }
    return this.business;
  }

  private reconcileScope(plan: DialPlan): ReconcileScope {
    const { business } = plan;
    return {
      lease: this.lease,
      businessId: this.businessId,
      credentials: plan.credentials,
      from: plan.from,
      // A final webhook can be lost: after a minute, ask the provider (at most every 30 s per call).
      staleAfterMs: Math.min(60_000, (business.ring_timeout_seconds + business.call_time_limit_seconds) * 1000),
      lastChecked: this.lastChecked,
    };
  }
}
