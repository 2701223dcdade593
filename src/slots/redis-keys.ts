/**
 * The Redis key layout of the slot pool, published in docs/slots.md so other services (an
 * inbound call handler) can share the pool. The `{businessId}` hash tag keeps one business's
 * keys in one cluster slot, which multi-key Lua scripts need.
 */

/** Default prefix: `ocq:slots:{<businessId>}:holders` and so on. */
export const DEFAULT_KEY_PREFIX = 'ocq:slots:';

export interface SlotKeys {
  /** ZSET attemptId -> slot expiry (ms, Redis clock). */
  holders: string;
  /** ZSET attemptId -> arrival number: the FIFO queue. */
  waiters: string;
  /** ZSET attemptId -> waiter deadline (ms, Redis clock): a waiter that stops retrying lapses. */
  deadlines: string;
  /** STRING counter numbering arrivals. */
  arrivals: string;
  /** Pub/sub channel; each message is the attempt id of the one waiter that should retry. */
  wakeChannel: string;
}

export function slotKeys(prefix: string, businessId: string): SlotKeys {
  const base = `${prefix}{${businessId}}`;
  return {
    holders: `${base}:holders`,
    waiters: `${base}:waiters`,
    deadlines: `${base}:waiter-deadlines`,
    arrivals: `${base}:arrivals`,
    wakeChannel: `${base}:wake`,
  };
}
