/**
 * Per-business call slots: at most `limit` live calls per business, across every process and
 * host. A slot is keyed by the call attempt id, so whichever process learns that the call ended
 * (a status webhook, a reconciler) can release it.
 *
 * Two implementations share this port: `memory.ts` (one process) and `redis.ts` (many
 * processes; key layout in docs/slots.md). `createCallSlots` in `index.ts` picks one.
 */

/** One request for a call slot. */
export interface SlotRequest {
  businessId: string;
  /** The call attempt id (a UUID). The slot is keyed by it, so ANY process can release it. */
  attemptId: string;
  /** The business's max concurrent calls (an integer, 1..100). */
  limit: number;
  /** At least call time limit + ring timeout + margin: the slot expires only then. */
  ttlMs: number;
  /**
   * Called once if the request has to wait, with its place in the business's queue (0 = next).
   * Lets a worker report "waiting for a free line" before the wait ends.
   */
  onQueued?: (position: number) => void;
}

/** The slot pool. All methods fail closed: an unreachable backend rejects, never grants. */
export interface CallSlots {
  /**
   * Take a slot, or wait in FIFO order (per business) until one frees. Resolves once held.
   * Acquiring an attempt that already holds its slot resolves at once and never shortens it.
   *
   * @throws the signal's reason (an `AbortError` DOMException by default) if `signal` aborts;
   *   no waiter or holder is left behind.
   * @throws {SlotsUnavailableError} when the backend is unreachable (fail closed).
   */
  acquire(req: SlotRequest, signal?: AbortSignal): Promise<void>;
  /**
   * Free the attempt's slot. Idempotent; callable from any process that learns the call ended.
   * @returns true if the attempt held a live (unexpired) slot.
   * @throws {SlotsUnavailableError} when the backend is unreachable.
   */
  release(businessId: string, attemptId: string): Promise<boolean>;
  /**
   * Push the slot's expiry out to now + `ttlMs` (call-progress events). Never shortens it.
   * @returns false if the attempt holds no live slot.
   */
  extend(businessId: string, attemptId: string, ttlMs: number): Promise<boolean>;
  /** How many slots the business holds now (expired ones not counted). */
  held(businessId: string): Promise<number>;
  /** Is this attempt holding a live slot? */
  isHeld(businessId: string, attemptId: string): Promise<boolean>;
  /** Reject every pending acquire (SlotsUnavailableError), withdraw their queue entries, disconnect. */
  close(): Promise<void>;
}

/** Observability hooks shared by both implementations. */
export interface SlotsHooks {
  /** A queued acquire of this instance was woken because a slot may be free for it. */
  onWake?: (businessId: string, attemptId: string) => void;
}

/** Largest per-business limit the product allows. */
export const MAX_SLOT_LIMIT = 100;
