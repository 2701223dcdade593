/**
 * Configuration, from environment variables only. Standard names where they exist
 * (DATABASE_URL, REDIS_URL, PORT, HOST, PUBLIC_URL, TWILIO_*); product names start with OCQ_.
 * Bad values fail at start with a {@link ConfigError} naming the variable.
 */
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './domain/errors.ts';

export interface Config {
  /** PostgreSQL connection string; unset means the embedded PGlite database in {@link dataDir}. */
  databaseUrl: string | undefined;
  /** Redis for call slots; unset means in-process slots (one process only). */
  redisUrl: string | undefined;
  dataDir: string;
  host: string;
  port: number;
  publicUrl: string;
  adminToken: string | undefined;
  twilio: { accountSid: string | undefined; authToken: string | undefined; apiBaseUrl: string | undefined };
  leaseTtlSeconds: number;
  safetyPollSeconds: number;
  slotMarginSeconds: number;
  reconcileWindowSeconds: number;
  workerId: string;
  logLevel: string;
  rateLimitPerMinute: number;
  /** Where API rate-limit counters live: `redis` shares them across every API process. */
  rateLimitStore: 'redis' | 'memory';
}

/** One row per variable: the README's configuration table is written from this list. */
export const CONFIG_VARIABLES = [
  ['DATABASE_URL', '(unset: embedded PGlite)', 'PostgreSQL connection string. Required by `ocq serve` and `ocq worker`.'],
  ['REDIS_URL', '(unset: in-process slots)', 'Redis for per-business call slots, shared by every worker and host.'],
  ['OCQ_DATA_DIR', './data', 'Folder of the embedded PGlite database (one process at a time).'],
  ['HOST', '127.0.0.1', 'Interface the HTTP server binds.'],
  ['PORT', '3000', 'HTTP port.'],
  ['PUBLIC_URL', 'http://HOST:PORT', 'The URL the provider reaches this server at; status callbacks are signed against it.'],
  ['OCQ_ADMIN_TOKEN', '(unset: admin API off)', 'System admin token for /api/admin/*. At least 24 characters.'],
  ['TWILIO_ACCOUNT_SID', '(unset)', 'Default Twilio account (a business may carry its own credentials).'],
  ['TWILIO_AUTH_TOKEN', '(unset)', 'Default Twilio auth token; also verifies status callbacks.'],
  ['TWILIO_API_BASE_URL', 'https://api.twilio.com', 'Twilio API base URL; point it at `ocq carrier-sim` to simulate.'],
  ['OCQ_LEASE_TTL_SECONDS', '15', 'Run lease time to live; renewed every ttl/3. A dead worker\'s runs are taken over after it.'],
  ['OCQ_SAFETY_POLL_SECONDS', '5', 'Backstop poll for new runs and freed slots; normal wake-ups are pushed.'],
  ['OCQ_SLOT_MARGIN_SECONDS', '60', 'Added to ring timeout + call time limit to make a slot\'s lifetime.'],
  ['OCQ_RECONCILE_WINDOW_SECONDS', '120', 'How long an unconfirmed dial may stay unknown to the provider before it is marked `unknown`.'],
  ['OCQ_WORKER_ID', 'hostname:pid', 'Name a worker records in `locked_by_worker`.'],
  ['OCQ_LOG_LEVEL', 'info', 'pino log level.'],
  ['OCQ_RATE_LIMIT_PER_MINUTE', '600', 'API requests per token per minute.'],
  ['OCQ_RATE_LIMIT_STORE', '`redis` with REDIS_URL, else `memory`', 'Where the rate-limit counters live: `redis` (one limit across every API process) or `memory` (per process).'],
] as const;

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a URL: "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw.replace(/\/+$/, '');
}

export function loadConfig(env: Env = process.env): Config {
  const host = env.HOST || '127.0.0.1';
  const port = integer(env, 'PORT', 3000, 0, 65535);
  const adminToken = env.OCQ_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 24) {
    throw new ConfigError('OCQ_ADMIN_TOKEN', 'must be at least 24 characters');
  }
  const accountSid = env.TWILIO_ACCOUNT_SID || undefined;
  if (accountSid !== undefined && !/^AC[0-9a-zA-Z]{32}$/.test(accountSid)) {
    throw new ConfigError('TWILIO_ACCOUNT_SID', 'must be "AC" followed by 32 letters or digits');
  }
  const authToken = env.TWILIO_AUTH_TOKEN || undefined;
  if ((accountSid === undefined) !== (authToken === undefined)) {
    throw new ConfigError(accountSid ? 'TWILIO_AUTH_TOKEN' : 'TWILIO_ACCOUNT_SID', 'TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN go together: set both or neither');
  }
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const rateLimitStore = env.OCQ_RATE_LIMIT_STORE || (redisUrl ? 'redis' : 'memory');
  if (rateLimitStore !== 'redis' && rateLimitStore !== 'memory') {
    throw new ConfigError('OCQ_RATE_LIMIT_STORE', `must be redis or memory, got "${rateLimitStore}"`);
  }
  if (rateLimitStore === 'redis' && !redisUrl) throw new ConfigError('OCQ_RATE_LIMIT_STORE', 'is redis but REDIS_URL is not set');
  const logLevel = env.OCQ_LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('OCQ_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  return {
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl,
    dataDir: path.resolve(env.OCQ_DATA_DIR || './data'),
    host,
    port,
    publicUrl: url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://${host}:${port}`,
    adminToken,
    twilio: {
      accountSid,
      authToken,
      apiBaseUrl: url(env, 'TWILIO_API_BASE_URL', ['http:', 'https:']),
    },
    leaseTtlSeconds: integer(env, 'OCQ_LEASE_TTL_SECONDS', 15, 3, 3600),
    safetyPollSeconds: integer(env, 'OCQ_SAFETY_POLL_SECONDS', 5, 1, 3600),
    slotMarginSeconds: integer(env, 'OCQ_SLOT_MARGIN_SECONDS', 60, 5, 3600),
    reconcileWindowSeconds: integer(env, 'OCQ_RECONCILE_WINDOW_SECONDS', 120, 5, 86400),
    workerId: env.OCQ_WORKER_ID || `${os.hostname()}:${process.pid}`,
    logLevel,
    rateLimitPerMinute: integer(env, 'OCQ_RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
    rateLimitStore,
  };
}
