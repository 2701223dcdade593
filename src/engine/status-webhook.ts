/** Connects the provider's status webhook route to the engine: who signed it, and what it means. */
import { findAttemptForWebhook } from '../store/call-events.ts';
import type { StatusWebhookDeps } from '../telephony/webhook-route.ts';
import { onCallProgress } from './call-life.ts';
import type { EngineContext } from './context.ts';
import { resolveCredentials, webhookSigningToken } from './credentials.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A call sends four callbacks; its signing token is looked up once. Bounded, and short-lived so
 * a business's changed credentials are seen within minutes.
 */
class AttemptTokenCache {
  private readonly entries = new Map<string, { token: string; at: number }>();
  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 5 * 60_000,
  ) {}

  get(attemptId: string): string | undefined {
    const entry = this.entries.get(attemptId);
    if (!entry || Date.now() - entry.at > this.ttlMs) return undefined;
    return entry.token;
  }

  set(attemptId: string, token: string): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(attemptId, { token, at: Date.now() });
  }
}

export function statusWebhookDeps(ctx: EngineContext): StatusWebhookDeps {
  const tokens = new AttemptTokenCache();
  return {
    publicUrl: ctx.config.publicUrl,
    logger: ctx.logger.child({ module: 'status-webhook' }),
    ...(ctx.config.twilio.authToken ? { fallbackAuthToken: ctx.config.twilio.authToken } : {}),
    async authTokenForAttempt(attemptId) {
      if (!UUID.test(attemptId)) return null;
      const cached = tokens.get(attemptId);
      if (cached) return cached;
      const owner = await findAttemptForWebhook(ctx.store.db, attemptId);
      if (!owner) return null;
      // API-key businesses still sign with an account auth token; fall back to the global one.
      const token = webhookSigningToken(resolveCredentials(owner.providerCredentialsRef, ctx.config)) ?? ctx.config.twilio.authToken ?? null;
      if (token) tokens.set(attemptId, token);
      return token;
    },
    // A well-formed attempt id only: the engine's statements take it as a UUID.
    onProgress: async (attemptId, progress, providerCallId) =>
      UUID.test(attemptId) ? onCallProgress(ctx, attemptId, progress, providerCallId) : 'unknown_attempt',
    onResult: (result) => ctx.metrics?.webhookResults.inc({ result }),
  };
}
