/**
 * The simulator's record of every dial: the independent witness tests and benchmarks check the
 * engine against. A call is live from its create until its final status; `highWater` is the
 * most calls live at once, per account and per caller id (`From`).
 */
import type { SimCall } from './sim-call.ts';

/** One dial as the carrier saw it; `status` follows the call to its final status. */
export interface Dial {
  to: string;
  from: string;
  /** When the create arrived (ISO 8601). */
  at: string;
  callSid: string;
  status: string;
}

/** A create the carrier refused (no call was placed). */
export interface RejectedCreate {
  to: string;
  from: string;
  at: string;
  httpStatus: number;
  code: number;
}

/** Live-call counts and dials of one account, or of one caller id within it. */
export interface LineStats {
  highWater: number;
  live: number;
  dials: Dial[];
  /** Numbers dialled more than once, sorted. */
  duplicates: string[];
}

/** One account's stats, with a breakdown per caller id. */
export interface AccountStats extends LineStats {
  byFrom: Record<string, LineStats>;
  rejected: RejectedCreate[];
}

/** One status-callback delivery (or drop). */
export interface CallbackLogEntry {
  callSid: string;
  url: string;
  /** `CallStatus`, or `amd` for an answering-machine verdict. */
  callStatus: string;
  sequenceNumber: number | undefined;
  at: string;
  outcome: 'delivered' | 'dropped' | 'failed';
  httpStatus?: number;
  error?: string;
}

/** Everything the record holds, as `GET /sim/stats` returns it. */
export interface SimStats {
  totals: { highWater: number; live: number; dials: number; duplicates: string[] };
  accounts: Record<string, AccountStats>;
  callbacks: { delivered: number; dropped: number; failed: number; log: CallbackLogEntry[] };
}

/** Mutable counters behind one {@link LineStats}. */
class Line {
  live = 0;
  highWater = 0;
  readonly dials: Dial[] = [];
  private readonly timesDialled = new Map<string, number>();

  started(dial: Dial): void {
    this.dials.push(dial);
    this.timesDialled.set(dial.to, (this.timesDialled.get(dial.to) ?? 0) + 1);
    this.live += 1;
    this.highWater = Math.max(this.highWater, this.live);
  }

  ended(): void {
    this.live -= 1;
  }

  duplicates(): string[] {
    return [...this.timesDialled].filter(([, n]) => n > 1).map(([to]) => to).sort();
  }

  stats(): LineStats {
    return { highWater: this.highWater, live: this.live, dials: this.dials.map((d) => ({ ...d })), duplicates: this.duplicates() };
  }
}

class AccountLine extends Line {
  readonly byFrom = new Map<string, Line>();
  readonly rejected: RejectedCreate[] = [];

  lineFor(from: string): Line {
    let line = this.byFrom.get(from);
    if (!line) this.byFrom.set(from, (line = new Line()));
    return line;
  }
}

const EMPTY_LINE: LineStats = { highWater: 0, live: 0, dials: [], duplicates: [] };

/** The record. Read it with {@link CallRecord.account}, {@link CallRecord.callerId} or {@link CallRecord.snapshot}. */
export class CallRecord {
  private accounts = new Map<string, AccountLine>();
  private total = new Line();
  private dialsBySid = new Map<string, Dial>();
  /** Every callback sent or dropped, in the order they were settled. */
  callbacks: CallbackLogEntry[] = [];

  private accountLine(accountSid: string): AccountLine {
    let line = this.accounts.get(accountSid);
    if (!line) this.accounts.set(accountSid, (line = new AccountLine()));
    return line;
  }

  /** @internal A call was created: it is live from now. */
  callCreated(call: SimCall): void {
    const dial: Dial = { to: call.to, from: call.from, at: call.dateCreated.toISOString(), callSid: call.sid, status: call.status };
    this.dialsBySid.set(call.sid, dial);
    const account = this.accountLine(call.accountSid);
    account.started(dial);
    account.lineFor(call.from).started(dial);
    this.total.started(dial);
  }

  /** @internal The call's status changed; a final status ends its liveness. */
  callStatus(call: SimCall, final: boolean): void {
    const dial = this.dialsBySid.get(call.sid);
    if (!dial) return;
    dial.status = call.status;
    if (!final) return;
    const account = this.accountLine(call.accountSid);
    account.ended();
    account.lineFor(call.from).ended();
    this.total.ended();
  }

  /** @internal A create was refused. */
  createRejected(accountSid: string, rejected: RejectedCreate): void {
    this.accountLine(accountSid).rejected.push(rejected);
  }

  /** @internal A callback was delivered, dropped or failed. */
  callbackSettled(entry: CallbackLogEntry): void {
    this.callbacks.push(entry);
  }

  /** One account's stats (empty if it never dialled). */
  account(accountSid: string): AccountStats {
    const line = this.accounts.get(accountSid);
    if (!line) return { ...EMPTY_LINE, byFrom: {}, rejected: [] };
    const byFrom: Record<string, LineStats> = {};
    for (const [from, fromLine] of line.byFrom) byFrom[from] = fromLine.stats();
    return { ...line.stats(), byFrom, rejected: [...line.rejected] };
  }

  /** One caller id's stats within an account. */
  callerId(accountSid: string, from: string): LineStats {
    return this.accounts.get(accountSid)?.byFrom.get(from)?.stats() ?? { ...EMPTY_LINE };
  }

  /** Calls live now, across all accounts. */
  get live(): number {
    return this.total.live;
  }

  /** The whole record as plain JSON. */
  snapshot(): SimStats {
    const accounts: Record<string, AccountStats> = {};
    for (const sid of this.accounts.keys()) accounts[sid] = this.account(sid);
    const count = (outcome: CallbackLogEntry['outcome']): number => this.callbacks.filter((c) => c.outcome === outcome).length;
    return {
      totals: { highWater: this.total.highWater, live: this.total.live, dials: this.total.dials.length, duplicates: this.total.duplicates() },
      accounts,
      callbacks: { delivered: count('delivered'), dropped: count('dropped'), failed: count('failed'), log: [...this.callbacks] },
    };
  }

  /** Forgets everything. */
  reset(): void {
    this.accounts = new Map();
    this.total = new Line();
    this.dialsBySid = new Map();
    this.callbacks = [];
  }
}
