/**
 * In-process call slots: the embedded single-process default. Same contract as the Redis pool
 * (FIFO per business, each holder expires at its own ttl, one waiter served per freed slot),
 * but the state lives in this process, so it limits nothing across processes.
 */
import { SlotsUnavailableError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { CallSlots, SlotRequest, SlotsHooks } from './port.ts';
import { abortReason, callHook, checkAcquire, validateBusinessId, validateIds, validateTtl } from './request.ts';

/** setTimeout's ceiling; longer ttls re-arm their timer when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Holder {
  /** performance.now() based: a wall-clock jump must not expire or revive calls. */
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface QueuedAcquire {
  req: SlotRequest;
  grant(): void;
  fail(error: Error): void;
}

/** One business's slots and its FIFO queue. */
interface Pool {
  holders: Map<string, Holder>;
  queue: QueuedAcquire[];
}

export interface MemoryCallSlotsOptions extends SlotsHooks {
  logger?: Logger;
}

export class MemoryCallSlots implements CallSlots {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(private readonly options: MemoryCallSlotsOptions = {}) {}

  acquire(req: SlotRequest, signal?: AbortSignal): Promise<void> {
    try {
      checkAcquire(req, signal, this.closed);
    } catch (error) {
      return Promise.reject(error);
    }
    const pool = this.pool(req.businessId);
    this.settle(pool);
    const isFree = pool.queue.length === 0 && pool.holders.size < req.limit;
    if (pool.holders.has(req.attemptId) || isFree) {
      this.hold(req.businessId, pool, req.attemptId, req.ttlMs);
      return Promise.resolve();
    }
    if (pool.queue.some((queued) => queued.req.attemptId === req.attemptId)) {
      return Promise.reject(new Error(`attempt ${req.attemptId} is already waiting for a slot`));
    }
    return this.enqueue(pool, req, signal);
  }

  async release(businessId: string, attemptId: string): Promise<boolean> {
    validateIds(businessId, attemptId);
    this.assertOpen();
    const pool = this.pools.get(businessId);
    const holder = pool?.holders.get(attemptId);
    if (!pool || !holder) return false;
    const wasLive = holder.expiresAt > performance.now();
    this.drop(pool, attemptId);
    this.settle(pool);
    this.forgetIfIdle(businessId, pool);
    return wasLive;
  }

  async extend(businessId: string, attemptId: string, ttlMs: number): Promise<boolean> {
    validateIds(businessId, attemptId);
    validateTtl(ttlMs);
    this.assertOpen();
    const pool = this.pools.get(businessId);
    if (!pool || !this.isLive(pool, attemptId)) return false;
    this.hold(businessId, pool, attemptId, ttlMs);
    return true;
  }

  async held(businessId: string): Promise<number> {
    validateBusinessId(businessId);
    this.assertOpen();
    const pool = this.pools.get(businessId);
    if (!pool) return 0;
    this.settle(pool);
    const count = pool.holders.size;
    this.forgetIfIdle(businessId, pool);
    return count;
  }

  async isHeld(businessId: string, attemptId: string): Promise<boolean> {
    validateIds(businessId, attemptId);
    this.assertOpen();
    const pool = this.pools.get(businessId);
    return pool !== undefined && this.isLive(pool, attemptId);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pool of this.pools.values()) {
      for (const holder of pool.holders.values()) clearTimeout(holder.timer);
      for (const queued of pool.queue.splice(0)) queued.fail(new SlotsUnavailableError('call slots are closed'));
    }
    this.pools.clear();
  }

  private enqueue(pool: Pool, req: SlotRequest, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = pool.queue.indexOf(queued);
        if (index >= 0) pool.queue.splice(index, 1);
        queued.fail(abortReason(signal!));
        // The head may have been blocking a waiter behind it (a smaller limit): re-check.
        this.settle(pool);
        this.forgetIfIdle(req.businessId, pool);
      };
      const queued: QueuedAcquire = {
        req,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.hold(req.businessId, pool, req.attemptId, req.ttlMs);
          callHook(() => this.options.onWake?.(req.businessId, req.attemptId), (e) => this.hookFailed(e));
          resolve();
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      pool.queue.push(queued);
      callHook(() => req.onQueued?.(pool.queue.length - 1), (e) => this.hookFailed(e));
    });
  }

  /**
   * Purge expired holders, then grant freed slots to the queue head, one per free slot, strictly
   * in arrival order. Every purge goes through here: a slot freed by expiry must reach the queue.
   */
  private settle(pool: Pool): void {
    this.purge(pool);
    for (let head = pool.queue[0]; head && pool.holders.size < head.req.limit; head = pool.queue[0]) {
      pool.queue.shift();
      head.grant();
    }
  }

  private forgetIfIdle(businessId: string, pool: Pool): void {
    if (pool.holders.size === 0 && pool.queue.length === 0 && this.pools.get(businessId) === pool) {
      this.pools.delete(businessId);
    }
  }

  /** Take or extend a slot; an extension never shortens it. */
  private hold(businessId: string, pool: Pool, attemptId: string, ttlMs: number): void {
    const expiresAt = performance.now() + ttlMs;
    const current = pool.holders.get(attemptId);
    if (current && current.expiresAt >= expiresAt) return;
    if (current) clearTimeout(current.timer);
    pool.holders.set(attemptId, { expiresAt, timer: this.expiryTimer(businessId, attemptId, ttlMs) });
  }

  private expiryTimer(businessId: string, attemptId: string, delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.expire(businessId, attemptId), Math.min(delayMs, MAX_TIMER_MS));
    timer.unref(); // a forgotten slot must not keep the process alive
    return timer;
  }

  private expire(businessId: string, attemptId: string): void {
    const pool = this.pools.get(businessId);
    const holder = pool?.holders.get(attemptId);
    if (!pool || !holder) return;
    const remaining = holder.expiresAt - performance.now();
    if (remaining > 0) {
      holder.timer = this.expiryTimer(businessId, attemptId, Math.ceil(remaining)); // fired early or ttl > MAX_TIMER_MS
      return;
    }
    this.drop(pool, attemptId);
    this.settle(pool);
    this.forgetIfIdle(businessId, pool);
  }

  private purge(pool: Pool): void {
    const now = performance.now();
    for (const [attemptId, holder] of pool.holders) {
      if (holder.expiresAt <= now) this.drop(pool, attemptId);
    }
  }

  private drop(pool: Pool, attemptId: string): void {
    const holder = pool.holders.get(attemptId);
    if (!holder) return;
    clearTimeout(holder.timer);
    pool.holders.delete(attemptId);
  }

  private isLive(pool: Pool, attemptId: string): boolean {
    const holder = pool.holders.get(attemptId);
    return holder !== undefined && holder.expiresAt > performance.now();
  }

  private pool(businessId: string): Pool {
    let pool = this.pools.get(businessId);
    if (!pool) {
      pool = { holders: new Map(), queue: [] };
      this.pools.set(businessId, pool);
    }
    return pool;
  }

  private assertOpen(): void {
    if (this.closed) throw new SlotsUnavailableError('call slots are closed');
  }

  private hookFailed(error: unknown): void {
    this.options.logger?.warn({ err: error }, 'call slot hook threw');
  }
}
