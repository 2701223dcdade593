/**
 * Turns whatever the Twilio SDK throws into a {@link ProviderError} with a stable code, an
 * English and a Hebrew message, and the two flags the engine decides on:
 *
 * | code                                | when                                         | retryable | fatalForRun |
 * |-------------------------------------|----------------------------------------------|-----------|-------------|
 * | `provider_auth_failed`              | HTTP 401, Twilio 20003                       | no        | yes         |
 * | `provider_account_inactive`         | Twilio 10001, 20005 (suspended/closed)       | no        | yes         |
 * | `provider_invalid_caller_id`        | Twilio 21210, 21212, 21213 (the From number) | no        | yes         |
 * | `provider_invalid_number`           | Twilio 21201, 21211, 21214, 21217, 13224     | no        | no          |
 * | `provider_destination_not_permitted`| Twilio 21215, 21216, 21219, 13227 (geo/trial)| no        | no          |
 * | `provider_rate_limited`             | HTTP 429, Twilio 20429                       | yes       | no          |
 * | `provider_unavailable`              | HTTP 5xx                                     | yes       | no          |
 * | `provider_unreachable`              | ECONNREFUSED, DNS failure, no route          | yes       | no          |
 * | `provider_timeout`                  | request timeout, connection reset            | yes       | no          |
 * | `provider_rejected`                 | any other 4xx                                | no        | no          |
 * | `provider_error`                    | anything else (a bug, a malformed response)  | no        | no          |
 *
 * A bad caller id is fatal for the run: every call of the business would fail the same way.
 * After `provider_timeout` or `provider_unavailable` the create may have reached Twilio: see
 * {@link mayHaveReachedProvider}; reconcile with `findCallByAttempt` before any redial.
 */
import { ProviderError, type Messages } from '../domain/errors.ts';

/** The stable codes this module produces. */
export type ProviderErrorCode =
  | 'provider_auth_failed'
  | 'provider_account_inactive'
  | 'provider_invalid_caller_id'
  | 'provider_invalid_number'
  | 'provider_destination_not_permitted'
  | 'provider_rate_limited'
  | 'provider_unavailable'
  | 'provider_unreachable'
  | 'provider_timeout'
  | 'provider_rejected'
  | 'provider_error';

const AUTH_CODES = new Set([20003]);
const ACCOUNT_INACTIVE_CODES = new Set([10001, 20005]);
const CALLER_ID_CODES = new Set([21210, 21212, 21213]);
const INVALID_NUMBER_CODES = new Set([21201, 21211, 21214, 21217, 13224]);
const NOT_PERMITTED_CODES = new Set([21215, 21216, 21219, 13227]);
const RATE_LIMIT_CODES = new Set([20429]);

/** Error codes (Node/axios) meaning the request never left this host or never got a connection. */
const UNREACHABLE_NET_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Error codes meaning the request may have been received before the connection failed. */
const TIMEOUT_NET_CODES = new Set(['ETIMEDOUT', 'ECONNABORTED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ERR_NETWORK']);

function messagesFor(code: ProviderErrorCode, detail: string): Messages {
  const suffix = detail ? ` (${detail})` : '';
  switch (code) {
    case 'provider_auth_failed':
      return { en: `the telephony provider rejected the account credentials${suffix}`, he: `ספק הטלפוניה דחה את פרטי החשבון${suffix}` };
    case 'provider_account_inactive':
      return { en: `the telephony provider account is not active${suffix}`, he: `חשבון ספק הטלפוניה אינו פעיל${suffix}` };
    case 'provider_invalid_caller_id':
      return { en: `the caller id is not valid or not verified with the provider${suffix}`, he: `מספר המתקשר אינו תקין או אינו מאומת אצל הספק${suffix}` };
    case 'provider_invalid_number':
      return { en: `the phone number is not valid or cannot be reached${suffix}`, he: `מספר הטלפון אינו תקין או אינו ניתן להשגה${suffix}` };
    case 'provider_destination_not_permitted':
      return { en: `the provider account may not call this number${suffix}`, he: `לחשבון אצל הספק אין הרשאה להתקשר למספר זה${suffix}` };
    case 'provider_rate_limited':
      return { en: `the telephony provider is rate limiting requests${suffix}`, he: `ספק הטלפוניה מגביל את קצב הבקשות${suffix}` };
    case 'provider_unavailable':
      return { en: `the telephony provider is temporarily unavailable${suffix}`, he: `ספק הטלפוניה אינו זמין כרגע${suffix}` };
    case 'provider_unreachable':
      return { en: `could not connect to the telephony provider${suffix}`, he: `לא ניתן להתחבר לספק הטלפוניה${suffix}` };
    case 'provider_timeout':
      return { en: `the telephony provider did not answer in time${suffix}`, he: `ספק הטלפוניה לא הגיב בזמן${suffix}` };
    case 'provider_rejected':
      return { en: `the telephony provider rejected the request${suffix}`, he: `ספק הטלפוניה דחה את הבקשה${suffix}` };
    case 'provider_error':
      return { en: `unexpected telephony provider error${suffix}`, he: `שגיאה לא צפויה מספק הטלפוניה${suffix}` };
  }
}

function make(
  code: ProviderErrorCode,
  detail: string,
  opts: { retryable: boolean; fatalForRun?: boolean; providerStatus?: number; providerCode?: number },
): ProviderError {
  return new ProviderError(code, messagesFor(code, detail), opts);
}

/** The fields we read from the SDK's RestException / TwilioServiceException. */
interface HttpErrorShape {
  status: number;
  code?: number;
  message?: string;
}

function asHttpError(err: unknown): HttpErrorShape | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as { status?: unknown; code?: unknown; message?: unknown };
  if (typeof e.status !== 'number') return null;
  return {
    status: e.status,
    ...(typeof e.code === 'number' && { code: e.code }),
    ...(typeof e.message === 'string' && { message: e.message }),
  };
}

/** The first Node/axios error code found on the error, its causes, or an AggregateError's members. */
function networkCode(err: unknown, depth = 0): string | null {
  if (typeof err !== 'object' || err === null || depth > 4) return null;
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (UNREACHABLE_NET_CODES.has(e.code) || TIMEOUT_NET_CODES.has(e.code))) return e.code;
  const fromCause = networkCode(e.cause, depth + 1);
  if (fromCause) return fromCause;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const code = networkCode(inner, depth + 1);
      if (code) return code;
    }
  }
  return null;
}

/** Classifies an HTTP error answer from Twilio by its Twilio error code first, then its HTTP status. */
function classifyHttp({ status, code, message = '' }: HttpErrorShape): ProviderError {
  const opts = { providerStatus: status, ...(code !== undefined && { providerCode: code }) };
  const detail = code !== undefined ? `${code}: ${message}` : `HTTP ${status}`;
  if (code !== undefined) {
    if (AUTH_CODES.has(code)) return make('provider_auth_failed', detail, { ...opts, retryable: false, fatalForRun: true });
    if (ACCOUNT_INACTIVE_CODES.has(code)) return make('provider_account_inactive', detail, { ...opts, retryable: false, fatalForRun: true });
    if (CALLER_ID_CODES.has(code)) return make('provider_invalid_caller_id', detail, { ...opts, retryable: false, fatalForRun: true });
    if (INVALID_NUMBER_CODES.has(code)) return make('provider_invalid_number', detail, { ...opts, retryable: false });
    if (NOT_PERMITTED_CODES.has(code)) return make('provider_destination_not_permitted', detail, { ...opts, retryable: false });
    if (RATE_LIMIT_CODES.has(code)) return make('provider_rate_limited', detail, { ...opts, retryable: true });
  }
  if (status === 401) return make('provider_auth_failed', detail, { ...opts, retryable: false, fatalForRun: true });
  if (status === 429) return make('provider_rate_limited', detail, { ...opts, retryable: true });
  if (status >= 500) return make('provider_unavailable', detail, { ...opts, retryable: true });
  if (status >= 400) return make('provider_rejected', detail, { ...opts, retryable: false });
  return make('provider_error', detail, { ...opts, retryable: false });
}

/**
 * Classifies anything the Twilio SDK (or the network under it) throws. A `ProviderError` passes
 * through unchanged, so callers may classify twice safely.
 */
export function classifyProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const http = asHttpError(err);
  if (http) return classifyHttp(http);
  const net = networkCode(err);
  if (net && UNREACHABLE_NET_CODES.has(net)) return make('provider_unreachable', net, { retryable: true });
  if (net) return make('provider_timeout', net, { retryable: true });
  const message = err instanceof Error ? err.message : String(err);
  if (/timeout/i.test(message)) return make('provider_timeout', message, { retryable: true });
  return make('provider_error', message, { retryable: false });
}

/**
 * True when a failed request may nevertheless have been carried out by the provider (a timeout,
 * a reset connection, a 5xx): after a failed `placeCall` with this error, look the call up with
 * `findCallByAttempt` before dialling again.
 */
export function mayHaveReachedProvider(err: ProviderError): boolean {
  return err.code === 'provider_timeout' || err.code === 'provider_unavailable' || err.code === 'provider_error';
}

/** True for Twilio's "not found" answer (HTTP 404 / code 20404). */
export function isNotFound(err: unknown): boolean {
  const http = asHttpError(err);
  return http !== null && (http.status === 404 || http.code === 20404);
}
