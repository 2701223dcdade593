/**
 * The simulated carrier itself: Twilio's wire shapes, callbacks exactly as configured and in
 * order, the record (highWater, duplicates), faults, determinism, and mounting.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../src/logger.ts';
import {
  CarrierSimulator,
  carrierSimApiRoutes,
  carrierSimPlugin,
  createCarrierSim,
  newSid,
  runCarrierSim,
  type CarrierSim,
} from '../src/telephony/carrier-sim/index.ts';
import { hashSeed } from '../src/telephony/carrier-sim/prng.ts';
import { parseTwilioForm, verifyTwilioSignature } from '../src/telephony/signature.ts';
import { createTwilioProvider } from '../src/telephony/twilio-adapter.ts';

const ACCOUNT = newSid('AC');
const TOKEN = 'sim-token';
const OTHER_ACCOUNT = newSid('AC');
const OTHER_TOKEN = 'other-token';
const FROM_A = '+15550400001';
const FROM_B = '+15550400002';
const FAST = { ringMs: [2, 4] as const, talkMs: [5, 5] as const, shares: { answered: 1, noAnswer: 0, busy: 0, failed: 0 } };

interface Received {
  url: string;
  params: Record<string, string>;
  valid: boolean;
}

let sim: CarrierSim;
let base = '';
let sink: FastifyInstance;
let sinkUrl = '';
let received: Received[] = [];
/** Extra response delay per callback, to shuffle deliveries across calls. */
let sinkDelay: (params: Record<string, string>) => number = () => 0;
/** The client ports callbacks came from: fewer than callbacks when connections are reused. */
let sinkPorts = new Set<number>();

beforeAll(async () => {
  sim = createCarrierSim({
    accounts: [
      { accountSid: ACCOUNT, authToken: TOKEN },
      { accountSid: OTHER_ACCOUNT, authToken: OTHER_TOKEN },
    ],
    secondMs: 10,
  });
  base = await sim.listen();
  // A raw receiver: records exactly what the carrier posts, and checks the signature itself.
  sink = Fastify();
  sink.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseTwilioForm(body as string));
  });
  sink.post('/cb', async (request, reply) => {
    const params = request.body as Record<string, string>;
    const url = sinkUrl + request.url;
    const token = params.AccountSid === OTHER_ACCOUNT ? OTHER_TOKEN : TOKEN;
    received.push({ url, params, valid: verifyTwilioSignature(token, url, params, request.headers['x-twilio-signature'] as string) });
    sinkPorts.add(request.socket.remotePort ?? 0);
    const delay = sinkDelay(params);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return reply.code(204).send();
  });
  sink.post('/fail', async (_request, reply) => reply.code(500).send('boom'));
  sink.post('/auth', async (request, reply) => {
    received.push({ url: request.headers.authorization ?? '', params: request.body as Record<string, string>, valid: true });
    return reply.code(204).send();
  });
  sinkUrl = await sink.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await sim?.close();
  await sink?.close();
});

beforeEach(() => {
  sim.reset();
  sim.setScript(FAST);
  received = [];
  sinkDelay = () => 0;
  sinkPorts = new Set();
});

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** A raw create, as Twilio's REST API takes it (form-encoded, repeated StatusCallbackEvent). */
async function create(fields: Record<string, string | string[]>, account = ACCOUNT, token = TOKEN) {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(key, v);
  const res = await fetch(`${base}/2010-04-01/Accounts/${account}/Calls.json`, {
    method: 'POST',
    headers: { authorization: basic(account, token), 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function callFields(to: string, extra: Record<string, string | string[]> = {}): Record<string, string | string[]> {
  return { To: to, From: FROM_A, Url: 'https://example.com/twiml', StatusCallback: `${sinkUrl}/cb?attempt=${to}`, ...extra };
}

const statusesOf = (callSid: unknown): string[] => received.filter((r) => r.params.CallSid === callSid).map((r) => r.params.CallStatus ?? 'amd');

describe('the REST API shape', () => {
  it('answers a create with a Twilio Call resource', async () => {
    const { status, body } = await create(callFields('+15550500001'));
    expect(status).toBe(201);
    expect(body).toMatchObject({
      sid: expect.stringMatching(/^CA[0-9a-f]{32}$/),
      account_sid: ACCOUNT,
      to: '+15550500001',
      from: FROM_A,
      status: 'queued',
      direction: 'outbound-api',
      api_version: '2010-04-01',
      start_time: null,
      date_created: expect.stringMatching(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/),
    });
  });

  it('refuses bad credentials with 401 / 20003 in Twilio error shape', async () => {
    const wrong = await create(callFields('+15550500002'), ACCOUNT, 'nope');
    expect(wrong).toEqual({
      status: 401,
      body: { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 },
    });
    // Valid credentials of another account do not open this one.
    const res = await fetch(`${base}/2010-04-01/Accounts/${ACCOUNT}/Calls.json`, { headers: { authorization: basic(OTHER_ACCOUNT, OTHER_TOKEN) } });
    expect(res.status).toBe(401);
    const none = await fetch(`${base}/2010-04-01/Accounts/${ACCOUNT}/Calls.json`);
    expect(none.status).toBe(401);
  });

  it('refuses an invalid To (21211) and an invalid From (21212)', async () => {
    expect(await create(callFields('12345'))).toMatchObject({ status: 400, body: { code: 21211, status: 400 } });
    expect(await create(callFields('+15550500003', { From: 'not-a-number' }))).toMatchObject({ status: 400, body: { code: 21212 } });
    expect(sim.record.account(ACCOUNT).dials).toEqual([]);
    expect(sim.record.account(ACCOUNT).rejected.map((r) => r.code)).toEqual([21211, 21212]);
  });

  it('lists with To/From/StartTime filters and pages that the SDK follows', async () => {
    for (let i = 0; i < 3; i++) expect((await create(callFields('+15550500010'))).status).toBe(201);
    await create(callFields('+15550500011'));
    await sim.idle();
    const client = twilio(ACCOUNT, TOKEN);
    client.api.baseUrl = base;
    const listed = await client.calls.list({ to: '+15550500010', from: FROM_A, startTimeAfter: new Date(Date.now() - 60_000), pageSize: 2 });
    expect(listed).toHaveLength(3);
    expect(await client.calls.list({ to: '+15550500010', startTimeAfter: new Date(Date.now() + 60_000) })).toEqual([]);
  });
});

describe('status callbacks', () => {
  it('sends only the events asked for, plus the final one, with Twilio parameter names, signed', async () => {
    const { body } = await create(callFields('+15550600001', { StatusCallbackEvent: ['ringing'] }));
    await sim.idle();
    expect(statusesOf(body.sid)).toEqual(['ringing', 'completed']);
    const final = received.at(-1);
    expect(final?.valid).toBe(true);
    expect(final?.params).toMatchObject({
      AccountSid: ACCOUNT,
      ApiVersion: '2010-04-01',
      CallSid: body.sid,
      CallStatus: 'completed',
      CallDuration: '1',
      Direction: 'outbound-api',
      From: FROM_A,
      To: '+15550600001',
      SequenceNumber: '1',
      Timestamp: expect.stringMatching(/\+0000$/),
    });
  });

  it('sends only the final callback by default, and none without a StatusCallback', async () => {
    const { body } = await create(callFields('+15550600002'));
    await create({ To: '+15550600003', From: FROM_A, Url: 'https://example.com/twiml' });
    await sim.idle();
    expect(statusesOf(body.sid)).toEqual(['completed']);
    expect(received).toHaveLength(1);
  });

  it.each([
    ['answered', { answered: 1, noAnswer: 0, busy: 0, failed: 0 }, ['initiated', 'ringing', 'in-progress', 'completed']],
    ['busy', { answered: 0, noAnswer: 0, busy: 1, failed: 0 }, ['initiated', 'ringing', 'busy']],
    ['no-answer', { answered: 0, noAnswer: 1, busy: 0, failed: 0 }, ['initiated', 'ringing', 'no-answer']],
    ['failed', { answered: 0, noAnswer: 0, busy: 0, failed: 1 }, ['initiated', 'failed']],
  ])('plays out %s with every event asked for', async (_name, shares, expected) => {
    sim.setScript({ shares });
    const all = ['initiated', 'ringing', 'answered', 'completed'];
    const { body } = await create(callFields('+15550600004', { StatusCallbackEvent: all }));
    await sim.idle();
    expect(statusesOf(body.sid)).toEqual(expected);
    expect(received.map((r) => Number(r.params.SequenceNumber))).toEqual(expected.map((_, i) => i));
    expect(received.every((r) => r.valid)).toBe(true);
  });

  it('keeps each call in order when many calls overlap and the receiver answers out of order', async () => {
    sim.setScript({ ringMs: [0, 3], talkMs: [0, 3] });
    // Slow down early events of some calls, so later events would overtake them if not chained.
    sinkDelay = (p) => (p.CallStatus === 'initiated' && Number(p.To?.slice(-1)) % 2 === 0 ? 25 : 0);
    const all = ['initiated', 'ringing', 'answered', 'completed'];
    const sids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(callFields(`+155506100${String(i).padStart(2, '0')}`, { StatusCallbackEvent: all }))),
    ).then((results) => results.map((r) => r.body.sid));
    await sim.idle();
    for (const sid of sids) {
      const sequence = received.filter((r) => r.params.CallSid === sid).map((r) => Number(r.params.SequenceNumber));
      expect(sequence).toEqual([0, 1, 2, 3]);
      expect(statusesOf(sid)).toEqual(['initiated', 'ringing', 'in-progress', 'completed']);
    }
  });

  it('drops callbacks on demand (the engine must then reconcile by fetching)', async () => {
    sim.faults.dropCallbacks({ statuses: ['completed'] });
    const { body } = await create(callFields('+15550600020', { StatusCallbackEvent: ['ringing', 'completed'] }));
    await sim.idle();
    expect(statusesOf(body.sid)).toEqual(['ringing']);
    expect(sim.record.snapshot().callbacks).toMatchObject({ delivered: 1, dropped: 1 });
    expect(sim.callView(body.sid as string)?.status).toBe('completed');
  });
});

describe('callback delivery', () => {
  it('logs a non-2xx answer and an unreachable receiver as failed, and does not retry', async () => {
    await create(callFields('+15550650001', { StatusCallback: `${sinkUrl}/fail?attempt=x` }));
    await create(callFields('+15550650002', { StatusCallback: 'http://127.0.0.1:1/cb' }));
    await sim.idle();
    const log = sim.record.snapshot().callbacks.log;
    expect(log).toHaveLength(2);
    expect(log.find((e) => e.url.includes('/fail'))).toMatchObject({ outcome: 'failed', httpStatus: 500, callStatus: 'completed', sequenceNumber: 0 });
    expect(log.find((e) => e.url.includes(':1/'))).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('sends the credentials of a callback URL as HTTP Basic auth, as Twilio does', async () => {
    const withCredentials = sinkUrl.replace('http://', 'http://hook:p%40ss@');
    await create(callFields('+15550650003', { StatusCallback: `${withCredentials}/auth?attempt=x` }));
    await sim.idle();
    expect(received.map((r) => r.url)).toEqual([`Basic ${Buffer.from('hook:p@ss').toString('base64')}`]);
    expect(sim.record.snapshot().callbacks.delivered).toBe(1);
  });

  it('reuses its connections (keep-alive)', async () => {
    for (let i = 0; i < 4; i++) {
      await create(callFields(`+1555066000${i}`, { StatusCallbackEvent: ['ringing', 'answered'] }));
      await sim.idle();
    }
    expect(received).toHaveLength(12);
    expect(sim.record.snapshot().callbacks.delivered).toBe(12);
    expect(sinkPorts.size).toBe(1);
  });

  it('gives up on a receiver that does not answer in time', async () => {
    const impatient = createCarrierSim({ accounts: [{ accountSid: ACCOUNT, authToken: TOKEN }], script: FAST, callbackTimeoutMs: 30 });
    try {
      const url = await impatient.listen();
      sinkDelay = () => 300;
      const client = twilio(ACCOUNT, TOKEN);
      client.api.baseUrl = url;
      await client.calls.create({ to: '+15550670001', from: FROM_A, url: 'https://example.com/twiml', statusCallback: `${sinkUrl}/cb?attempt=t` });
      await impatient.idle();
      expect(impatient.record.snapshot().callbacks.log).toEqual([
        expect.objectContaining({ outcome: 'failed', error: 'no answer within 30 ms', callStatus: 'completed' }),
      ]);
    } finally {
      await impatient.close();
    }
  });

  it('abandons deliveries in flight on reset, without logging them', async () => {
    sinkDelay = () => 200;
    await create(callFields('+15550680001', { StatusCallbackEvent: ['ringing'] }));
    await vi.waitFor(() => expect(received).toHaveLength(1));
    sim.reset();
    await vi.waitFor(() => expect(sim.callbacksInFlight).toBe(0));
    await new Promise((resolve) => setTimeout(resolve, 250)); // past the receiver's answer
    expect(sim.record.snapshot().callbacks.log).toEqual([]);
    expect(received).toHaveLength(1); // nothing queued behind it went out either
  });
});

describe('the record', () => {
  it('counts live calls and high-water marks per account and per caller id', async () => {
    sim.setScript({ talkMs: [60_000, 60_000] });
    const sids: string[] = [];
    for (let i = 0; i < 5; i++) sids.push((await create(callFields(`+1555070000${i}`))).body.sid as string);
    for (let i = 0; i < 2; i++) sids.push((await create(callFields(`+1555070010${i}`, { From: FROM_B }))).body.sid as string);
    await create({ ...callFields('+15550700200'), From: FROM_A }, OTHER_ACCOUNT, OTHER_TOKEN);
    await sim.waitFor((s) => s.allCalls().every((c) => c.status === 'in-progress'), 5_000, 'all answered');

    const account = sim.record.account(ACCOUNT);
    expect(account).toMatchObject({ highWater: 7, live: 7 });
    expect(account.byFrom[FROM_A]).toMatchObject({ highWater: 5, live: 5 });
    expect(sim.record.callerId(ACCOUNT, FROM_B)).toMatchObject({ highWater: 2, live: 2 });
    expect(sim.record.account(OTHER_ACCOUNT)).toMatchObject({ highWater: 1, live: 1 });

    const client = twilio(ACCOUNT, TOKEN);
    client.api.baseUrl = base;
    for (const sid of sids.slice(0, 3)) await client.calls(sid).update({ status: 'completed' });
    expect(sim.record.account(ACCOUNT)).toMatchObject({ highWater: 7, live: 4 });
    expect(sim.record.callerId(ACCOUNT, FROM_A)).toMatchObject({ highWater: 5, live: 2 });
    expect(sim.record.account(ACCOUNT).dials.slice(0, 3).map((d) => d.status)).toEqual(['completed', 'completed', 'completed']);
  });

  it('lists numbers dialled more than once', async () => {
    await create(callFields('+15550800001'));
    await create(callFields('+15550800001', { From: FROM_B }));
    await create(callFields('+15550800002'));
    await create(callFields('+15550800002'));
    await sim.idle();
    expect(sim.record.account(ACCOUNT).duplicates).toEqual(['+15550800001', '+15550800002']);
    expect(sim.record.callerId(ACCOUNT, FROM_A).duplicates).toEqual(['+15550800002']);
    expect(sim.record.callerId(ACCOUNT, FROM_B).duplicates).toEqual([]);
    expect(sim.record.account(ACCOUNT)).toMatchObject({ highWater: expect.any(Number), live: 0 });
  });

  it('is served at GET /sim/stats, and the admin routes drive faults and script', async () => {
    await create(callFields('+15550800010'));
    await sim.idle();
    const stats = (await (await fetch(`${base}/sim/stats`)).json()) as { totals: { dials: number }; accounts: Record<string, { dials: Array<{ to: string }> }> };
    expect(stats.totals.dials).toBe(1);
    expect(stats.accounts[ACCOUNT]?.dials[0]?.to).toBe('+15550800010');

    await fetch(`${base}/sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failNextCreates: { count: 1, status: 503 } }) });
    expect((await create(callFields('+15550800011'))).status).toBe(503);
    expect((await create(callFields('+15550800011'))).status).toBe(201);
    const script = await fetch(`${base}/sim/script`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ talkMs: [1, 2] }) });
    expect(((await script.json()) as { talkMs: number[] }).talkMs).toEqual([1, 2]);
  });
});

describe('the script', () => {
  it('is deterministic per seed and number, whatever order the numbers are dialled in', async () => {
    const numbers = Array.from({ length: 12 }, (_, i) => `+155509000${String(i).padStart(2, '0')}`);
    const plans = async (order: string[]): Promise<Record<string, string>> => {
      sim.reset();
      sim.setScript({ seed: 42, ringMs: [1, 2], talkMs: [1, 2], shares: { answered: 1, noAnswer: 1, busy: 1, failed: 1 } });
      for (const to of order) await create(callFields(to));
      const byNumber = Object.fromEntries(sim.allCalls().map((c) => [c.to, c.plannedOutcome]));
      await sim.idle();
      return byNumber;
    };
    const forward = await plans(numbers);
    const backward = await plans([...numbers].reverse());
    expect(backward).toEqual(forward);
    expect(new Set(Object.values(forward)).size).toBeGreaterThan(1);
  });

  it('derives the same per-call seeds as before (outcomes stay reproducible across versions)', () => {
    expect(hashSeed(1, 'AC0123456789abcdef0123456789abcdef', '+15550100001', 0)).toBe(1235839969);
    expect(hashSeed(3, 'a\u{1F600}b', '\ud800x', 2)).toBe(3417089847); // astral and lone surrogates
    expect(hashSeed('', '')).toBe(84696351);
  });

  it('forces per-number behaviour', async () => {
    sim.setNumberBehaviour('+15550910001', 'busy');
    const { body } = await create(callFields('+15550910001'));
    expect((await sim.waitForCallEnd(body.sid as string)).status).toBe('busy');
  });

  it('waitFor rejects with what it was waiting for', async () => {
    await expect(sim.waitFor(() => false, 20, 'the impossible')).rejects.toThrow(/the impossible/);
  });
});

describe('mounting and accounts', () => {
  let host: FastifyInstance | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it('mounts at the root of another server (plugin) and serves the SDK adapter there', async () => {
    const core = new CarrierSimulator({ accounts: [{ accountSid: ACCOUNT, authToken: TOKEN }], script: FAST });
    host = Fastify();
    host.get('/health', async () => ({ ok: true }));
    await host.register(carrierSimPlugin(core));
    const url = await host.listen({ port: 0, host: '127.0.0.1' });
    const provider = createTwilioProvider({ apiBaseUrl: url, logger: silentLogger });
    const call = await provider.placeCall(
      { accountSid: ACCOUNT, authToken: TOKEN },
      { attemptId: 'm1', to: '+15551000001', from: FROM_A, handlerUrl: `${url}/twiml`, statusCallbackUrl: `${sinkUrl}/cb?attempt=m1`, ringTimeoutSeconds: 30, timeLimitSeconds: 60, machineDetection: false },
    );
    await core.idle();
    expect(core.record.account(ACCOUNT).dials.map((d) => d.callSid)).toEqual([call.providerCallId]);
    expect((await (await fetch(`${url}/sim/stats`)).json()) as object).toHaveProperty('totals.dials', 1);
    core.shutdown();
  });

  it('mounts the API alone under the /2010-04-01 prefix', async () => {
    const core = new CarrierSimulator({ accounts: [{ accountSid: ACCOUNT, authToken: TOKEN }] });
    host = Fastify();
    await host.register(carrierSimApiRoutes(core), { prefix: '/2010-04-01' });
    const res = await host.inject({ method: 'GET', url: `/2010-04-01/Accounts/${ACCOUNT}/Calls.json`, headers: { authorization: basic(ACCOUNT, TOKEN) } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ calls: [], page: 0 });
    core.shutdown();
  });

  it('registers unknown accounts on first use when asked to (multi-tenant demos)', async () => {
    const open = createCarrierSim({ autoRegisterAccounts: true, script: FAST });
    try {
      const url = await open.listen();
      const tenant = { accountSid: newSid('AC'), authToken: 'tenant-token' };
      const provider = createTwilioProvider({ apiBaseUrl: url, logger: silentLogger });
      const req = { attemptId: 't1', to: '+15551100001', from: FROM_A, handlerUrl: `${url}/twiml`, statusCallbackUrl: `${sinkUrl}/cb?attempt=t1`, ringTimeoutSeconds: 30, timeLimitSeconds: 60, machineDetection: false };
      await expect(provider.placeCall(tenant, req)).resolves.toHaveProperty('status', 'queued');
      await expect(provider.placeCall({ ...tenant, authToken: 'changed' }, req)).rejects.toMatchObject({ code: 'provider_auth_failed' });
      await open.idle();
    } finally {
      await open.close();
    }
  });

  it('runs standalone for `ocq carrier-sim` with the given account', async () => {
    const tenant = { accountSid: newSid('AC'), authToken: 'cli-token' };
    const standalone = await runCarrierSim({ port: 0, ...tenant });
    try {
      const provider = createTwilioProvider({ apiBaseUrl: standalone.baseUrl, logger: silentLogger });
      expect(await provider.fetchCall(tenant, newSid('CA'))).toBeNull();
    } finally {
      await standalone.close();
    }
  });
});
