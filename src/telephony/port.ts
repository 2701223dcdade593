/**
 * The telephony port: the only way the engine talks to phones. The engine depends on these
 * types alone; `twilio-adapter.ts` implements them on the official Twilio SDK, and the simulated
 * carrier (`carrier-sim/`) is reached through that same adapter, never through a second path.
 */

/**
 * The credentials of one business's provider account. Either the account's own auth token, or an
 * API key pair (then `authToken` is still needed to verify webhook signatures, which Twilio signs
 * with the account's auth token, never with an API key).
 */
export type ProviderCredentials =
  | { accountSid: string; authToken: string }
  | { accountSid: string; apiKeySid: string; apiKeySecret: string; authToken?: string };

/** One outbound call to place. */
export interface PlaceCallRequest {
  /** Our idempotency key for this dial; also carried in `statusCallbackUrl` (`?attempt=`). */
  attemptId: string;
  /** E.164 number to call. */
  to: string;
  /** E.164 caller id (a number the business owns or has verified). */
  from: string;
  /** Twilio's `Url`: the TwiML the provider fetches when the call is answered. */
  handlerUrl: string;
  /** Where status callbacks go; carries `?attempt=<attemptId>`. */
  statusCallbackUrl: string;
  /** Twilio's `Timeout`: how long to let it ring (5..600 s). */
  ringTimeoutSeconds: number;
  /** Twilio's `TimeLimit`: the longest the call may last once answered; bounds slot TTLs. */
  timeLimitSeconds: number;
  /** Ask for answering-machine detection (asynchronous: the result arrives as a callback). */
  machineDetection: boolean;
}

/** Twilio's call status vocabulary, normalised (`in_progress` becomes `in-progress`). */
export type ProviderCallStatus =
  | 'queued'
  | 'initiated'
  | 'ringing'
  | 'in-progress'
  | 'completed'
  | 'busy'
  | 'no-answer'
  | 'failed'
  | 'canceled';

/** The provider's view of one call. */
export interface ProviderCall {
  providerCallId: string;
  status: ProviderCallStatus;
  to: string;
  from: string;
  /** When the provider created the resource (always set by Twilio; second precision). */
  dateCreated?: Date;
  /** When the call left the queue (Twilio leaves it empty while the call is `queued`). */
  startTime?: Date;
  endTime?: Date;
  durationSeconds?: number;
  answeredBy?: string;
}

/** The result of looking a dial up by its attempt: see {@link TelephonyProvider.findCallByAttempt}. */
export type FindCallResult = { found: ProviderCall } | { none: true } | { ambiguous: ProviderCall[] };

/** The port the engine dials through. Every method throws `ProviderError` on provider failure. */
export interface TelephonyProvider {
  /** Creates the call. A `ProviderError` with `retryable` may still hide a created call: reconcile first. */
  placeCall(creds: ProviderCredentials, req: PlaceCallRequest): Promise<ProviderCall>;
  /**
   * Ends a call: fetches its status, then sets `Status=completed` if in progress or
   * `Status=canceled` if queued/ringing. A no-op if the call has already ended or is unknown.
   */
  hangUp(creds: ProviderCredentials, providerCallId: string): Promise<void>;
  /** The provider's current view of a call; `null` when the provider has no such call. */
  fetchCall(creds: ProviderCredentials, providerCallId: string): Promise<ProviderCall | null>;
  /**
   * Finds the call a `dialing` attempt may have created, for reconciliation after a crash or an
   * ambiguous create error. Twilio's Call resource does not expose the status-callback URL (where
   * the attempt id lives), so this searches by `to`, `from` and creation time >= `notBefore`
   * (minus a small margin for clock skew and Twilio's one-second precision):
   * exactly one match → `found`; none → `none`; several → `ambiguous` (mark the attempt
   * `unknown`, never redial blindly).
   */
  findCallByAttempt(
    creds: ProviderCredentials,
    q: { attemptId: string; to: string; from: string; notBefore: Date },
  ): Promise<FindCallResult>;
}

/** What a status callback (or a fetched status) means for our job. */
export type CallProgress =
  /** queued, initiated: nothing changes. `unrecognizedStatus` is set when the status was not understood (log it). */
  | { kind: 'pending'; unrecognizedStatus?: string }
  | { kind: 'ringing' }
  | { kind: 'answered'; answeredBy?: string }
  | {
      kind: 'ended';
      outcome: 'completed' | 'no_answer' | 'busy' | 'failed' | 'canceled';
      durationSeconds?: number;
      answeredBy?: string;
      errorCode?: string;
    };

/** The statuses after which a call never changes again. */
export const FINAL_CALL_STATUSES: ReadonlySet<ProviderCallStatus> = new Set([
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
]);

/** True when the call has ended (a final status). */
export function isFinalCallStatus(status: ProviderCallStatus): boolean {
  return FINAL_CALL_STATUSES.has(status);
}
