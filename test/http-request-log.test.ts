/**
 * The per-request log: one structured line when a request completes (method, url, status,
 * responseTime, request id), and `incoming request` only at debug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';
import { storeFactories } from './support/stores.ts';

const pglite = storeFactories[0]!;

describe('request log', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(pglite, { logLevel: 'info' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('writes one line per request at info, on completion, with the request, the status and the time', async () => {
    t.logs.length = 0;
    const ok = await t.app.inject({ method: 'GET', url: '/api/me', headers: t.seed.A.viewer.headers });
    const denied = await t.app.inject({ method: 'GET', url: '/api/me?x=1' });
    expect([ok.statusCode, denied.statusCode]).toEqual([200, 401]);
    const lines = t.logs.filter((line) => line.reqId !== undefined && line.msg !== 'missing or invalid token');
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, msg: 'request completed', req: expect.objectContaining({ method: 'GET', url: '/api/me' }), res: { statusCode: 200 }, responseTime: expect.any(Number) }),
      expect.objectContaining({ level: 30, msg: 'request completed', req: expect.objectContaining({ method: 'GET', url: '/api/me?x=1' }), res: { statusCode: 401 }, responseTime: expect.any(Number) }),
    ]);
    expect(lines[0]!.reqId).not.toBe(lines[1]!.reqId);
  });

  it('logs `incoming request` at debug only', async () => {
    const debug = await createTestApp(pglite, { logLevel: 'debug' });
    try {
      await debug.app.inject({ method: 'GET', url: '/healthz' });
      const incoming = debug.logs.filter((line) => line.msg === 'incoming request');
      expect(incoming).toEqual([expect.objectContaining({ level: 20, req: expect.objectContaining({ method: 'GET', url: '/healthz' }) })]);
    } finally {
      await debug.close();
    }
  });
});
