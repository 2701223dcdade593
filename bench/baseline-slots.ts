/**
 * The BASELINE: the old system's waiting strategy, on the same slot pool. When the business is
 * full it sleeps 1 s and tries again; it never queues and is never woken by a release.
 *
 * It is honest in that everything but the wait is the product's own: the same Redis keys and Lua
 * scripts (a try-once acquire: the acquire script with a zero queue ttl), the same release,
 * extend and expiry. Only `acquire` differs:
 *
 *   loop: if held(business) < limit, try a non-blocking acquire; if not granted, sleep 1000 ms.
 */
import { Redis } from 'ioredis';
import { DEFAULT_KEY_PREFIX, slotKeys } from '../src/slots/redis-keys.ts';
import { SlotScripts } from '../src/slots/redis-scripts.ts';
import { abortReason, validateRequest } from '../src/slots/request.ts';
import type { CallSlots, SlotRequest } from '../src/slots/port.ts';

export interface BaselineSlotsOptions {
  redisUrl: string;
  /** The old system's sleep when the business is full. */
  sleepMs?: number;
  keyPrefix?: string;
}

export class BaselineCallSlots implements CallSlots {
  private readonly redis: Redis;
  private readonly scripts: SlotScripts;
  private readonly sleepMs: number;
  private readonly prefix: string;
  /** How often an acquire found the business full and slept. */
  sleeps = 0;

  constructor(
    private readonly inner: CallSlots,
    options: BaselineSlotsOptions,
  ) {
    this.redis = new Redis(options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1, connectionName: 'ocq-bench-baseline' });
    this.scripts = new SlotScripts(this.redis);
    this.sleepMs = options.sleepMs ?? 1000;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  }

  async acquire(req: SlotRequest, signal?: AbortSignal): Promise<void> {
    validateRequest(req);
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      if ((await this.inner.held(req.businessId)) < req.limit) {
        // Try once, never queue (queue ttl 0).
        const reply = await this.scripts.acquire(slotKeys(this.prefix, req.businessId), req.attemptId, req.limit, req.ttlMs, 0);
        if (reply.held) return;
      }
      this.sleeps += 1;
      await sleep(this.sleepMs, signal);
    }
  }

  release(businessId: string, attemptId: string): Promise<boolean> {
    return this.inner.release(businessId, attemptId);
  }

  extend(businessId: string, attemptId: string, ttlMs: number): Promise<boolean> {
    return this.inner.extend(businessId, attemptId, ttlMs);
  }

  held(businessId: string): Promise<number> {
    return this.inner.held(businessId);
  }

  isHeld(businessId: string, attemptId: string): Promise<boolean> {
    return this.inner.isHeld(businessId, attemptId);
  }

  async close(): Promise<void> {
    await this.inner.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
