/**
 * Twilio webhook signatures (`X-Twilio-Signature`): base64 HMAC-SHA1, keyed with the account's
 * auth token, over the full URL Twilio requested followed by every POST parameter name and value,
 * sorted by name. Both directions use the official SDK, so the simulator signs exactly as Twilio
 * does and the route verifies exactly as Twilio documents.
 */
import twilio from 'twilio';

/** The header Twilio puts the signature in (Node lower-cases incoming header names). */
export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature';

/** Form parameters as Twilio posts them; a repeated name arrives as an array. */
export type WebhookParams = Record<string, string | string[]>;

/**
 * True when `signatureHeader` is Twilio's signature of this request. The SDK also accepts the URL
 * with and without its default port, as Twilio may sign either.
 *
 * @param fullUrl the URL exactly as Twilio requested it, scheme, host, path and query
 * @param signatureHeader the `X-Twilio-Signature` value; missing or empty never verifies
 */
export function verifyTwilioSignature(
  authToken: string,
  fullUrl: string,
  params: WebhookParams,
  signatureHeader: string | undefined,
): boolean {
  if (!signatureHeader || !authToken) return false;
  return twilio.validateRequest(authToken, signatureHeader, fullUrl, params);
}

/** Twilio's signature for a POST of `params` to `url` (the simulator signs its callbacks with it). */
export function signTwilioRequest(authToken: string, url: string, params: WebhookParams): string {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

/** Parses a form body keeping repeated names as arrays: Twilio's signature covers every value. */
export function parseTwilioForm(body: string): WebhookParams {
  const params: WebhookParams = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const existing = params[key];
    if (existing === undefined) params[key] = value;
    else params[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return params;
}
