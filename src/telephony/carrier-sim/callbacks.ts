/**
 * Delivers status callbacks the way Twilio does: a form POST, signed with the account's auth
 * token (`X-Twilio-Signature` over the full URL plus the sorted parameters). Deliveries for one
 * call are chained, so they arrive in the order the call moved. Twilio does not retry a failed
 * status callback and neither does the simulator.
 *
 * Plain `node:http` through a keep-alive agent rather than `fetch`: in benchmarks the simulator
 * shares the CPU with the engine, and fetch's web streams and abort signals cost several times
 * what the POST itself does.
 */
import http from 'node:http';
import https from 'node:https';
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
  /** Per-request timeout (no answer for this long fails the delivery); Twilio gives up after 15 s. */
  timeoutMs?: number;
}

/** How one POST ended: the answer's HTTP status, or why there was none. */
type PostResult = { status: number } | { error: string };

/**
 * The request options for a POST to `url`, built here because handing `http.request` a URL (or a
 * string) costs more in its checks and conversion than the parse itself.
 */
function requestOptions(url: string): { secure: boolean; options: http.RequestOptions } | { error: string } {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { error: `invalid callback URL: ${url}` };
  }
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') return { error: `unsupported callback URL protocol: ${target.protocol}` };
  const { hostname, username, password } = target;
  const options: http.RequestOptions = {
    method: 'POST',
    hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname,
    port: target.port,
    path: target.pathname + target.search,
  };
  if (username || password) options.auth = `${decodeURIComponent(username)}:${decodeURIComponent(password)}`;
  return { secure, options };
}

/** Sends callbacks, one call's in order, many calls' in parallel. */
export class CallbackDispatcher {
  private pending = 0;
  /** Bumped by `abortAll`: a delivery queued in an older epoch is abandoned. */
  private epoch = 0;
  private closed = false;
  private readonly requests = new Set<http.ClientRequest>();
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });

  constructor(private readonly deps: CallbackDispatcherDeps) {}

  /** Callbacks queued or in flight. */
  get inFlight(): number {
    return this.pending;
  }

  /** Queues one callback behind the call's earlier ones. `label` is the CallStatus (or `amd`). */
  enqueue(call: SimCall, url: string, label: string, params: Record<string, string>): Promise<void> {
    this.pending += 1;
    const epoch = this.epoch;
    call.callbackChain = call.callbackChain
      .then(() => this.deliver(call, url, label, params, epoch))
      .then((entry) => {
        // Counted down before anyone hears of it, so a listener checking for idle sees the truth.
        this.pending -= 1;
        if (entry) this.deps.settled(entry);
      });
    return call.callbackChain;
  }

  /** Abandons every delivery in flight or queued; later ones go out as usual. */
  abortAll(): void {
    this.epoch += 1;
    for (const request of this.requests) request.destroy();
    this.requests.clear();
  }

  /** Abandons every delivery, now and later, and closes the kept-alive connections. */
  close(): void {
    this.closed = true;
    this.abortAll();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Sends one callback; resolves with its log entry (`null` when abandoned by `abortAll`). Never rejects. */
  private async deliver(
    call: SimCall,
    url: string,
    label: string,
    params: Record<string, string>,
    epoch: number,
  ): Promise<CallbackLogEntry | null> {
    const entry = (outcome: CallbackLogEntry['outcome'], result?: PostResult): CallbackLogEntry => {
      const logged: CallbackLogEntry = {
        callSid: call.sid,
        url,
        callStatus: label,
        sequenceNumber: params.SequenceNumber === undefined ? undefined : Number(params.SequenceNumber),
        at: new Date().toISOString(),
        outcome,
      };
      if (result && 'status' in result) logged.httpStatus = result.status;
      else if (result) logged.error = result.error;
      return logged;
    };
    if (this.closed || epoch !== this.epoch) return null;
    if (this.deps.shouldDrop(label)) return entry('dropped');
    const token = this.deps.authTokenFor(call.accountSid);
    if (token === undefined) return entry('failed', { error: 'account has no auth token' });
    const result = await this.post(url, token, params);
    if (epoch !== this.epoch) return null; // destroyed by `abortAll`, or it raced one
    if ('status' in result) return entry(result.status >= 200 && result.status < 300 ? 'delivered' : 'failed', result);
    this.deps.logger.warn({ callSid: call.sid, url, callStatus: label, error: result.error }, 'status callback delivery failed');
    return entry('failed', result);
  }

  /** One signed form POST; the answer is drained so its connection goes back to the pool. */
  private post(url: string, token: string, params: Record<string, string>): Promise<PostResult> {
    return new Promise((resolve) => {
      const target = requestOptions(url);
      if ('error' in target) {
        resolve(target);
        return;
      }
      const { secure, options } = target;
      const body = new URLSearchParams(params).toString();
      const timeoutMs = this.deps.timeoutMs ?? 15_000;
      options.agent = secure ? this.httpsAgent : this.httpAgent;
      options.timeout = timeoutMs;
      options.headers = {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'x-twilio-signature': signTwilioRequest(token, url, params),
        'user-agent': 'TwilioProxy/1.1 (ocq carrier-sim)',
      };
      let settled = false;
      const settle = (result: PostResult): void => {
        if (settled) return;
        settled = true;
        this.requests.delete(request);
        resolve(result);
      };
      const request = (secure ? https : http).request(options);
      request.on('response', (response) => {
        response.on('error', (err) => settle({ error: err.message }));
        response.on('end', () => settle({ status: response.statusCode ?? 0 }));
        response.resume();
      });
      this.requests.add(request);
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', (err) => settle({ error: err.message }));
      // After the answer's `end` when all went well; first when `abortAll` destroyed it (no `error` then).
      request.on('close', () => settle({ error: 'connection closed before the answer' }));
      request.end(body);
    });
  }
}
