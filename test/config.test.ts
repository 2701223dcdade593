/** Configuration: defaults, and every bad value fails at start naming its variable. */
import { describe, expect, it } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_VARIABLES, loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/domain/errors.ts';

const GOOD_SID = `AC${'0123456789abcdef'.repeat(2)}`;

function configError(env: Record<string, string>): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  expect(caught, `loadConfig(${JSON.stringify(env)}) should fail`).toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

describe('loadConfig', () => {
  it('has the documented defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      databaseUrl: undefined,
      redisUrl: undefined,
      dataDir: path.resolve('./data'),
      host: '127.0.0.1',
      port: 3000,
      publicUrl: 'http://127.0.0.1:3000',
      adminToken: undefined,
      twilio: { accountSid: undefined, authToken: undefined, apiBaseUrl: undefined },
      leaseTtlSeconds: 15,
      safetyPollSeconds: 5,
      slotMarginSeconds: 60,
      reconcileWindowSeconds: 120,
      workerId: `${os.hostname()}:${process.pid}`,
      logLevel: 'info',
      rateLimitPerMinute: 600,
      rateLimitStore: 'memory',
    });
    expect(path.isAbsolute(config.dataDir)).toBe(true);
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '', OCQ_ADMIN_TOKEN: '', TWILIO_ACCOUNT_SID: '', OCQ_DATA_DIR: '' })).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      adminToken: undefined,
      twilio: { accountSid: undefined },
      dataDir: path.resolve('./data'),
    });
  });

  it('reads good values', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db.internal:5432/ocq',
      REDIS_URL: 'redis://127.0.0.1:6379',
      OCQ_DATA_DIR: '/var/lib/ocq',
      HOST: '0.0.0.0',
      PORT: '8080',
      PUBLIC_URL: 'https://dialer.example.com/',
      OCQ_ADMIN_TOKEN: 'x'.repeat(24),
      TWILIO_ACCOUNT_SID: GOOD_SID,
      TWILIO_AUTH_TOKEN: 'secret',
      TWILIO_API_BASE_URL: 'http://127.0.0.1:4010',
      OCQ_LEASE_TTL_SECONDS: '30',
      OCQ_WORKER_ID: 'w1',
    });
    expect(config).toMatchObject({
      databaseUrl: 'postgres://u@db.internal:5432/ocq',
      redisUrl: 'redis://127.0.0.1:6379',
      dataDir: '/var/lib/ocq',
      host: '0.0.0.0',
      port: 8080,
      publicUrl: 'https://dialer.example.com',
      adminToken: 'x'.repeat(24),
      twilio: { accountSid: GOOD_SID, authToken: 'secret', apiBaseUrl: 'http://127.0.0.1:4010' },
      leaseTtlSeconds: 30,
      workerId: 'w1',
    });
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/x' }).databaseUrl).toBe('postgresql://localhost/x');
  });

  const bad: [string, string, RegExp][] = [
    ['PORT', 'abc', /whole number/],
    ['PORT', '70000', /whole number from 0 to 65535/],
    ['PORT', '80.5', /whole number/],
    ['DATABASE_URL', 'mysql://root@localhost/ocq', /postgres/],
    ['DATABASE_URL', 'not a url', /not a URL/],
    ['REDIS_URL', 'http://127.0.0.1:6379', /redis/],
    ['PUBLIC_URL', 'ftp://example.com', /http/],
    ['TWILIO_API_BASE_URL', 'api.twilio.com', /not a URL/],
    ['OCQ_LEASE_TTL_SECONDS', '0', /whole number from 3/],
    ['OCQ_LEASE_TTL_SECONDS', '-15', /whole number/],
    ['OCQ_SAFETY_POLL_SECONDS', 'soon', /whole number/],
    ['OCQ_SLOT_MARGIN_SECONDS', '1', /whole number/],
    ['OCQ_RECONCILE_WINDOW_SECONDS', '0', /whole number/],
    ['OCQ_RATE_LIMIT_PER_MINUTE', '0', /whole number/],
    ['TWILIO_ACCOUNT_SID', 'bad', /"AC" followed by 32/],
    ['TWILIO_ACCOUNT_SID', `AC${'0'.repeat(31)}`, /"AC" followed by 32/],
    ['OCQ_ADMIN_TOKEN', 'short-token', /at least 24 characters/],
    ['OCQ_ADMIN_TOKEN', 'x'.repeat(23), /at least 24 characters/],
    ['PORT', '1e3', /whole number/],
    ['PORT', '0x50', /whole number/],
    ['OCQ_LOG_LEVEL', 'verbose', /one of fatal, error, warn, info/],
    ['OCQ_RATE_LIMIT_STORE', 'postgres', /redis or memory/],
    ['OCQ_RATE_LIMIT_STORE', 'redis', /REDIS_URL is not set/],
  ];

  it('shares the rate limit through Redis when there is one, unless told otherwise', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).rateLimitStore).toBe('redis');
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', OCQ_RATE_LIMIT_STORE: 'memory' }).rateLimitStore).toBe('memory');
  });

  it.each(bad)('%s=%s fails naming the variable', (variable, value, problem) => {
    const error = configError({ [variable]: value });
    expect(error.message.startsWith(`${variable}: `), error.message).toBe(true);
    expect(error.message).toMatch(problem);
    expect(error.code).toBe('config_invalid');
    expect(error.details).toEqual({ variable });
  });

  it('a Twilio account without its token, or a token without its account, names the missing one', () => {
    expect(configError({ TWILIO_AUTH_TOKEN: 'a-token' }).details).toEqual({ variable: 'TWILIO_ACCOUNT_SID' });
    const error = configError({ TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}` });
    expect(error.details).toEqual({ variable: 'TWILIO_AUTH_TOKEN' });
    expect(error.message).toMatch(/set both or neither/);
  });

  it('a bad value is reported even when every other variable is fine', () => {
    const error = configError({ DATABASE_URL: 'postgres://localhost/x', PORT: '3000', OCQ_LEASE_TTL_SECONDS: '0' });
    expect(error.details).toEqual({ variable: 'OCQ_LEASE_TTL_SECONDS' });
  });

  it('the documented variables are exactly the ones read, named by one scheme', () => {
    const names = CONFIG_VARIABLES.map(([name]) => name);
    expect(new Set(names).size).toBe(names.length);
    const standard = ['DATABASE_URL', 'REDIS_URL', 'PORT', 'HOST', 'PUBLIC_URL', 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_API_BASE_URL'];
    for (const name of names) expect(standard.includes(name) || name.startsWith('OCQ_'), name).toBe(true);
    for (const name of standard) expect(names).toContain(name);
    // Every variable loadConfig reads is documented: read them through a recording environment.
    const read = new Set<string>();
    loadConfig(new Proxy({} as Record<string, string | undefined>, { get: (_t, key) => (read.add(String(key)), undefined) }));
    expect([...read].sort()).toEqual([...names].sort());
  });
});
