/**
 * The status webhook through a real Fastify server: signatures (valid, tampered body, tampered
 * URL, missing, wrong token), unknown attempts, and pass-through of the engine's answer.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallProgress } from '../src/telephony/port.ts';
import { signTwilioRequest, verifyTwilioSignature } from '../src/telephony/signature.ts';
import { STATUS_WEBHOOK_PATH, statusCallbackUrlFor, twilioStatusWebhook, type StatusWebhookResult } from '../src/telephony/webhook-route.ts';

const PUBLIC_URL = 'https://ocq.example.com';
const TOKEN = 'account-auth-token';
const FALLBACK = 'global-auth-token';

interface Harness {
  app: FastifyInstance;
  applied: Array<{ attemptId: string; progress: CallProgress; callSid: string }>;
  results: StatusWebhookResult[];
  logs: Array<Record<string, unknown>>;
  engineAnswer: 'applied' | 'ignored';
  /** authTokenForAttempt calls (the database look-up the global token saves). */
  lookups: number;
}

async function harness(opts: { fallback?: boolean; publicUrl?: () => string; parentFormParser?: boolean } = {}): Promise<Harness> {
  const h: Harness = { app: Fastify(), applied: [], results: [], logs: [], engineAnswer: 'applied', lookups: 0 };
  const logger = pino({ level: 'debug' }, { write: (line: string) => void h.logs.push(JSON.parse(line) as Record<string, unknown>) });
  if (opts.parentFormParser) {
    h.app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
  }
  await h.app.register(
    twilioStatusWebhook({
      get publicUrl() {
        return opts.publicUrl?.() ?? PUBLIC_URL;
      },
      authTokenForAttempt: async (attemptId) => {
        h.lookups += 1;
        return attemptId.startsWith('known') ? TOKEN : null;
      },
      ...(opts.fallback && { fallbackAuthToken: FALLBACK }),
      onProgress: async (attemptId, progress, callSid) => {
        // As the engine: no job has a `gone-*` attempt.
        if (attemptId.startsWith('gone')) return 'unknown_attempt';
        h.applied.push({ attemptId, progress, callSid });
        return h.engineAnswer;
      },
      onResult: (result) => void h.results.push(result),
      logger,
    }),
  );
  return h;
}

function callbackParams(status = 'completed'): Record<string, string> {
  return {
    AccountSid: 'AC00000000000000000000000000000001',
    CallSid: 'CA00000000000000000000000000000001',
    CallStatus: status,
    CallDuration: '31',
    From: '+15550000002',
    To: '+15550000001',
    Direction: 'outbound-api',
    SequenceNumber: '3',
  };
}

function post(h: Harness, path: string, params: Record<string, string>, signature?: string) {
  return h.app.inject({
    method: 'POST',
    url: path,
    headers: {
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      ...(signature !== undefined && { 'x-twilio-signature': signature }),
    },
    payload: new URLSearchParams(params).toString(),
  });
}

const pathFor = (attemptId: string): string => `${STATUS_WEBHOOK_PATH}?attempt=${attemptId}`;
const securityLines = (h: Harness) => h.logs.filter((l) => l.security === true);

describe('status webhook: signatures', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.app.close();
  });

  it('accepts a correctly signed callback and hands the mapped progress to the engine', async () => {
    const params = callbackParams();
    const res = await post(h, pathFor('known-1'), params, signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/xml');
    expect(res.body).toContain('<Response/>');
    expect(h.applied).toEqual([
      { attemptId: 'known-1', progress: { kind: 'ended', outcome: 'completed', durationSeconds: 31 }, callSid: params.CallSid },
    ]);
    expect(h.results).toEqual(['applied']);
  });

  it('rejects a tampered body with 403, a security log line, and no engine call', async () => {
    const params = callbackParams('busy');
    const signature = signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params);
    const res = await post(h, pathFor('known-1'), { ...params, CallStatus: 'completed' }, signature);
    expect(res.statusCode).toBe(403);
    expect(h.applied).toEqual([]);
    expect(h.results).toEqual(['bad_signature']);
    expect(securityLines(h)).toHaveLength(1);
    expect(securityLines(h)[0]).toMatchObject({ level: 40, attemptId: 'known-1', signaturePresent: true });
  });

  it('rejects a signature made for another URL (tampered attempt id)', async () => {
    const params = callbackParams();
    const signature = signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params);
    const res = await post(h, pathFor('known-2'), params, signature);
    expect(res.statusCode).toBe(403);
    expect(h.applied).toEqual([]);
  });

  it('rejects a callback without a signature', async () => {
    const res = await post(h, pathFor('known-1'), callbackParams());
    expect(res.statusCode).toBe(403);
    expect(h.applied).toEqual([]);
    expect(securityLines(h)[0]).toMatchObject({ signaturePresent: false });
  });

  it('rejects a signature made with another account token', async () => {
    const params = callbackParams();
    const res = await post(h, pathFor('known-1'), params, signTwilioRequest('someone-else', statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params));
    expect(res.statusCode).toBe(403);
  });

  it("passes the engine's 'ignored' through (duplicates are the engine's business)", async () => {
    h.engineAnswer = 'ignored';
    const params = callbackParams('ringing');
    const res = await post(h, pathFor('known-1'), params, signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params));
    expect(res.statusCode).toBe(200);
    expect(h.applied[0]?.progress).toEqual({ kind: 'ringing' });
    expect(h.results).toEqual(['ignored']);
  });

  it('logs an unrecognized CallStatus and passes it on as pending', async () => {
    const params = callbackParams('warping');
    const res = await post(h, pathFor('known-1'), params, signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-1'), params));
    expect(res.statusCode).toBe(200);
    expect(h.applied[0]?.progress).toEqual({ kind: 'pending', unrecognizedStatus: 'warping' });
    expect(h.logs.some((l) => l.callStatus === 'warping' && l.level === 40)).toBe(true);
  });
});

describe('status webhook: unknown attempts', () => {
  it('answers 200 (so Twilio stops) for a verified callback of an unknown attempt', async () => {
    const h = await harness({ fallback: true });
    const params = callbackParams();
    const res = await post(h, pathFor('gone-1'), params, signTwilioRequest(FALLBACK, statusCallbackUrlFor(PUBLIC_URL, 'gone-1'), params));
    expect(res.statusCode).toBe(200);
    expect(h.applied).toEqual([]);
    expect(h.results).toEqual(['unknown_attempt']);
    expect(h.logs.some((l) => l.msg === 'status callback for an unknown attempt' && l.attemptId === 'gone-1')).toBe(true);
    await h.app.close();
  });

  it('verifies a callback signed by the global account without looking the attempt up', async () => {
    const h = await harness({ fallback: true });
    const params = callbackParams('ringing');
    const res = await post(h, pathFor('known-7'), params, signTwilioRequest(FALLBACK, statusCallbackUrlFor(PUBLIC_URL, 'known-7'), params));
    expect(res.statusCode).toBe(200);
    expect(h.lookups).toBe(0);
    expect(h.results).toEqual(['applied']);
    // The attempt's own account still verifies (after the look-up); a forgery still fails.
    const own = await post(h, pathFor('known-8'), params, signTwilioRequest(TOKEN, statusCallbackUrlFor(PUBLIC_URL, 'known-8'), params));
    expect(own.statusCode).toBe(200);
    expect(h.lookups).toBe(1);
    const forged = await post(h, pathFor('known-8'), params, 'forged');
    expect(forged.statusCode).toBe(403);
    expect(h.results).toEqual(['applied', 'applied', 'bad_signature']);
    await h.app.close();
  });

  it('still rejects a forged callback for an unknown attempt when it can verify', async () => {
    const h = await harness({ fallback: true });
    const res = await post(h, pathFor('gone-1'), callbackParams(), 'forged');
    expect(res.statusCode).toBe(403);
    expect(h.results).toEqual(['bad_signature']);
    await h.app.close();
  });

  it('answers 200 without applying anything when there is no token to verify with', async () => {
    const h = await harness();
    const res = await post(h, STATUS_WEBHOOK_PATH, callbackParams(), 'whatever');
    expect(res.statusCode).toBe(200);
    expect(h.applied).toEqual([]);
    expect(h.results).toEqual(['unknown_attempt']);
    await h.app.close();
  });
});

describe('status webhook on a listening server', () => {
  it('verifies against publicUrl + path + query over real HTTP, with a parent form parser in place', async () => {
    let publicUrl = '';
    const h = await harness({ publicUrl: () => publicUrl, parentFormParser: true });
    publicUrl = await h.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const params = callbackParams('in-progress');
      const url = statusCallbackUrlFor(publicUrl, 'known-9');
      const ok = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilioRequest(TOKEN, url, params) },
        body: new URLSearchParams(params),
      });
      expect(ok.status).toBe(200);
      const forged = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signTwilioRequest(TOKEN, url, params) },
        body: new URLSearchParams({ ...params, CallStatus: 'completed' }),
      });
      expect(forged.status).toBe(403);
      expect(h.applied).toEqual([{ attemptId: 'known-9', progress: { kind: 'answered' }, callSid: params.CallSid }]);
    } finally {
      await h.app.close();
    }
  });
});

describe('verifyTwilioSignature', () => {
  it("matches Twilio's documented example", () => {
    // https://www.twilio.com/docs/usage/security#validating-requests
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+12349013030', Digits: '1234', From: '+12349013030', To: '+18005551212' };
    expect(signTwilioRequest('12345', url, params)).toBe('0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
    expect(verifyTwilioSignature('12345', url, params, '0/KCTR6DLpKmkAf8muzZqo1nDgQ=')).toBe(true);
    expect(verifyTwilioSignature('12345', url, params, undefined)).toBe(false);
  });
});
