/**
 * Call slots in Redis, shared by every process and host (and by other services: the key layout
 * and scripts are documented in docs/slots.md).
 *
 * - Atomicity: each operation is one Lua script; expiry comes from Redis TIME, never this clock.
 * - Waiting: a queued acquire sleeps until the wake bus delivers a message addressed to it (a
 *   release wakes exactly the FIFO head), with a slow safety poll in case a message is lost.
 * - Fail closed: a command that cannot reach Redis rejects with SlotsUnavailableError.
 */
import type { Redis } from 'ioredis';
import { SlotsUnavailableError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import type { CallSlots, SlotRequest, SlotsHooks } from './port.ts';
import { closeConnection, openConnection, unavailable, whenReady, type ConnectionTuning } from './redis-connection.ts';
import { DEFAULT_KEY_PREFIX, slotKeys, type SlotKeys } from './redis-keys.ts';
import { SlotScripts, type AcquireReply } from './redis-scripts.ts';
import { abortReason, callHook, checkAcquire, validateBusinessId, validateIds, validateTtl } from './request.ts';
import { WakeBus, Wakeup } from './wake-bus.ts';

export interface RedisCallSlotsOptions extends SlotsHooks, Partial<ConnectionTuning> {
  redisUrl: string;
  logger: Logger;
  /** Safety-poll interval of a waiting acquire, in case a wake message is lost. Default 2000. */
  pollMs?: number;
  /**
   * A queue entry not refreshed for this long lapses, so a crashed waiter blocks its business's
   * queue for at most this plus pollMs. Must exceed pollMs. Default max(3 * pollMs, 5000).
   */
  waiterTtlMs?: number;
  /** Key prefix (tests isolate themselves with a random one). Default `ocq:slots:`. */
  keyPrefix?: string;
  /** How long a command waits for a (re)connection before failing closed. Default 1000. */
  readyTimeoutMs?: number;
}

/** One pending acquire of this instance. */
interface LocalWaiter {
  req: SlotRequest;
  keys: SlotKeys;
  wakeup: Wakeup;
  done: boolean;
  /** Reject the acquire (close()) and withdraw it from Redis. */
  stop(error: Error): Promise<void>;
}

export class RedisCallSlots implements CallSlots {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly scripts: SlotScripts;
  private readonly bus: WakeBus;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly pollMs: number;
  private readonly waiterTtlMs: number;
  private readonly readyTimeoutMs: number;
  /** Pending acquires by business + attempt. */
  private readonly waiters = new Map<string, LocalWaiter>();
  /** Attempts to withdraw once Redis is reachable again: their last command's outcome is unknown. */
  private readonly orphans = new Map<string, { businessId: string; attemptId: string }>();
  private healthy = true;
  private closed = false;

  constructor(private readonly options: RedisCallSlotsOptions) {
    this.log = options.logger;
    this.prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.pollMs = options.pollMs ?? 2000;
    this.waiterTtlMs = options.waiterTtlMs ?? Math.max(3 * this.pollMs, 5000);
    this.readyTimeoutMs = options.readyTimeoutMs ?? 1000;
    if (this.waiterTtlMs <= this.pollMs) throw new RangeError('waiterTtlMs must exceed pollMs, or live waiters lapse');
    const tuning: ConnectionTuning = {
      connectTimeoutMs: options.connectTimeoutMs ?? 2000,
      commandTimeoutMs: options.commandTimeoutMs ?? 2000,
      reconnectMaxMs: options.reconnectMaxMs ?? 1000,
    };
    this.redis = openConnection(options.redisUrl, tuning, 'ocq-slots');
    this.sub = openConnection(options.redisUrl, tuning, 'ocq-slots-wake');
    this.scripts = new SlotScripts(this.redis);
    this.bus = new WakeBus(this.sub, this.readyTimeoutMs, this.log, () => this.wakeAll());
    this.watchHealth();
  }

  acquire(req: SlotRequest, signal?: AbortSignal): Promise<void> {
    try {
      checkAcquire(req, signal, this.closed);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = waiterId(req.businessId, req.attemptId);
    if (this.waiters.has(id)) return Promise.reject(new Error(`attempt ${req.attemptId} is already waiting for a slot`));
    // A fresh acquire of this attempt supersedes any pending clean-up of it.
    this.orphans.delete(id);

    return new Promise<void>((resolve, reject) => {
      const keys = slotKeys(this.prefix, req.businessId);
      const finish = (error?: Error): void => {
        if (waiter.done) return;
        waiter.done = true;
        signal?.removeEventListener('abort', onAbort);
        waiter.wakeup.cancel();
        this.waiters.delete(id);
        this.bus.leave(keys.wakeChannel, req.attemptId);
        if (error) reject(error);
        else resolve();
      };
      const waiter: LocalWaiter = {
        req,
        keys,
        wakeup: new Wakeup(),
        done: false,
        stop: (error) => {
          finish(error);
          return this.withdraw(req.businessId, req.attemptId, waiter);
        },
      };
      // An attempt in flight may still be granted: withdraw runs after it on the same connection.
      const onAbort = (): void => void waiter.stop(abortReason(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.set(id, waiter);
      this.waitForSlot(waiter).then(
        () => finish(),
        // No reply is no answer: the last script may have run and granted. Leave nothing behind.
        (error: unknown) => void waiter.stop(unavailable(error)),
      );
    });
  }

  async release(businessId: string, attemptId: string): Promise<boolean> {
    validateIds(businessId, attemptId);
    try {
      return await this.run(() => this.scripts.release(slotKeys(this.prefix, businessId), attemptId));
    } catch (error) {
      // The caller is told it failed; the release is also retried once Redis is back.
      this.orphans.set(waiterId(businessId, attemptId), { businessId, attemptId });
      throw error;
    }
  }

  async extend(businessId: string, attemptId: string, ttlMs: number): Promise<boolean> {
    validateIds(businessId, attemptId);
    validateTtl(ttlMs);
    return this.run(() => this.scripts.extend(slotKeys(this.prefix, businessId), attemptId, ttlMs));
  }

  async held(businessId: string): Promise<number> {
    validateBusinessId(businessId);
    return (await this.run(() => this.scripts.inspect(slotKeys(this.prefix, businessId)))).live;
  }

  async isHeld(businessId: string, attemptId: string): Promise<boolean> {
    validateIds(businessId, attemptId);
    return (await this.run(() => this.scripts.inspect(slotKeys(this.prefix, businessId), attemptId))).holds;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const stopping = [...this.waiters.values()].map((w) => w.stop(new SlotsUnavailableError('call slots are closed')));
    await Promise.allSettled(stopping);
    await Promise.all([closeConnection(this.redis), closeConnection(this.sub)]);
  }

  /** Retry until held: on a wake, on the safety poll, or when the head's blocker expires. */
  private async waitForSlot(waiter: LocalWaiter): Promise<void> {
    const { req, keys } = waiter;
    let listening = false;
    let announced = false;
    for (;;) {
      if (waiter.done) return;
      const reply = await this.tryTake(waiter);
      if (!reply) return; // abandoned while waiting for the connection
      if (reply.held) {
        if (waiter.done) void this.withdraw(req.businessId, req.attemptId, waiter); // aborted meanwhile
        return;
      }
      if (waiter.done) return;
      if (!listening) {
        listening = true;
        await this.bus.join(keys.wakeChannel, req.attemptId, () => {
          callHook(() => this.options.onWake?.(req.businessId, req.attemptId), (e) => this.log.warn({ err: e }, 'onWake hook threw'));
          waiter.wakeup.wake();
        });
        continue; // retry at once: a wake published before we listened is lost
      }
      if (!announced) {
        announced = true; // now listening and queued: report the settled position
        callHook(() => req.onQueued?.(reply.position), (e) => this.log.warn({ err: e }, 'onQueued hook threw'));
      }
      await waiter.wakeup.sleep(this.retryDelay(reply));
    }
  }

  /** One acquire script run; undefined if the waiter was abandoned before it could be sent. */
  private async tryTake(waiter: LocalWaiter): Promise<AcquireReply | undefined> {
    const { req, keys } = waiter;
    await whenReady(this.redis, this.readyTimeoutMs);
    // Re-check after the await: sending now would land after the abandoning withdraw.
    if (waiter.done) return undefined;
    return this.scripts.acquire(keys, req.attemptId, req.limit, req.ttlMs, this.waiterTtlMs);
  }

  private retryDelay(reply: AcquireReply): number {
    const poll = this.pollMs * (0.9 + Math.random() * 0.2); // jitter: waiters of many hosts do not poll in step
    if (!reply.held && reply.position === 0 && reply.nextExpiryMs >= 0) {
      return Math.min(poll, reply.nextExpiryMs + 1); // the head retries as the first holder expires
    }
    return poll;
  }

  /**
   * Best effort: free the attempt's slot and queue entry now, or once Redis is back. Sent on the
   * command connection, so it runs after any acquire of the attempt already in flight.
   * @param owner the abandoned acquire; a newer acquire of the same attempt is never undone.
   */
  private async withdraw(businessId: string, attemptId: string, owner?: LocalWaiter): Promise<void> {
    try {
      await this.scripts.withdraw(slotKeys(this.prefix, businessId), attemptId);
    } catch (error) {
      const id = waiterId(businessId, attemptId);
      const current = this.waiters.get(id);
      if (current && current !== owner) return;
      this.log.debug({ err: error, businessId, attemptId }, 'withdraw deferred until redis is reachable');
      this.orphans.set(id, { businessId, attemptId });
    }
  }

  private async run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SlotsUnavailableError('call slots are closed');
    try {
      await whenReady(this.redis, this.readyTimeoutMs);
      return await operation();
    } catch (error) {
      throw unavailable(error);
    }
  }

  private wakeAll(): void {
    for (const waiter of this.waiters.values()) waiter.wakeup.wake();
  }

  private watchHealth(): void {
    this.redis.on('error', (error: Error) => {
      if (this.healthy) this.log.warn({ err: error }, 'call slots: redis unreachable, failing closed');
      this.healthy = false;
    });
    this.redis.on('close', () => {
      if (this.healthy && !this.closed) this.log.warn('call slots: redis connection lost, failing closed');
      this.healthy = false;
    });
    // Registered before any whenReady() listener, so these withdrawals go out before new work.
    this.redis.on('ready', () => {
      if (!this.healthy) this.log.info('call slots: redis reachable again');
      this.healthy = true;
      const orphans = [...this.orphans.values()];
      this.orphans.clear();
      for (const { businessId, attemptId } of orphans) void this.withdraw(businessId, attemptId);
    });
  }
}

function waiterId(businessId: string, attemptId: string): string {
  return `${businessId}\n${attemptId}`;
}
