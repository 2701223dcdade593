/**
 * The simulated carrier's core, without HTTP: accounts, calls, the record, faults, the script,
 * and events to wait on. `lifecycle.ts` plays each call out; `routes.ts` puts Twilio's REST API
 * in front.
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../../logger.ts';
import { isFinalCallStatus } from '../port.ts';
import { AccountRegistry, type SimAccount } from './accounts.ts';
import { CallbackDispatcher } from './callbacks.ts';
import { Faults } from './faults.ts';
import { CallLifecycle } from './lifecycle.ts';
import { newSimCall, refusalFor, type CreateCallInput } from './new-call.ts';
import { hashSeed, mulberry32 } from './prng.ts';
import { CallRecord, type CallbackLogEntry } from './record.ts';
import { DEFAULT_SCRIPT, mergeScript, planCall, type CallScript, type NumberBehaviour, type ScriptChange } from './script.ts';
import { viewOf, type SimCall, type SimCallView } from './sim-call.ts';
import { twilioError, type TwilioErrorBody } from './twilio-shapes.ts';

export type { SimAccount } from './accounts.ts';
export type { CreateCallInput } from './new-call.ts';

/** Options of the simulator. */
export interface CarrierSimOptions {
  accounts?: SimAccount[];
  /** Accept any `AC…` SID with any token, registering the pair on first use (multi-tenant demos). */
  autoRegisterAccounts?: boolean;
  /** Changes to {@link DEFAULT_SCRIPT}. */
  script?: ScriptChange;
  /** Real milliseconds per Twilio second (Timeout, TimeLimit, CallDuration, CPS). Default 1000; tests use ~10. */
  secondMs?: number;
  /** Calls per Twilio second each account's queue releases (Twilio's default is 1); default: no queue. */
  cps?: number;
  /** Forced behaviour per dialled number. */
  numbers?: Record<string, NumberBehaviour>;
  /** `From` numbers refused with 21212. */
  invalidCallerIds?: string[];
  /** Per-callback HTTP timeout (ms). Default 15 000, as Twilio. */
  callbackTimeoutMs?: number;
  logger?: Logger;
}

/** Filters of the Calls list (Twilio's `To`, `From`, `Status`, `StartTime>`, `StartTime<`). */
export interface ListCallsFilter {
  to?: string;
  from?: string;
  status?: string;
  startTimeAfter?: Date;
  startTimeBefore?: Date;
}

/** An error the API answers in Twilio's shape. */
export class TwilioApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly body: TwilioErrorBody,
  ) {
    super(body.message);
  }
}

/** The simulator's events (`on(event, listener)`). */
export interface CarrierSimEvents {
  'call-created': (call: SimCallView) => void;
  'call-status': (call: SimCallView) => void;
  'call-ended': (call: SimCallView) => void;
  callback: (entry: CallbackLogEntry) => void;
}

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** The simulated carrier. */
export class CarrierSimulator {
  /** The independent witness: every dial, live counts, high-water marks, callbacks. */
  readonly record = new CallRecord();
  /** Switchable failures. */
  readonly faults = new Faults();
  /** Real ms per Twilio second. */
  readonly secondMs: number;

  private readonly accounts: AccountRegistry;
  private readonly calls = new Map<string, SimCall>();
  private readonly dialCounts = new Map<string, number>();
  private readonly emitter = new EventEmitter();
  private readonly callbacks: CallbackDispatcher;
  private readonly lifecycle: CallLifecycle;
  private currentScript: CallScript;
  private numberBehaviours: Map<string, NumberBehaviour>;
  private invalidCallerIds: Set<string>;

  constructor(private readonly options: CarrierSimOptions = {}) {
    const log = (options.logger ?? silentLogger).child({ module: 'carrier-sim' });
    this.secondMs = options.secondMs ?? 1000;
    this.currentScript = mergeScript(DEFAULT_SCRIPT, options.script ?? {});
    this.numberBehaviours = new Map(Object.entries(options.numbers ?? {}));
    this.invalidCallerIds = new Set(options.invalidCallerIds ?? []);
    this.accounts = new AccountRegistry(options.autoRegisterAccounts ?? false, log);
    for (const account of options.accounts ?? []) this.accounts.add(account);
    this.emitter.setMaxListeners(0);
    this.callbacks = new CallbackDispatcher({
      authTokenFor: (sid) => this.accounts.authTokenFor(sid),
      shouldDrop: (status) => this.faults.takeDrop(status),
      settled: (entry) => {
        this.record.callbackSettled(entry);
        this.emitter.emit('callback', entry);
      },
      logger: log,
      ...(options.callbackTimeoutMs !== undefined && { timeoutMs: options.callbackTimeoutMs }),
    });
    this.lifecycle = new CallLifecycle({
      secondMs: this.secondMs,
      cps: options.cps,
      callbacks: this.callbacks,
      record: this.record,
      changed: (call, ended) => {
        this.emitView('call-status', call);
        if (ended) this.emitView('call-ended', call);
      },
    });
  }

  // ── configuration ─────────────────────────────────────────────────────────────────────────

  /** Registers an account (and its API keys). */
  addAccount(account: SimAccount): void {
    this.accounts.add(account);
  }

  /** The script in force. */
  get script(): CallScript {
    return this.currentScript;
  }

  /** Changes the script for calls created from now on. */
  setScript(change: ScriptChange): void {
    this.currentScript = mergeScript(this.currentScript, change);
  }

  /** Forces how calls to `number` go (`null` removes the override). */
  setNumberBehaviour(number: string, behaviour: NumberBehaviour | null): void {
    if (behaviour === null) this.numberBehaviours.delete(number);
    else this.numberBehaviours.set(number, behaviour);
  }

  /** Makes creates from caller id `from` fail with 21212 (or stop failing). */
  setCallerIdInvalid(from: string, invalid = true): void {
    if (invalid) this.invalidCallerIds.add(from);
    else this.invalidCallerIds.delete(from);
  }

  // ── the REST operations ───────────────────────────────────────────────────────────────────

  /**
   * The account HTTP Basic credentials stand for, if valid for the account in the path;
   * otherwise `null` (the API answers 401 / 20003).
   */
  authenticate(username: string, password: string, pathAccountSid: string): SimAccount | null {
    if (this.faults.rejectingCredentials) return null;
    return this.accounts.authenticate(username, password, pathAccountSid);
  }

  /** `POST Calls.json`. Throws {@link TwilioApiError} for what Twilio would refuse. */
  createCall(account: SimAccount, input: CreateCallInput): SimCall {
    const refuse = (httpStatus: number, code: number, message: string): never => {
      const at = new Date().toISOString();
      this.record.createRejected(account.accountSid, { to: input.to ?? '', from: input.from ?? '', at, httpStatus, code });
      throw new TwilioApiError(httpStatus, twilioError(httpStatus, code, message));
    };
    const failure = this.faults.takeCreateFailure();
    if (failure === 429) refuse(429, 20429, 'Too Many Requests');
    if (failure !== undefined) refuse(failure, 20500, 'An internal server error has occurred');
    const refusal = refusalFor(input, account, {
      invalidNumber: (to) => this.numberBehaviours.get(to) === 'invalid',
      invalidCallerId: (from) => this.invalidCallerIds.has(from),
    });
    if (refusal) refuse(400, refusal.code, refusal.message);
    const { to, from } = input as CreateCallInput & { to: string; from: string };

    // Each call draws from its own generator: outcomes do not depend on the order of dials.
    const dialKey = `${account.accountSid}|${to}`;
    const dialIndex = this.dialCounts.get(dialKey) ?? 0;
    this.dialCounts.set(dialKey, dialIndex + 1);
    const random = mulberry32(hashSeed(this.currentScript.seed, account.accountSid, to, dialIndex));
    const plan = planCall(this.currentScript, random, this.numberBehaviours.get(to));

    const call = newSimCall(account, { ...input, to, from }, plan);
    this.calls.set(call.sid, call);
    this.record.callCreated(call);
    this.emitView('call-created', call);
    this.lifecycle.start(call);
    return call;
  }

  /** `GET Calls/{sid}.json`: the call if it belongs to the account. */
  getCall(accountSid: string, callSid: string): SimCall | undefined {
    const call = this.calls.get(callSid);
    return call && call.accountSid === accountSid ? call : undefined;
  }

  /** `GET Calls.json`: newest first, as Twilio lists. `StartTime` filters compare at one-second precision. */
  listCalls(accountSid: string, filter: ListCallsFilter): SimCall[] {
    const after = filter.startTimeAfter ? epochSeconds(filter.startTimeAfter) : undefined;
    const before = filter.startTimeBefore ? epochSeconds(filter.startTimeBefore) : undefined;
    return [...this.calls.values()]
      .filter((call) => {
        if (call.accountSid !== accountSid) return false;
        if (filter.to !== undefined && call.to !== filter.to) return false;
        if (filter.from !== undefined && call.from !== filter.from) return false;
        if (filter.status !== undefined && call.status !== filter.status) return false;
        if (after !== undefined || before !== undefined) {
          // Like Twilio: a call still in the queue has no start time and matches no StartTime filter.
          if (!call.startTime) return false;
          const started = epochSeconds(call.startTime);
          if (after !== undefined && started < after) return false;
          if (before !== undefined && started > before) return false;
        }
        return true;
      })
      .sort((a, b) => b.dateCreated.getTime() - a.dateCreated.getTime());
  }

  /** `POST Calls/{sid}.json` with `Status`: the hang-up. Ended calls are left as they are. */
  updateCallStatus(call: SimCall, status: string): SimCall {
    if (status !== 'completed' && status !== 'canceled') {
      throw new TwilioApiError(400, twilioError(400, 20001, `Invalid Status: ${status}`));
    }
    this.lifecycle.hangUp(call, status);
    return call;
  }

  // ── observation ───────────────────────────────────────────────────────────────────────────

  /** Snapshots of every call, oldest first. */
  allCalls(): SimCallView[] {
    return [...this.calls.values()].map(viewOf);
  }

  /** A snapshot of one call. */
  callView(callSid: string): SimCallView | undefined {
    const call = this.calls.get(callSid);
    return call && viewOf(call);
  }

  /** Calls not yet at a final status. */
  get liveCalls(): number {
    return this.record.live;
  }

  /** Status callbacks queued or in flight. */
  get callbacksInFlight(): number {
    return this.callbacks.inFlight;
  }

  /** Emits the call's snapshot, built only when someone listens (most transitions have no listener). */
  private emitView(event: 'call-created' | 'call-status' | 'call-ended', call: SimCall): void {
    if (this.emitter.listenerCount(event) > 0) this.emitter.emit(event, viewOf(call));
  }

  on<E extends keyof CarrierSimEvents>(event: E, listener: CarrierSimEvents[E]): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<E extends keyof CarrierSimEvents>(event: E, listener: CarrierSimEvents[E]): this {
    this.emitter.off(event, listener);
    return this;
  }

  /**
   * Resolves once `predicate` holds, re-checking on every simulator event (never by polling).
   * Rejects after `timeoutMs` (default 10 s) naming `description`.
   */
  waitFor(predicate: (sim: this) => boolean, timeoutMs = 10_000, description = 'condition'): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const events = ['call-created', 'call-status', 'callback', 'reset'] as const;
      const check = (): void => {
        if (!predicate(this)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        const state = `live calls: ${this.liveCalls}, callbacks in flight: ${this.callbacksInFlight}`;
        reject(new Error(`carrier-sim: timed out after ${timeoutMs} ms waiting for ${description} (${state})`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        for (const event of events) this.emitter.off(event, check);
      };
      for (const event of events) this.emitter.on(event, check);
    });
  }

  /** Resolves when no call is live and every callback has been delivered (or dropped). */
  idle(timeoutMs = 10_000): Promise<void> {
    return this.waitFor((sim) => sim.liveCalls === 0 && sim.callbacksInFlight === 0, timeoutMs, 'idle');
  }

  /** Resolves when `count` calls in total have been created. */
  waitForCalls(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor((sim) => sim.calls.size >= count, timeoutMs, `${count} calls`);
  }

  /** Resolves with the call's snapshot once it has ended. */
  async waitForCallEnd(callSid: string, timeoutMs = 10_000): Promise<SimCallView> {
    const ended = (): SimCall | undefined => {
      const call = this.calls.get(callSid);
      return call && isFinalCallStatus(call.status) ? call : undefined;
    };
    await this.waitFor(() => ended() !== undefined, timeoutMs, `call ${callSid} to end`);
    return viewOf(ended() as SimCall);
  }

  /**
   * Forgets every call (live ones end silently, without callbacks), the record and the faults,
   * and restores the script and number behaviours given at construction. Accounts stay.
   */
  reset(): void {
    this.lifecycle.forget(this.calls.values());
    this.callbacks.abortAll();
    this.calls.clear();
    this.dialCounts.clear();
    this.record.reset();
    this.faults.clear();
    this.currentScript = mergeScript(DEFAULT_SCRIPT, this.options.script ?? {});
    this.numberBehaviours = new Map(Object.entries(this.options.numbers ?? {}));
    this.invalidCallerIds = new Set(this.options.invalidCallerIds ?? []);
    this.emitter.emit('reset');
  }

  /** Stops every timer and callback and closes the callback connections; the simulator does nothing afterwards. */
  shutdown(): void {
    this.lifecycle.stop(this.calls.values());
    this.callbacks.close();
  }
}
