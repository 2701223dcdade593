/**
 * Timestamps along a call's life inside the in-process engine, for the profile behind the
 * figures (where does a handoff's time go?). Each probe wraps one port and records
 * performance.now() at its edges; the overhead is a Map.set per event.
 *
 *   carrier end → webhook arrival (final callback) → slot released; run event received (sent by
 *     the webhook's own statement, so it may come before the release)
 *     → driver's slot acquire start → acquire granted → (commit dial, hold slot) → placeCall start
 *     → carrier create
 */
import type { FastifyInstance } from 'fastify';
import type { RunEventMessage } from '../src/engine/run-events.ts';
import type { CallSlots } from '../src/slots/port.ts';
import type { Notifier } from '../src/store/notifier.ts';
import type { TelephonyProvider } from '../src/telephony/port.ts';

const now = (): number => performance.now();

export interface AttemptTimes {
  businessId?: string;
  acquireStart?: number;
  acquired?: number;
  placeStart?: number;
  placed?: number;
  callSid?: string;
  /** Webhook arrivals by CallStatus. */
  webhook: Map<string, number>;
  released?: number;
}

export class Probe {
  readonly attempts = new Map<string, AttemptTimes>();
  readonly attemptBySid = new Map<string, string>();
  /** Run events received by this process's listeners, per business, in order. */
  readonly events = new Map<string, Array<{ at: number; kind: string }>>();
  enabled = true;

  attempt(id: string): AttemptTimes {
    let times = this.attempts.get(id);
    if (!times) this.attempts.set(id, (times = { webhook: new Map() }));
    return times;
  }

  slots(inner: CallSlots): CallSlots {
    return {
      acquire: async (req, signal) => {
        if (this.enabled) Object.assign(this.attempt(req.attemptId), { businessId: req.businessId, acquireStart: this.attempt(req.attemptId).acquireStart ?? now() });
        await inner.acquire(req, signal);
        if (this.enabled) this.attempt(req.attemptId).acquired ??= now();
      },
      release: async (businessId, attemptId) => {
        const released = await inner.release(businessId, attemptId);
        if (this.enabled && released) this.attempt(attemptId).released ??= now();
        return released;
      },
      extend: (b, a, ttl) => inner.extend(b, a, ttl),
      held: (b) => inner.held(b),
      isHeld: (b, a) => inner.isHeld(b, a),
      close: () => inner.close(),
    };
  }

  telephony(inner: TelephonyProvider): TelephonyProvider {
    return {
      ...inner,
      placeCall: async (creds, req) => {
        if (this.enabled) this.attempt(req.attemptId).placeStart = now();
        const call = await inner.placeCall(creds, req);
        if (this.enabled) {
          const times = this.attempt(req.attemptId);
          times.placed = now();
          times.callSid = call.providerCallId;
          this.attemptBySid.set(call.providerCallId, req.attemptId);
        }
        return call;
      },
      fetchCall: (c, id) => inner.fetchCall(c, id),
      hangUp: (c, id) => inner.hangUp(c, id),
      findCallByAttempt: (c, q) => inner.findCallByAttempt(c, q),
    };
  }

  /**
   * Records run events as this process's listeners receive them: most are sent by the store's
   * own statements (pg_notify inside the UPDATE), never through `notify`.
   */
  notifier(inner: Notifier): Notifier {
    return {
      notify: (channel, payload) => inner.notify(channel, payload),
      listen: (channel, handler) =>
        inner.listen(channel, (payload) => {
          if (this.enabled) this.record(payload);
          handler(payload);
        }),
      onReconnect: (handler) => inner.onReconnect(handler),
      close: () => inner.close(),
    };
  }

  private record(payload: string): void {
    try {
      const message = JSON.parse(payload) as RunEventMessage;
      let list = this.events.get(message.businessId);
      if (!list) this.events.set(message.businessId, (list = []));
      list.push({ at: now(), kind: message.kind });
    } catch {
      // not a run event
    }
  }

  /** Timestamps each status callback as the webhook server starts handling it. */
  webhook(app: FastifyInstance): void {
    app.addHook('preHandler', async (request) => {
      if (!this.enabled) return;
      const attempt = (request.query as Record<string, unknown> | undefined)?.attempt;
      const body = request.body as Record<string, unknown> | undefined;
      if (typeof attempt !== 'string' || !body) return;
      const status = typeof body.CallStatus === 'string' ? body.CallStatus : 'unknown';
      const times = this.attempt(attempt);
      if (!times.webhook.has(status)) times.webhook.set(status, now());
      if (typeof body.CallSid === 'string') this.attemptBySid.set(body.CallSid, attempt);
    });
  }

  /** The first run event of `kind` for the business at or after `at`. */
  eventAfter(businessId: string, at: number, kinds: readonly string[]): number | undefined {
    return this.events.get(businessId)?.find((e) => e.at >= at && kinds.includes(e.kind))?.at;
  }

  reset(): void {
    this.attempts.clear();
    this.attemptBySid.clear();
    this.events.clear();
  }
}
