/**
 * The call-slot contract, run unchanged against both implementations. "Peers" stand for
 * processes sharing one pool: separate instances (own connections) for Redis, the same instance
 * for memory, whose pool is one process by definition.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/logger.ts';
import { createCallSlots, type CallSlots, type SlotRequest } from '../src/slots/index.ts';
import { hasRedis, redisUrl } from './support/services.ts';

const keyPrefix = `test:${randomUUID()}:slots:`;
const LONG = 60_000;
/** So long that only an event-driven wake can make a waiter retry within a test. */
const NO_POLL = 60_000;

interface PeerOptions {
  pollMs?: number;
  onWake?: (businessId: string, attemptId: string) => void;
}

interface Backend {
  name: string;
  skip: boolean;
  /** Open a participant in one shared pool. */
  pool(): { peer(options?: PeerOptions): CallSlots };
}

const opened: CallSlots[] = [];
function track(slots: CallSlots): CallSlots {
  opened.push(slots);
  return slots;
}

const backends: Backend[] = [
  {
    name: 'memory',
    skip: false,
    pool: () => {
      const wakeHooks = new Set<NonNullable<PeerOptions['onWake']>>();
      const shared = track(createCallSlots({ logger: silentLogger, onWake: (b, a) => wakeHooks.forEach((hook) => hook(b, a)) }));
      return {
        peer: (options = {}) => {
          if (options.onWake) wakeHooks.add(options.onWake);
          return shared;
        },
      };
    },
  },
  {
    name: 'redis',
    skip: !hasRedis,
    pool: () => ({
      peer: (options = {}) => track(createCallSlots({ redisUrl, keyPrefix, logger: silentLogger, ...options })),
    }),
  },
];

afterAll(async () => {
  await Promise.all(opened.map((slots) => slots.close()));
  if (!hasRedis) return;
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Start an acquire and resolve `queued` once it reports waiting (so arrival order is known). */
function acquireQueued(
  slots: CallSlots,
  req: Omit<SlotRequest, 'onQueued'>,
  signal?: AbortSignal,
): { granted: Promise<void>; queued: Promise<number> } {
  const queued = deferred<number>();
  const granted = slots.acquire({ ...req, onQueued: queued.resolve }, signal);
  granted.catch(() => {}); // awaited (or expected to reject) by the test
  // Granted without waiting means the pool was over-granted: fail now, not at the test timeout.
  const grantedFirst = granted.then(() => Promise.reject(new Error(`${req.attemptId} was granted instead of queued`)));
  grantedFirst.catch(() => {});
  return { granted, queued: Promise.race([queued.promise, grantedFirst]) };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** For waits that a broken pool would leave hanging: fail in seconds, not at the test timeout. */
const patience = (): AbortSignal => AbortSignal.timeout(5000);

describe.each(backends)('call slots: $name', (backend) => {
  describe.skipIf(backend.skip)('contract', () => {
    const newBusiness = (): string => `biz-${randomUUID()}`;
    const slot = (businessId: string, attemptId: string, limit = 1, ttlMs = LONG): SlotRequest => ({
      businessId,
      attemptId,
      limit,
      ttlMs,
    });

    it('grants up to the limit at once and queues the rest', async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      await slots.acquire(slot(biz, 'a', 2));
      await slots.acquire(slot(biz, 'b', 2));
      const c = acquireQueued(slots, slot(biz, 'c', 2));
      expect(await c.queued).toBe(0);
      expect(await slots.held(biz)).toBe(2);
      expect(await slots.isHeld(biz, 'c')).toBe(false);

      expect(await slots.release(biz, 'a')).toBe(true);
      await c.granted;
      expect(await slots.isHeld(biz, 'c')).toBe(true);
      expect(await slots.held(biz)).toBe(2);
    });

    it('never holds more than the limit under contention from several peers', async () => {
      const pool = backend.pool();
      const peers = [pool.peer(), pool.peer(), pool.peer()];
      const biz = newBusiness();
      const limit = 3;
      let live = 0;
      let maxLive = 0;
      let maxHeldSeen = 0;
      const full = deferred(); // the first holders keep their slots until all `limit` are taken

      await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const slots = peers[i % peers.length]!;
          const attemptId = `call-${i}`;
          await slots.acquire(slot(biz, attemptId, limit));
          live += 1;
          maxLive = Math.max(maxLive, live);
          if (live === limit) full.resolve();
          maxHeldSeen = Math.max(maxHeldSeen, await slots.held(biz));
          await full.promise;
          await nextTurn();
          live -= 1;
          expect(await slots.release(biz, attemptId)).toBe(true);
        }),
      );

      expect(maxLive).toBe(limit);
      expect(maxHeldSeen).toBeLessThanOrEqual(limit);
      expect(await peers[0]!.held(biz)).toBe(0);
    });

    it('serves waiters in arrival order across peers', async () => {
      const pool = backend.pool();
      const peers = [pool.peer(), pool.peer(), pool.peer()];
      const biz = newBusiness();
      await peers[0]!.acquire(slot(biz, 'holder'));

      const order: number[] = [];
      const waiters: Promise<void>[] = [];
      for (let i = 0; i < 6; i++) {
        const slots = peers[i % peers.length]!;
        const w = acquireQueued(slots, slot(biz, `w${i}`), patience());
        expect(await w.queued).toBe(i); // the next one arrives only after this one is queued
        waiters.push(
          w.granted.then(async () => {
            order.push(i);
            await slots.release(biz, `w${i}`);
          }),
        );
      }
      await peers[1]!.release(biz, 'holder');
      await Promise.all(waiters);
      expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it('wakes exactly one waiter, the FIFO head, per release', async () => {
      const pool = backend.pool();
      const wakes: string[] = [];
      const onWake = (_: string, attemptId: string): void => void wakes.push(attemptId);
      const peers = [pool.peer({ pollMs: NO_POLL, onWake }), pool.peer({ pollMs: NO_POLL, onWake })];
      const biz = newBusiness();
      await peers[0]!.acquire(slot(biz, 'holder'));
      const a = acquireQueued(peers[0]!, slot(biz, 'a'), patience());
      await a.queued;
      const b = acquireQueued(peers[1]!, slot(biz, 'b'), patience());
      await b.queued;
      const c = acquireQueued(peers[0]!, slot(biz, 'c'), patience());
      await c.queued;

      await peers[1]!.release(biz, 'holder');
      await a.granted;
      await peers[0]!.release(biz, 'a');
      await b.granted;
      await peers[1]!.release(biz, 'b');
      await c.granted;
      // A wake to anyone but the head would show up here before c's own wake.
      expect(wakes).toEqual(['a', 'b', 'c']);
    });

    it('hands a released slot to the next waiter within milliseconds, without polling', async () => {
      const pool = backend.pool();
      const [holderPeer, waiterPeer] = [pool.peer({ pollMs: NO_POLL }), pool.peer({ pollMs: NO_POLL })];
      const biz = newBusiness();
      await holderPeer.acquire(slot(biz, 'holder'));
      const w = acquireQueued(waiterPeer, slot(biz, 'w'), patience());
      await w.queued;
      await nextTurn(); // let the waiter settle into its sleep

      const releasedAt = performance.now();
      await holderPeer.release(biz, 'holder');
      await w.granted;
      expect(performance.now() - releasedAt).toBeLessThan(250);
    });

    it('keeps waking waiters while capacity remains after a grant', async () => {
      const pool = backend.pool();
      const peers = [pool.peer({ pollMs: NO_POLL }), pool.peer({ pollMs: NO_POLL })];
      const biz = newBusiness();
      await peers[0]!.acquire(slot(biz, 'h1', 2));
      await peers[0]!.acquire(slot(biz, 'h2', 2));
      const waiters: { granted: Promise<void> }[] = [];
      for (const [i, id] of ['a', 'b', 'c'].entries()) {
        const w = acquireQueued(peers[i % 2]!, slot(biz, id, 2), patience());
        await w.queued;
        waiters.push(w);
      }

      await Promise.all([peers[0]!.release(biz, 'h1'), peers[1]!.release(biz, 'h2')]);
      await Promise.all([waiters[0]!.granted, waiters[1]!.granted]);
      expect(await peers[0]!.held(biz)).toBe(2);
      expect(await peers[0]!.isHeld(biz, 'c')).toBe(false);

      await peers[1]!.release(biz, 'a');
      await waiters[2]!.granted;
      expect(await peers[1]!.isHeld(biz, 'c')).toBe(true);
    });

    it('releases idempotently by attempt id, from any peer', async () => {
      const pool = backend.pool();
      const [acquirer, webhook] = [pool.peer(), pool.peer()];
      const biz = newBusiness();
      await acquirer.acquire(slot(biz, 'x', 2));
      await acquirer.acquire(slot(biz, 'y', 2));

      expect(await webhook.release(biz, 'x')).toBe(true);
      expect(await webhook.release(biz, 'x')).toBe(false);
      expect(await acquirer.release(biz, 'x')).toBe(false);
      expect(await webhook.release(biz, 'never-acquired')).toBe(false);
      expect(await acquirer.isHeld(biz, 'x')).toBe(false);
      expect(await acquirer.isHeld(biz, 'y')).toBe(true);
      expect(await webhook.held(biz)).toBe(1);
    });

    it('expires a holder at its own ttl and hands the slot on', async () => {
      const slots = backend.pool().peer({ pollMs: NO_POLL });
      const biz = newBusiness();
      const started = performance.now();
      await slots.acquire(slot(biz, 'short', 1, 150));
      const w = acquireQueued(slots, slot(biz, 'w'), patience());
      await w.queued;

      await w.granted;
      expect(performance.now() - started).toBeGreaterThanOrEqual(100);
      expect(await slots.isHeld(biz, 'short')).toBe(false);
      expect(await slots.release(biz, 'short')).toBe(false); // expired is not held
      expect(await slots.held(biz)).toBe(1);
    });

    it("never expires other holders with an acquirer's own ttl", async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      await slots.acquire(slot(biz, 'long', 1, LONG));

      const abort = new AbortController();
      const tiny = acquireQueued(slots, slot(biz, 'tiny', 1, 1), abort.signal);
      await tiny.queued; // rejects if a purge by the newcomer's 1 ms ttl granted it instead
      abort.abort();
      await expect(tiny.granted).rejects.toMatchObject({ name: 'AbortError' });
      expect(await slots.isHeld(biz, 'long')).toBe(true);
      expect(await slots.held(biz)).toBe(1);
    });

    it('extends a live slot and refuses to extend one not held', async () => {
      const slots = backend.pool().peer({ pollMs: NO_POLL });
      const biz = newBusiness();
      await slots.acquire(slot(biz, 'extended', 2, 50));
      expect(await slots.extend(biz, 'extended', LONG)).toBe(true);
      await slots.acquire(slot(biz, 'short', 2, 150));
      const w = acquireQueued(slots, slot(biz, 'w', 2), patience());
      await w.queued;

      await w.granted; // 'short' expired, so well over 50 ms have passed
      expect(await slots.isHeld(biz, 'extended')).toBe(true);
      expect(await slots.held(biz)).toBe(2);
      expect(await slots.extend(biz, 'short', LONG)).toBe(false);
      expect(await slots.extend(biz, 'never-acquired', LONG)).toBe(false);
    });

    it('abandons an aborted wait without blocking the waiters behind it', async () => {
      const slots = backend.pool().peer({ pollMs: NO_POLL });
      const biz = newBusiness();
      await slots.acquire(slot(biz, 'holder'));
      const abort = new AbortController();
      const a = acquireQueued(slots, slot(biz, 'a'), abort.signal);
      await a.queued;
      // A lost wake would leave b waiting for the (disabled) poll: this signal then fails the test.
      const b = acquireQueued(slots, slot(biz, 'b'), patience());
      await b.queued;

      abort.abort();
      await expect(a.granted).rejects.toMatchObject({ name: 'AbortError' });
      await slots.release(biz, 'holder');
      await b.granted;
      expect(await slots.isHeld(biz, 'a')).toBe(false);
      expect(await slots.held(biz)).toBe(1);
    });

    it('rejects an already aborted signal without taking a slot', async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      await expect(slots.acquire(slot(biz, 'x'), AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
      expect(await slots.held(biz)).toBe(0);
    });

    it('never leaves a slot behind an acquire that rejected on abort', async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const abort = new AbortController();
          const acquired = slots.acquire(slot(biz, `x${i}`, 100), abort.signal);
          for (let turn = 0; turn < i; turn++) await nextTurn();
          abort.abort(); // races the grant: before sending, in flight, or after the reply
          const ok = await acquired.then(
            () => true,
            () => false,
          );
          return { ok, held: await slots.isHeld(biz, `x${i}`) };
        }),
      );
      for (const { ok, held } of outcomes) expect(held).toBe(ok);
      expect(await slots.held(biz)).toBe(outcomes.filter((o) => o.ok).length);
    });

    it('re-acquiring a held attempt succeeds without taking a second slot', async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      await slots.acquire(slot(biz, 'x', 2));
      await slots.acquire(slot(biz, 'x', 2));
      expect(await slots.held(biz)).toBe(1);
    });

    it('rejects malformed requests', async () => {
      const slots = backend.pool().peer();
      const biz = newBusiness();
      await expect(slots.acquire(slot(biz, 'x', 0))).rejects.toBeInstanceOf(RangeError);
      await expect(slots.acquire(slot(biz, 'x', 101))).rejects.toBeInstanceOf(RangeError);
      await expect(slots.acquire(slot(biz, 'x', 1.5))).rejects.toBeInstanceOf(RangeError);
      await expect(slots.acquire(slot(biz, 'x', 1, 0))).rejects.toBeInstanceOf(RangeError);
      await expect(slots.acquire(slot('a{b}', 'x'))).rejects.toBeInstanceOf(RangeError);
      await expect(slots.acquire(slot(biz, ''))).rejects.toBeInstanceOf(RangeError);
      expect(await slots.held(biz)).toBe(0);
    });
  });
});

describe('call slots: closing', () => {
  it.each(backends.filter((b) => !b.skip))('$name: rejects pending and later acquires, failing closed', async (backend) => {
    const slots = backend.pool().peer();
    const biz = `biz-${randomUUID()}`;
    await slots.acquire({ businessId: biz, attemptId: 'holder', limit: 1, ttlMs: LONG });
    const w = acquireQueued(slots, { businessId: biz, attemptId: 'w', limit: 1, ttlMs: LONG });
    await w.queued;
    await slots.close();
    await expect(w.granted).rejects.toMatchObject({ code: 'slots_unavailable' });
    await expect(slots.acquire({ businessId: biz, attemptId: 'late', limit: 1, ttlMs: LONG })).rejects.toMatchObject({
      code: 'slots_unavailable',
    });
  });
});
