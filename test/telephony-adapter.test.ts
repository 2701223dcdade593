/**
 * The real Twilio SDK adapter against the simulated carrier on a real port, with callbacks
 * going to the real status webhook on another real port.
 */
import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProviderError } from '../src/domain/errors.ts';
import { silentLogger } from '../src/logger.ts';
import { createCarrierSim, newSid, type CarrierSim } from '../src/telephony/carrier-sim/index.ts';
import { mayHaveReachedProvider } from '../src/telephony/errors.ts';
import type { CallProgress, PlaceCallRequest, ProviderCredentials, TelephonyProvider } from '../src/telephony/port.ts';
import { createTwilioProvider } from '../src/telephony/twilio-adapter.ts';
import { statusCallbackUrlFor, twilioStatusWebhook } from '../src/telephony/webhook-route.ts';

const ACCOUNT = newSid('AC');
const TOKEN = 'sim-auth-token-1';
const KEY = newSid('SK');
const KEY_SECRET = 'sim-key-secret';
const creds: ProviderCredentials = { accountSid: ACCOUNT, authToken: TOKEN };
const FROM = '+15550100000';
/** Ten real ms per Twilio second: Timeout and TimeLimit play out quickly. */
const SECOND_MS = 10;
const ANSWER_ALL = { shares: { answered: 1, noAnswer: 0, busy: 0, failed: 0 } };

let sim: CarrierSim;
let hook: FastifyInstance;
let publicUrl = '';
let provider: TelephonyProvider;
const progressByAttempt = new Map<string, CallProgress[]>();
let badSignatures = 0;

beforeAll(async () => {
  sim = createCarrierSim({
    accounts: [{ accountSid: ACCOUNT, authToken: TOKEN, apiKeys: [{ sid: KEY, secret: KEY_SECRET }] }],
    secondMs: SECOND_MS,
  });
  const apiBaseUrl = await sim.listen();
  hook = Fastify();
  await hook.register(
    twilioStatusWebhook({
      get publicUrl() {
        return publicUrl;
      },
      authTokenForAttempt: async (attemptId) => (attemptId.startsWith('att-') ? TOKEN : null),
      onProgress: async (attemptId, progress) => {
        progressByAttempt.set(attemptId, [...(progressByAttempt.get(attemptId) ?? []), progress]);
        return 'applied';
      },
      onResult: (result) => {
        if (result === 'bad_signature') badSignatures += 1;
      },
      logger: silentLogger,
    }),
  );
  publicUrl = await hook.listen({ port: 0, host: '127.0.0.1' });
  provider = createTwilioProvider({ apiBaseUrl, logger: silentLogger, reconcileMarginMs: 2_000 });
});

afterAll(async () => {
  await sim?.close();
  await hook?.close();
});

beforeEach(() => {
  sim.reset();
  sim.setScript({ ringMs: [5, 10], talkMs: [20, 20], ...ANSWER_ALL });
  progressByAttempt.clear();
  badSignatures = 0;
});

let attemptCounter = 0;
function request(overrides: Partial<PlaceCallRequest> = {}): PlaceCallRequest {
  const attemptId = overrides.attemptId ?? `att-${++attemptCounter}`;
  return {
    attemptId,
    to: `+1555020${String(attemptCounter).padStart(4, '0')}`,
    from: FROM,
    handlerUrl: `${publicUrl}/twiml/${attemptId}`,
    statusCallbackUrl: statusCallbackUrlFor(publicUrl, attemptId),
    ringTimeoutSeconds: 30,
    timeLimitSeconds: 600,
    machineDetection: false,
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('placeCall through the SDK', () => {
  it('creates the call, and every status callback asked for (not `initiated`) arrives signed, verified and in order', async () => {
    const req = request();
    const call = await provider.placeCall(creds, req);
    expect(call.providerCallId).toMatch(/^CA[0-9a-f]{32}$/);
    expect(call).toMatchObject({ status: 'queued', to: req.to, from: FROM });
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)).toEqual([
      { kind: 'ringing' },
      { kind: 'answered' },
      { kind: 'ended', outcome: 'completed', durationSeconds: 2 },
    ]);
    expect(badSignatures).toBe(0);
    expect(sim.record.snapshot().callbacks).toMatchObject({ delivered: 3, dropped: 0, failed: 0 });
  });

  it('passes Timeout: ringing longer than it is a no-answer', async () => {
    sim.setScript({ ringMs: [200, 200] }); // 20 Twilio seconds of ringing
    const req = request({ ringTimeoutSeconds: 5 });
    const call = await provider.placeCall(creds, req);
    const ended = await sim.waitForCallEnd(call.providerCallId);
    expect(ended.status).toBe('no-answer');
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)?.at(-1)).toEqual({ kind: 'ended', outcome: 'no_answer', durationSeconds: 0 });
  });

  it('passes TimeLimit: the call is cut at it', async () => {
    sim.setScript({ talkMs: [5_000, 5_000] });
    const call = await provider.placeCall(creds, request({ timeLimitSeconds: 3 }));
    const ended = await sim.waitForCallEnd(call.providerCallId);
    expect(ended).toMatchObject({ status: 'completed', durationSeconds: 3 });
  });

  it('asks for asynchronous machine detection, whose verdict arrives on the status webhook', async () => {
    sim.setScript({ machineShare: 1 });
    const req = request({ machineDetection: true });
    await provider.placeCall(creds, req);
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)).toEqual([
      { kind: 'ringing' },
      { kind: 'answered' },
      { kind: 'answered', answeredBy: 'machine_start' },
      { kind: 'ended', outcome: 'completed', durationSeconds: 2, answeredBy: 'machine_start' },
    ]);
  });

  it('works with API key credentials (callbacks still signed with the auth token)', async () => {
    const keyCreds: ProviderCredentials = { accountSid: ACCOUNT, apiKeySid: KEY, apiKeySecret: KEY_SECRET, authToken: TOKEN };
    const req = request();
    const call = await provider.placeCall(keyCreds, req);
    expect((await provider.fetchCall(keyCreds, call.providerCallId))?.providerCallId).toBe(call.providerCallId);
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)?.at(-1)).toMatchObject({ kind: 'ended', outcome: 'completed' });
  });
});

describe('fetchCall', () => {
  it("returns the provider's view of the call", async () => {
    sim.setScript({ talkMs: [40, 40] });
    const req = request();
    const placed = await provider.placeCall(creds, req);
    await sim.idle();
    const fetched = await provider.fetchCall(creds, placed.providerCallId);
    expect(fetched).toMatchObject({ providerCallId: placed.providerCallId, status: 'completed', to: req.to, from: FROM, durationSeconds: 4 });
    expect(fetched?.startTime).toBeInstanceOf(Date);
    expect(fetched?.endTime).toBeInstanceOf(Date);
  });

  it('returns null for a call the provider does not have', async () => {
    expect(await provider.fetchCall(creds, newSid('CA'))).toBeNull();
  });
});

describe('hangUp', () => {
  it('completes a live call', async () => {
    sim.setScript({ talkMs: [60_000, 60_000] });
    const req = request();
    const { providerCallId } = await provider.placeCall(creds, req);
    await sim.waitFor((s) => s.callView(providerCallId)?.status === 'in-progress');
    await provider.hangUp(creds, providerCallId);
    expect(sim.callView(providerCallId)?.status).toBe('completed');
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)?.at(-1)).toMatchObject({ kind: 'ended', outcome: 'completed' });
  });

  it('cancels a ringing call', async () => {
    sim.setScript({ ringMs: [60_000, 60_000] });
    const req = request({ ringTimeoutSeconds: 600 });
    const { providerCallId } = await provider.placeCall(creds, req);
    await sim.waitFor((s) => s.callView(providerCallId)?.status === 'ringing');
    await provider.hangUp(creds, providerCallId);
    expect(sim.callView(providerCallId)?.status).toBe('canceled');
    await sim.idle();
    expect(progressByAttempt.get(req.attemptId)?.at(-1)).toEqual({ kind: 'ended', outcome: 'canceled', durationSeconds: 0 });
  });

  it('is a no-op for an ended call and for an unknown one', async () => {
    const { providerCallId } = await provider.placeCall(creds, request());
    await sim.idle();
    await provider.hangUp(creds, providerCallId);
    await provider.hangUp(creds, newSid('CA'));
    expect(sim.callView(providerCallId)?.status).toBe('completed');
  });
});

describe('findCallByAttempt', () => {
  it('finds the one call to the number from the caller id since the attempt began', async () => {
    const notBefore = new Date();
    const req = request();
    const placed = await provider.placeCall(creds, req);
    await sim.idle();
    const result = await provider.findCallByAttempt(creds, { attemptId: req.attemptId, to: req.to, from: FROM, notBefore });
    expect(result).toMatchObject({ found: { providerCallId: placed.providerCallId } });
  });

  it('finds nothing for a number never dialled, or calls from before the attempt', async () => {
    const req = request();
    await provider.placeCall(creds, req);
    await sim.idle();
    expect(await provider.findCallByAttempt(creds, { attemptId: 'x', to: '+15559999999', from: FROM, notBefore: new Date() })).toEqual({ none: true });
    const later = new Date(Date.now() + 60_000);
    expect(await provider.findCallByAttempt(creds, { attemptId: req.attemptId, to: req.to, from: FROM, notBefore: later })).toEqual({ none: true });
  });

  it('reports several candidates as ambiguous', async () => {
    const notBefore = new Date();
    const first = request();
    await provider.placeCall(creds, first);
    await provider.placeCall(creds, request({ to: first.to }));
    await sim.idle();
    const result = await provider.findCallByAttempt(creds, { attemptId: first.attemptId, to: first.to, from: FROM, notBefore });
    expect('ambiguous' in result && result.ambiguous).toHaveLength(2);
    expect(sim.record.account(ACCOUNT).duplicates).toEqual([first.to]);
  });
});

describe('errors, classified', () => {
  it('401: wrong auth token → provider_auth_failed, fatal for the run', async () => {
    const err = await rejection(provider.placeCall({ accountSid: ACCOUNT, authToken: 'wrong' }, request()));
    expect(err).toMatchObject({ code: 'provider_auth_failed', retryable: false, fatalForRun: true, providerStatus: 401, providerCode: 20003 });
  });

  it('401: the carrier rejecting valid credentials', async () => {
    sim.faults.rejectCredentials();
    const err = await rejection(provider.fetchCall(creds, newSid('CA')));
    expect(err.code).toBe('provider_auth_failed');
  });

  it('21211: invalid To → provider_invalid_number, not retryable, not fatal', async () => {
    sim.setNumberBehaviour('+15550300001', 'invalid');
    const err = await rejection(provider.placeCall(creds, request({ to: '+15550300001' })));
    expect(err).toMatchObject({ code: 'provider_invalid_number', retryable: false, fatalForRun: false, providerCode: 21211 });
    expect(sim.record.account(ACCOUNT)).toMatchObject({ dials: [], rejected: [{ code: 21211 }] });
  });

  it('21212: invalid caller id → provider_invalid_caller_id, fatal for the run', async () => {
    sim.setCallerIdInvalid('+15550100099');
    const err = await rejection(provider.placeCall(creds, request({ from: '+15550100099' })));
    expect(err).toMatchObject({ code: 'provider_invalid_caller_id', retryable: false, fatalForRun: true, providerCode: 21212 });
  });

  it('500 → provider_unavailable, retryable; then the next create goes through', async () => {
    sim.faults.failNextCreates(1, 500);
    const err = await rejection(provider.placeCall(creds, request()));
    expect(err).toMatchObject({ code: 'provider_unavailable', retryable: true, fatalForRun: false, providerStatus: 500 });
    await expect(provider.placeCall(creds, request())).resolves.toMatchObject({ status: 'queued' });
  });

  it('429 → provider_rate_limited, retryable', async () => {
    sim.faults.failNextCreates(1, 429);
    const err = await rejection(provider.placeCall(creds, request()));
    expect(err).toMatchObject({ code: 'provider_rate_limited', retryable: true, providerCode: 20429 });
  });

  it('connection refused → provider_unreachable, retryable', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const dead = createTwilioProvider({ apiBaseUrl: `http://127.0.0.1:${port}`, logger: silentLogger });
    const err = await rejection(dead.placeCall(creds, request()));
    expect(err).toMatchObject({ code: 'provider_unreachable', retryable: true });
    expect(mayHaveReachedProvider(err)).toBe(false);
  });

  it('a timed-out create may still have created the call: findCallByAttempt finds it', async () => {
    const impatient = createTwilioProvider({ apiBaseUrl: sim.baseUrl, logger: silentLogger, requestTimeoutMs: 150 });
    sim.faults.delayCreateResponses(1_000, 1);
    const notBefore = new Date();
    const req = request();
    const err = await rejection(impatient.placeCall(creds, req));
    expect(err).toMatchObject({ code: 'provider_timeout', retryable: true });
    expect(mayHaveReachedProvider(err)).toBe(true);
    const result = await provider.findCallByAttempt(creds, { attemptId: req.attemptId, to: req.to, from: FROM, notBefore });
    expect(result).toHaveProperty('found');
  });
});

describe('calls waiting in the CPS queue', () => {
  it('are found while queued (no start time yet) and cancelled by hangUp', async () => {
    const queued = createCarrierSim({ accounts: [{ accountSid: ACCOUNT, authToken: TOKEN }], secondMs: SECOND_MS, cps: 0.001 });
    try {
      const p = createTwilioProvider({ apiBaseUrl: await queued.listen(), logger: silentLogger });
      const notBefore = new Date();
      await p.placeCall(creds, request()); // leaves the queue at once
      const req = request();
      const second = await p.placeCall(creds, req); // waits 1000 Twilio seconds (10 s)
      expect(queued.callView(second.providerCallId)).toMatchObject({ status: 'queued', startTime: undefined });
      const result = await p.findCallByAttempt(creds, { attemptId: req.attemptId, to: req.to, from: FROM, notBefore });
      expect(result).toMatchObject({ found: { providerCallId: second.providerCallId, status: 'queued' } });
      await p.hangUp(creds, second.providerCallId);
      expect(queued.callView(second.providerCallId)?.status).toBe('canceled');
    } finally {
      await queued.close();
    }
  });
});
