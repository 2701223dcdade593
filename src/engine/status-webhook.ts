/** Connects the provider's status webhook route to the engine: who signed it, and what it means. */
import { findAttemptForWebhook } from '../store/call-events.ts';
import type { StatusWebhookDeps } from '../telephony/webhook-route.ts';
import { onCallProgress } from './call-life.ts';
import type { EngineContext } from './context.ts';
import { resolveCredentials, webhookSigningToken } from './credentials.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function statusWebhookDeps(ctx: EngineContext): StatusWebhookDeps {
  return {
    publicUrl: ctx.config.publicUrl,
    logger: ctx.logger.child({ module: 'status-webhook' }),
    ...(ctx.config.twilio.authToken ? { fallbackAuthToken: ctx.config.twilio.authToken } : {}),
    async authTokenForAttempt(attemptId) {
      if (!UUID.test(attemptId)) return null;
      const owner = await findAttemptForWebhook(ctx.store.db, attemptId);
      if (!owner) return null;
      // API-key businesses still sign with an account auth token; fall back to the global one.
      return webhookSigningToken(resolveCredentials(owner.providerCredentialsRef, ctx.config)) ?? ctx.config.twilio.authToken ?? null;
    },
    onProgress: (attemptId, progress, providerCallId) => onCallProgress(ctx, attemptId, progress, providerCallId),
    onResult: (result) => ctx.metrics?.webhookResults.inc({ result }),
  };
}
