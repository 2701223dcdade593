/**
 * Which provider account a business dials through. A business may name its own credentials
 * (`provider_credentials_ref = "env:PREFIX"`: PREFIX_ACCOUNT_SID with PREFIX_AUTH_TOKEN, or
 * PREFIX_API_KEY + PREFIX_API_SECRET); otherwise the global TWILIO_* ones apply. Secrets live in
 * the environment, never in the database.
 */
import type { Config } from '../config.ts';
import type { ProviderCredentials } from '../telephony/port.ts';

type Env = Record<string, string | undefined>;

export function resolveCredentials(
  credentialsRef: string | null,
  config: Config,
  env: Env = process.env,
): ProviderCredentials | null {
  if (credentialsRef) {
    const prefix = credentialsRef.replace(/^env:/, '');
    const accountSid = env[`${prefix}_ACCOUNT_SID`];
    const authToken = env[`${prefix}_AUTH_TOKEN`];
    const apiKeySid = env[`${prefix}_API_KEY`];
    const apiKeySecret = env[`${prefix}_API_SECRET`];
    if (!accountSid) return null;
    if (apiKeySid && apiKeySecret) return { accountSid, apiKeySid, apiKeySecret, ...(authToken ? { authToken } : {}) };
    return authToken ? { accountSid, authToken } : null;
  }
  const { accountSid, authToken } = config.twilio;
  return accountSid && authToken ? { accountSid, authToken } : null;
}

/** The token Twilio signs status callbacks with (never an API key secret). */
export function webhookSigningToken(credentials: ProviderCredentials | null): string | null {
  return credentials?.authToken ?? null;
}
