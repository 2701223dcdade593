/**
 * The call-slot pool for this process: Redis when a URL is configured (any number of processes
 * and hosts), in-process memory otherwise (the embedded single-process default).
 *
 * @example
 * const slots = createCallSlots({ redisUrl: process.env.REDIS_URL, logger });
 * await slots.acquire({ businessId, attemptId, limit: 3, ttlMs: timeLimitMs + ringMs + 60_000 }, signal);
 * // ... dial; whichever process sees the terminal status:
 * await slots.release(businessId, attemptId);
 */
import type { Logger } from '../logger.ts';
import { MemoryCallSlots } from './memory.ts';
import type { CallSlots } from './port.ts';
import { RedisCallSlots, type RedisCallSlotsOptions } from './redis.ts';

export type { CallSlots, SlotRequest, SlotsHooks } from './port.ts';
export { MAX_SLOT_LIMIT } from './port.ts';
export { DEFAULT_KEY_PREFIX, slotKeys, type SlotKeys } from './redis-keys.ts';
export { readSlotScript } from './redis-scripts.ts';

export interface CreateCallSlotsOptions extends Omit<RedisCallSlotsOptions, 'redisUrl'> {
  /** Redis URL; empty or absent selects the in-process pool. */
  redisUrl?: string | undefined;
  /** Used as given: pass a child logger (e.g. `{ module: 'slots' }`). */
  logger: Logger;
}

export function createCallSlots(options: CreateCallSlotsOptions): CallSlots {
  const { redisUrl } = options;
  if (redisUrl) return new RedisCallSlots({ ...options, redisUrl });
  return new MemoryCallSlots({ logger: options.logger, onWake: options.onWake });
}
