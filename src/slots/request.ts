/** Checks and helpers shared by both CallSlots implementations. */
import { SlotsUnavailableError } from '../domain/errors.ts';
import { MAX_SLOT_LIMIT, type SlotRequest } from './port.ts';

/**
 * Reject requests that would corrupt the pool: a bad limit or ttl is a programming error, and
 * braces in a business id would break the Redis cluster hash tag `{businessId}`.
 * @throws {RangeError}
 */
export function validateRequest(req: SlotRequest): void {
  validateIds(req.businessId, req.attemptId);
  if (!Number.isInteger(req.limit) || req.limit < 1 || req.limit > MAX_SLOT_LIMIT) {
    throw new RangeError(`slot limit must be an integer 1..${MAX_SLOT_LIMIT}, got ${req.limit}`);
  }
  validateTtl(req.ttlMs);
}

export function validateIds(businessId: string, attemptId: string): void {
  validateBusinessId(businessId);
  if (!attemptId) throw new RangeError('attempt id must be non-empty');
}

export function validateBusinessId(businessId: string): void {
  if (!businessId || /[{}]/.test(businessId)) {
    throw new RangeError(`business id must be non-empty and free of braces, got "${businessId}"`);
  }
}

export function validateTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`slot ttl must be a positive integer of ms, got ${ttlMs}`);
  }
}

/** What an aborted acquire rejects with: the signal's own reason, like fetch does. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException('the wait for a call slot was aborted', 'AbortError');
}

/** Call a user hook without letting its exception break the slot bookkeeping. */
export function callHook(hook: (() => void) | undefined, onError: (error: unknown) => void): void {
  if (!hook) return;
  try {
    hook();
  } catch (error) {
    onError(error);
  }
}

/** What every acquire checks before it queues: a valid request, not aborted, pool not closed. */
export function checkAcquire(req: SlotRequest, signal: AbortSignal | undefined, closed: boolean): void {
  validateRequest(req);
  if (signal?.aborted) throw abortReason(signal);
  if (closed) throw new SlotsUnavailableError('call slots are closed');
}
