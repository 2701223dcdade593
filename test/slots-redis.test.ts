/**
 * What only the Redis pool must prove: the Redis clock, the published key layout and scripts,
 * lapsing of crashed waiters, and failing closed (with recovery) when Redis goes away. Outage
 * tests use a redis-server of their own on a free port; the shared server is never stopped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SlotsUnavailableError } from '../src/domain/errors.ts';
import { silentLogger } from '../src/logger.ts';
import { createCallSlots, readSlotScript, slotKeys, type CallSlots, type CreateCallSlotsOptions } from '../src/slots/index.ts';
import { hasRedis, redisUrl } from './support/services.ts';

const keyPrefix = `test:${randomUUID()}:slots:`;
const LONG = 60_000;

const opened: CallSlots[] = [];
function open(options: Partial<CreateCallSlotsOptions> & { redisUrl: string }): CallSlots {
  const slots = createCallSlots({ keyPrefix, logger: silentLogger, ...options });
  opened.push(slots);
  return slots;
}

afterAll(async () => {
  await Promise.all(opened.map((slots) => slots.close()));
});

/** Queue an acquire and resolve `queued` once it waits (arrival order is then known). */
function acquireQueued(slots: CallSlots, businessId: string, attemptId: string, signal?: AbortSignal, limit = 1) {
  let onQueued!: () => void;
  const queued = new Promise<void>((resolve) => (onQueued = resolve));
  const granted = slots.acquire({ businessId, attemptId, limit, ttlMs: LONG, onQueued }, signal);
  granted.catch(() => {}); // the test awaits it
  const grantedFirst = granted.then(() => Promise.reject(new Error(`${attemptId} was granted instead of queued`)));
  grantedFirst.catch(() => {});
  return { queued: Promise.race([queued, grantedFirst]), granted };
}

describe.skipIf(!hasRedis)('redis call slots: shared server', () => {
  let raw: Redis;
  beforeAll(() => {
    raw = new Redis(redisUrl);
  });
  afterAll(async () => {
    const keys = await raw.keys(`${keyPrefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('computes expiry from the Redis clock, whatever the client clock says', async () => {
    const slots = open({ redisUrl });
    const biz = `biz-${randomUUID()}`;
    vi.spyOn(Date, 'now').mockReturnValue(Date.UTC(2100, 0, 1)); // a client clock 75 years ahead
    await slots.acquire({ businessId: biz, attemptId: 'x', limit: 1, ttlMs: LONG });
    expect(await slots.isHeld(biz, 'x')).toBe(true);
    vi.restoreAllMocks();

    const [seconds, micros] = await raw.time();
    const redisNowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const expiry = Number(await raw.zscore(slotKeys(keyPrefix, biz).holders, 'x'));
    expect(Math.abs(expiry - (redisNowMs + LONG))).toBeLessThan(1000);
  });

  it('shares the pool with another service through the published key layout and scripts', async () => {
    const slots = open({ redisUrl, pollMs: LONG });
    const biz = `biz-${randomUUID()}`;
    const keys = slotKeys(keyPrefix, biz);
    expect(keys.holders).toBe(`${keyPrefix}{${biz}}:holders`);
    // An inbound call handler with only the docs: raw EVAL of the shipped acquire.lua.
    const inbound = (attemptId: string, waitTtlMs: number): Promise<unknown> =>
      raw.eval(readSlotScript('acquire'), 4, keys.holders, keys.waiters, keys.deadlines, keys.arrivals, attemptId, 2, LONG, waitTtlMs, keys.wakeChannel);

    expect(await inbound('inbound-1', 0)).toEqual([1, 0, -1]);
    await slots.acquire({ businessId: biz, attemptId: 'outbound-1', limit: 2, ttlMs: LONG });
    expect(await slots.held(biz)).toBe(2);
    expect(await raw.type(keys.holders)).toBe('zset');

    // The pool is full: a try-once inbound call is refused, an outbound acquire waits for it.
    expect(((await inbound('inbound-2', 0)) as number[]).slice(0, 2)).toEqual([0, -1]);
    const waiting = acquireQueued(slots, biz, 'outbound-2', undefined, 2);
    await waiting.queued;
    expect(await raw.zrange(keys.waiters, 0, -1)).toEqual(['outbound-2']);
    await raw.eval(readSlotScript('release'), 3, keys.holders, keys.waiters, keys.deadlines, 'inbound-1', keys.wakeChannel);
    await waiting.granted; // woken by the foreign release's PUBLISH (polling is off)
  });

  it('drops a crashed waiter from the head of the queue once its deadline lapses', async () => {
    const slots = open({ redisUrl, pollMs: 50 });
    const biz = `biz-${randomUUID()}`;
    const keys = slotKeys(keyPrefix, biz);
    await slots.acquire({ businessId: biz, attemptId: 'holder', limit: 1, ttlMs: LONG });
    // A waiter whose process died right after queueing: it will never retry or take its wake.
    const ghost = await raw.eval(readSlotScript('acquire'), 4, keys.holders, keys.waiters, keys.deadlines, keys.arrivals, 'ghost', 1, LONG, 200, keys.wakeChannel);
    expect((ghost as number[]).slice(0, 2)).toEqual([0, 0]); // queued, at the head
    const live = acquireQueued(slots, biz, 'live', AbortSignal.timeout(5000));
    await live.queued;

    await slots.release(biz, 'holder'); // the wake goes to the dead head
    await live.granted;
    expect(await raw.zscore(keys.waiters, 'ghost')).toBeNull();
    expect(await slots.isHeld(biz, 'ghost')).toBe(false);
  });
});

/** A redis-server of this test's own, so it can be killed and restarted. */
class OwnRedis {
  private child: ChildProcess | undefined;
  constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const server = new OwnRedis(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      });
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.child = undefined;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer) console.warn('\n!!! redis-server not on PATH: the slot outage tests are SKIPPED !!!\n');

describe.skipIf(!hasRedisServer)('redis call slots: outages (own redis-server)', () => {
  let server: OwnRedis;
  beforeAll(async () => {
    server = await OwnRedis.start();
  });
  afterAll(async () => {
    await server.kill();
  });

  const tuning = { connectTimeoutMs: 300, commandTimeoutMs: 300, readyTimeoutMs: 500, reconnectMaxMs: 100 };

  it('fails closed while Redis is down, and the same instance works again when it returns', async () => {
    const slots = open({ redisUrl: server.url, ...tuning });
    const biz = `biz-${randomUUID()}`;
    const slot = (attemptId: string) => ({ businessId: biz, attemptId, limit: 1, ttlMs: LONG });
    await slots.acquire(slot('before'));
    const waiting = acquireQueued(slots, biz, 'waiting');
    await waiting.queued;

    await server.kill();
    await expect(waiting.granted).rejects.toBeInstanceOf(SlotsUnavailableError);
    const started = performance.now();
    await expect(slots.acquire(slot('during'))).rejects.toBeInstanceOf(SlotsUnavailableError);
    expect(performance.now() - started).toBeLessThan(2000);
    await expect(slots.held(biz)).rejects.toBeInstanceOf(SlotsUnavailableError);
    await expect(slots.release(biz, 'before')).rejects.toBeInstanceOf(SlotsUnavailableError);
    await expect(slots.extend(biz, 'before', LONG)).rejects.toBeInstanceOf(SlotsUnavailableError);

    await server.start(); // empty: no keys, no cached scripts (EVALSHA would meet NOSCRIPT)
    await slots.acquire(slot('after'));
    expect(await slots.held(biz)).toBe(1);
    expect(await slots.isHeld(biz, 'during')).toBe(false);

    const admin = new Redis(server.url);
    await admin.script('FLUSH');
    await slots.acquire(slot('after')); // re-acquire after the script cache was flushed
    expect(await slots.release(biz, 'after')).toBe(true);
    admin.disconnect();
  });

  it('leaves no slot behind an acquire whose reply never came', async () => {
    const slots = open({ redisUrl: server.url, ...tuning, commandTimeoutMs: 100 });
    const biz = `biz-${randomUUID()}`;
    expect(await slots.held(biz)).toBe(0); // connected and warmed up
    const admin = new Redis(server.url);
    await admin.client('PAUSE', 400, 'ALL'); // commands queue on the server; clients time out

    await expect(slots.acquire({ businessId: biz, attemptId: 'lost', limit: 1, ttlMs: LONG })).rejects.toBeInstanceOf(
      SlotsUnavailableError,
    );
    await admin.ping(); // answered once the pause is over, after the queued acquire ran
    expect(await slots.isHeld(biz, 'lost')).toBe(false);
    expect(await slots.held(biz)).toBe(0);
    admin.disconnect();
  });
});
