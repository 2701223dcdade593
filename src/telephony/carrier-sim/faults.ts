/**
 * Fault injection: the failures a real carrier produces, on demand. Tests switch them on, the
 * simulator consults them at each create and each callback. `clear()` switches everything off.
 */

/** HTTP errors a failing create can answer with. */
export type CreateFailureStatus = 500 | 503 | 429;

/** Which callbacks to drop. */
export interface DropCallbacksOptions {
  /** How many matching callbacks to drop; default: all of them until {@link Faults.stopDroppingCallbacks}. */
  count?: number;
  /** Only callbacks with these `CallStatus` values (`amd` for machine-detection verdicts); default: any. */
  statuses?: readonly string[];
}

/** The switchable faults. */
export class Faults {
  private failures: Array<CreateFailureStatus> = [];
  private credentialsRejected = false;
  private dropBudget = 0;
  private dropStatuses: ReadonlySet<string> | null = null;
  private createDelayMs = 0;
  private createDelayBudget = 0;

  /** The next `count` creates fail with `status` (no call is placed). */
  failNextCreates(count: number, status: CreateFailureStatus = 500): this {
    for (let i = 0; i < count; i++) this.failures.push(status);
    return this;
  }

  /** While on, every API request is answered 401 / 20003, whatever the credentials. */
  rejectCredentials(on = true): this {
    this.credentialsRejected = on;
    return this;
  }

  /** Drops status callbacks (never sent), so the engine must reconcile by fetching. */
  dropCallbacks(options: DropCallbacksOptions = {}): this {
    this.dropBudget = options.count ?? Number.POSITIVE_INFINITY;
    this.dropStatuses = options.statuses ? new Set(options.statuses) : null;
    return this;
  }

  stopDroppingCallbacks(): this {
    this.dropBudget = 0;
    this.dropStatuses = null;
    return this;
  }

  /**
   * Delays the answer to the next `count` creates (default: all) by `ms`. The call is placed
   * before the delay: a client that times out has still created a call, as with the real Twilio.
   */
  delayCreateResponses(ms: number, count = Number.POSITIVE_INFINITY): this {
    this.createDelayMs = ms;
    this.createDelayBudget = ms > 0 ? count : 0;
    return this;
  }

  /** Switches every fault off. */
  clear(): this {
    this.failures = [];
    this.credentialsRejected = false;
    this.stopDroppingCallbacks();
    this.createDelayMs = 0;
    this.createDelayBudget = 0;
    return this;
  }

  /** @internal The status the next create must fail with, if any (consumes it). */
  takeCreateFailure(): CreateFailureStatus | undefined {
    return this.failures.shift();
  }

  /** @internal */
  get rejectingCredentials(): boolean {
    return this.credentialsRejected;
  }

  /** @internal Whether to drop this callback (consumes the budget). */
  takeDrop(callStatus: string): boolean {
    if (this.dropBudget <= 0) return false;
    if (this.dropStatuses && !this.dropStatuses.has(callStatus)) return false;
    this.dropBudget -= 1;
    return true;
  }

  /** @internal How long to hold this create's answer (consumes the budget). */
  takeCreateDelay(): number {
    if (this.createDelayBudget <= 0) return 0;
    this.createDelayBudget -= 1;
    return this.createDelayMs;
  }
}
