/**
 * The {@link TelephonyProvider} on the official Twilio SDK. `apiBaseUrl` points the same SDK at
 * another server with Twilio's REST shape (the simulated carrier): the engine has one code path
 * whether it talks to Twilio or to the simulator.
 */
import { createHash } from 'node:crypto';
import twilio from 'twilio';
import type { Logger } from '../logger.ts';
import { classifyProviderError, isNotFound } from './errors.ts';
import {
  isFinalCallStatus,
  type FindCallResult,
  type PlaceCallRequest,
  type ProviderCall,
  type ProviderCallStatus,
  type ProviderCredentials,
  type TelephonyProvider,
} from './port.ts';
import { normalizeCallStatus } from './status-map.ts';

type TwilioClient = twilio.Twilio;
type CallInstance = Awaited<ReturnType<TwilioClient['calls']['create']>>;

/** Options of {@link createTwilioProvider}. */
export interface TwilioProviderOptions {
  /** Another server with Twilio's REST API (env `TWILIO_API_BASE_URL`), e.g. `http://127.0.0.1:4010`. */
  apiBaseUrl?: string;
  logger: Logger;
  /** Per-request timeout; a timed-out create may still have created the call. Default 15 000 ms. */
  requestTimeoutMs?: number;
  /** How far before `notBefore` `findCallByAttempt` still accepts a call (clock skew, 1 s precision). Default 5 000 ms. */
  reconcileMarginMs?: number;
}

/**
 * The call-progress events we ask for (only `completed` would be sent by default). Not
 * `initiated`: it says nothing the create response did not (the call id), and every callback
 * costs the provider a request and us a write. Measured with zero-length calls: 4 callbacks per
 * dial became 3.
 */
const STATUS_CALLBACK_EVENTS = ['ringing', 'answered', 'completed'];
/** More matches than this for one number, caller id and minute is not a reconciliation question. */
const RECONCILE_LIST_LIMIT = 50;
/** Twilio's error for updating a call that is not in a state the update applies to. */
const INVALID_CALL_STATE = 21220;

function validDate(value: unknown): Date | undefined {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value : undefined;
}

/**
 * Creates the Twilio-backed provider. One SDK client is cached per credential set.
 *
 * @example
 * const provider = createTwilioProvider({ apiBaseUrl: process.env.TWILIO_API_BASE_URL, logger });
 * const call = await provider.placeCall({ accountSid, authToken }, request);
 */
export function createTwilioProvider(opts: TwilioProviderOptions): TelephonyProvider {
  const log = opts.logger.child({ module: 'twilio-adapter' });
  const timeout = opts.requestTimeoutMs ?? 15_000;
  const marginMs = opts.reconcileMarginMs ?? 5_000;
  const clients = new Map<string, TwilioClient>();

  function clientFor(creds: ProviderCredentials): TwilioClient {
    const [username, password] = 'apiKeySid' in creds ? [creds.apiKeySid, creds.apiKeySecret] : [creds.accountSid, creds.authToken];
    // Keyed on a hash so the map never holds a second copy of the secret in its keys.
    const key = createHash('sha256').update(`${creds.accountSid}\0${username}\0${password}`).digest('hex');
    let client = clients.get(key);
    if (!client) {
      client = twilio(username, password, { accountSid: creds.accountSid, timeout, autoRetry: false });
      if (opts.apiBaseUrl) {
        client.api.baseUrl = opts.apiBaseUrl.replace(/\/+$/, '');
        // TWILIO_REGION / TWILIO_EDGE in the environment would rewrite the simulator's host name.
        client.region = undefined;
        client.edge = undefined;
      }
      clients.set(key, client);
    }
    return client;
  }

  function toProviderCall(call: CallInstance): ProviderCall {
    const status = normalizeCallStatus(call.status);
    if (status === null) log.warn({ callSid: call.sid, status: call.status }, 'unrecognized call status: treated as queued');
    const duration = call.duration == null || call.duration === '' ? undefined : Number(call.duration);
    const dateCreated = validDate(call.dateCreated);
    const startTime = validDate(call.startTime);
    const endTime = validDate(call.endTime);
    return {
      providerCallId: call.sid,
      status: status ?? 'queued',
      to: call.to,
      from: call.from,
      ...(dateCreated && { dateCreated }),
      ...(startTime && { startTime }),
      ...(endTime && { endTime }),
      ...(duration !== undefined && Number.isFinite(duration) && { durationSeconds: duration }),
      ...(call.answeredBy && { answeredBy: call.answeredBy }),
    };
  }

  async function fetchCall(creds: ProviderCredentials, providerCallId: string): Promise<ProviderCall | null> {
    try {
      return toProviderCall(await clientFor(creds).calls(providerCallId).fetch());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw classifyProviderError(err);
    }
  }

  /** Sets the call's status; `null` when Twilio says the call is not (or no longer) in a state for it. */
  async function updateStatus(
    creds: ProviderCredentials,
    providerCallId: string,
    status: 'completed' | 'canceled',
  ): Promise<ProviderCallStatus | null> {
    try {
      const updated = await clientFor(creds).calls(providerCallId).update({ status });
      return normalizeCallStatus(updated.status);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (isNotFound(err) || code === INVALID_CALL_STATE) return null;
      throw classifyProviderError(err);
    }
  }

  return {
    async placeCall(creds, req: PlaceCallRequest) {
      const started = Date.now();
      try {
        const call = await clientFor(creds).calls.create({
          to: req.to,
          from: req.from,
          url: req.handlerUrl,
          method: 'POST',
          statusCallback: req.statusCallbackUrl,
          statusCallbackEvent: STATUS_CALLBACK_EVENTS,
          statusCallbackMethod: 'POST',
          timeout: req.ringTimeoutSeconds,
          timeLimit: req.timeLimitSeconds,
          ...(req.machineDetection && {
            machineDetection: 'Enable',
            // Asynchronous: the TwiML runs at once; the verdict arrives as a callback (AnsweredBy).
            asyncAmd: 'true',
            asyncAmdStatusCallback: req.statusCallbackUrl,
            asyncAmdStatusCallbackMethod: 'POST',
          }),
        });
        log.debug({ attemptId: req.attemptId, callSid: call.sid, ms: Date.now() - started }, 'call created');
        return toProviderCall(call);
      } catch (err) {
        const classified = classifyProviderError(err);
        log.warn(
          { attemptId: req.attemptId, code: classified.code, providerCode: classified.providerCode, retryable: classified.retryable },
          'call create failed',
        );
        throw classified;
      }
    },

    fetchCall,

    async hangUp(creds, providerCallId) {
      // A few rounds: the call can move on (ringing → answered) between our fetch and our update.
      for (let round = 0; round < 3; round++) {
        const call = await fetchCall(creds, providerCallId);
        if (!call || isFinalCallStatus(call.status)) return;
        const after = await updateStatus(creds, providerCallId, call.status === 'in-progress' ? 'completed' : 'canceled');
        if (after !== null && (isFinalCallStatus(after) || call.status === 'in-progress')) return;
      }
      log.warn({ callSid: providerCallId }, 'hang-up: call still live after three rounds; its final callback will settle it');
    },

    async findCallByAttempt(creds, q): Promise<FindCallResult> {
      const since = new Date(q.notBefore.getTime() - marginMs);
      const calls = clientFor(creds).calls;
      let started: CallInstance[];
      let queued: CallInstance[];
      try {
        // Twilio leaves start_time empty while a call waits in its CPS queue, so queued calls
        // are listed separately: a call the StartTime filter cannot see is still a call.
        [started, queued] = await Promise.all([
          calls.list({ to: q.to, from: q.from, startTimeAfter: since, limit: RECONCILE_LIST_LIMIT }),
          calls.list({ to: q.to, from: q.from, status: 'queued', limit: RECONCILE_LIST_LIMIT }),
        ]);
      } catch (err) {
        throw classifyProviderError(err);
      }
      const bySid = new Map<string, ProviderCall>();
      for (const instance of [...started, ...queued]) {
        const call = toProviderCall(instance);
        const created = call.dateCreated ?? call.startTime;
        // The server-side filter may be coarser than ours (date precision): filter again here.
        if (created && created.getTime() < since.getTime()) continue;
        bySid.set(call.providerCallId, call);
      }
      const matches = [...bySid.values()];
      log.info({ attemptId: q.attemptId, matches: matches.length }, 'reconciliation lookup');
      const [only] = matches;
      if (matches.length === 0 || only === undefined) return { none: true };
      if (matches.length === 1) return { found: only };
      return { ambiguous: matches };
    },
  };
}
