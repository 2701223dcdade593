/**
 * Delivers status callbacks the way Twilio does: a form POST, signed with the account's auth
 * token (`X-Twilio-Signature` over the full URL plus the sorted parameters). Deliveries for one
 * call are chained, so they arrive in the order the call moved. Twilio does not retry a failed
 * status callback and neither does the simulator.
 */
import type { Logger } from '../../logger.ts';
import { signTwilioRequest } from '../signature.ts';
import type { CallbackLogEntry } from './record.ts';
import type { SimCall } from './sim-call.ts';

/** What the dispatcher needs from the simulator. */
export interface CallbackDispatcherDeps {
  authTokenFor(accountSid: string): string | undefined;
  shouldDrop(callStatus: string): boolean;
  settled(entry: CallbackLogEntry): void;
  logger: Logger;
  /** Per-request timeout; Twilio gives up after 15 s. */
  timeoutMs?: number;
}

/** Sends callbacks, one call's in order, many calls' in parallel. */
export class CallbackDispatcher {
  private pending = 0;
  private abort = new AbortController();

  constructor(private readonly deps: CallbackDispatcherDeps) {}

  /** Callbacks queued or in flight. */
  get inFlight(): number {
    return this.pending;
  }

  /** Queues one callback behind the call's earlier ones. `label` is the CallStatus (or `amd`). */
  enqueue(call: SimCall, url: string, label: string, params: Record<string, string>): Promise<void> {
    this.pending += 1;
    const signal = this.abort.signal;
    call.callbackChain = call.callbackChain
      .then(() => this.deliver(call, url, label, params, signal))
      .then((entry) => {
        // Counted down before anyone hears of it, so a listener checking for idle sees the truth.
        this.pending -= 1;
        if (entry) this.deps.settled(entry);
      });
    return call.callbackChain;
  }

  /** Aborts every delivery in flight; later ones are abandoned too. */
  abortAll(): void {
    this.abort.abort();
    this.abort = new AbortController();
  }

  /** Sends one callback; resolves with its log entry (`null` when abandoned by `abortAll`). Never rejects. */
  private async deliver(
    call: SimCall,
    url: string,
    label: string,
    params: Record<string, string>,
    signal: AbortSignal,
  ): Promise<CallbackLogEntry | null> {
    const sequence = params.SequenceNumber === undefined ? undefined : Number(params.SequenceNumber);
    const entry = (outcome: CallbackLogEntry['outcome'], extra: Partial<CallbackLogEntry> = {}): CallbackLogEntry => ({
      callSid: call.sid,
      url,
      callStatus: label,
      sequenceNumber: sequence,
      at: new Date().toISOString(),
      outcome,
      ...extra,
    });
    if (signal.aborted) return null;
    if (this.deps.shouldDrop(label)) return entry('dropped');
    const token = this.deps.authTokenFor(call.accountSid);
    if (token === undefined) return entry('failed', { error: 'account has no auth token' });
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
          'x-twilio-signature': signTwilioRequest(token, url, params),
          'user-agent': 'TwilioProxy/1.1 (ocq carrier-sim)',
        },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.deps.timeoutMs ?? 15_000)]),
      });
      await response.arrayBuffer(); // drain, so the connection can be reused
      return entry(response.ok ? 'delivered' : 'failed', { httpStatus: response.status });
    } catch (err) {
      if (signal.aborted) return null;
      const error = err instanceof Error ? err.message : String(err);
      this.deps.logger.warn({ callSid: call.sid, url, callStatus: label, error }, 'status callback delivery failed');
      return entry('failed', { error });
    }
  }
}
