/**
 * `POST /webhooks/twilio/status`: Twilio's call status callbacks. The route authenticates the
 * callback (signature), translates it (`mapCallStatus`) and hands it to the engine. It decides
 * nothing else: duplicates and out-of-order callbacks are the engine's to ignore.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from '../logger.ts';
import type { CallProgress } from './port.ts';
import { parseTwilioForm, TWILIO_SIGNATURE_HEADER, verifyTwilioSignature, type WebhookParams } from './signature.ts';
import { mapCallStatus } from './status-map.ts';

/** The path of the status webhook; Twilio's StatusCallback is `{PUBLIC_URL}{STATUS_WEBHOOK_PATH}?attempt=<id>`. */
export const STATUS_WEBHOOK_PATH = '/webhooks/twilio/status';

/** The status-callback URL for one attempt, as passed to `placeCall`. */
export function statusCallbackUrlFor(publicUrl: string, attemptId: string): string {
  return `${trimSlash(publicUrl)}${STATUS_WEBHOOK_PATH}?attempt=${encodeURIComponent(attemptId)}`;
}

/** How one callback was handled (for metrics). */
export type StatusWebhookResult = 'applied' | 'ignored' | 'unknown_attempt' | 'bad_signature';

/** What the status webhook needs from the rest of the product. */
export interface StatusWebhookDeps {
  /** The public origin Twilio calls, e.g. `https://ocq.example.com`; the signed URL is `publicUrl + request.url`. */
  publicUrl: string;
  /**
   * The auth token of the account that placed this attempt's call; `null` when the attempt is
   * unknown. A business on API-key credentials without an auth token should get the global one.
   * Asked only when the global token does not verify the callback.
   */
  authTokenForAttempt(attemptId: string): Promise<string | null>;
  /**
   * The global `TWILIO_AUTH_TOKEN`, the operator's own account: a callback it verifies is
   * authentic whatever attempt it names, so it needs no look-up first (the common case).
   */
  fallbackAuthToken?: string;
  /**
   * Applies the progress to the attempt: `'ignored'` for duplicates and stale, out-of-order
   * events, `'unknown_attempt'` when no call has this attempt id.
   */
  onProgress(attemptId: string, progress: CallProgress, providerCallId: string): Promise<'applied' | 'ignored' | 'unknown_attempt'>;
  logger: Logger;
  /** Metrics hook, called once per callback. */
  onResult?(result: StatusWebhookResult): void;
}

const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Coerces a body parsed by someone else's form parser (values may be numbers or nested) to strings. */
function toWebhookParams(body: unknown): WebhookParams {
  const params: WebhookParams = {};
  if (typeof body !== 'object' || body === null) return params;
  for (const [key, value] of Object.entries(body)) {
    params[key] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return params;
}

/** The last value of each parameter, for the status mapping. */
function singleValued(params: WebhookParams): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) flat[key] = Array.isArray(value) ? (value.at(-1) ?? '') : value;
  return flat;
}

function replyTwiml(reply: FastifyReply, status: number): FastifyReply {
  return reply.code(status).type('text/xml').send(status === 200 ? EMPTY_TWIML : '');
}

/**
 * The status webhook as an encapsulated Fastify plugin. It brings its own form parser when the
 * parent server has none, without adding one to the parent.
 *
 * - bad or missing signature → 403, a `security` warn line, nothing applied;
 * - unknown attempt → 200 (so Twilio stops), a log line, nothing applied (the engine says so);
 * - otherwise → `onProgress`, then 200 with empty TwiML.
 *
 * @example
 * app.register(twilioStatusWebhook({ publicUrl, authTokenForAttempt, onProgress, logger }));
 */
export function twilioStatusWebhook(deps: StatusWebhookDeps): FastifyPluginAsync {
  const log = deps.logger.child({ module: 'twilio-status-webhook' });
  const report = (result: StatusWebhookResult): void => deps.onResult?.(result);

  return async (app) => {
    if (!app.hasContentTypeParser(FORM_CONTENT_TYPE)) {
      app.addContentTypeParser(FORM_CONTENT_TYPE, { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
        done(null, parseTwilioForm(body as string));
      });
    }

    app.post(STATUS_WEBHOOK_PATH, async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const attemptId = typeof query.attempt === 'string' ? query.attempt : '';
      const params = toWebhookParams(request.body);
      const signature = request.headers[TWILIO_SIGNATURE_HEADER];
      const signedUrl = trimSlash(deps.publicUrl) + request.url; // read per request: may be a getter set after listen
      const callSid = typeof params.CallSid === 'string' ? params.CallSid : '';

      const given = typeof signature === 'string' ? signature : undefined;
      const rejected = (): FastifyReply => {
        log.warn(
          { security: true, attemptId, callSid, ip: request.ip, url: signedUrl, signaturePresent: Boolean(signature) },
          'status callback rejected: bad or missing X-Twilio-Signature',
        );
        report('bad_signature');
        return replyTwiml(reply, 403);
      };
      // The operator's account signs most callbacks: verified with no database look-up. Others
      // are verified with the token of the account that placed the attempt's call.
      const fallback = deps.fallbackAuthToken;
      if (fallback === undefined || !verifyTwilioSignature(fallback, signedUrl, params, given)) {
        const attemptToken = attemptId ? await deps.authTokenForAttempt(attemptId) : null;
        if (attemptToken === null && fallback === undefined) {
          // Nothing to verify with, and nothing will be applied: answer 200 so Twilio stops.
          log.warn({ attemptId, callSid, verified: false }, 'status callback for an unknown attempt (not verifiable)');
          report('unknown_attempt');
          return replyTwiml(reply, 200);
        }
        if (attemptToken === null || !verifyTwilioSignature(attemptToken, signedUrl, params, given)) return rejected();
      }

      const progress = mapCallStatus(singleValued(params));
      if (progress.kind === 'pending' && progress.unrecognizedStatus !== undefined) {
        log.warn({ attemptId, callSid, callStatus: progress.unrecognizedStatus }, 'unrecognized CallStatus: treated as pending');
      }
      const result = await deps.onProgress(attemptId, progress, callSid);
      if (result === 'unknown_attempt') log.info({ attemptId, callSid, callStatus: params.CallStatus }, 'status callback for an unknown attempt');
      report(result);
      return replyTwiml(reply, 200);
    });
  };
}
