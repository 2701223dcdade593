/**
 * ioredis connections tuned to FAIL CLOSED: a command never waits in a queue for a server that
 * is gone. It runs on a live connection, or it fails at once and the caller learns that no slot
 * was granted.
 */
import { Redis } from 'ioredis';
import { SlotsUnavailableError } from '../domain/errors.ts';

export interface ConnectionTuning {
  /** Give up a TCP connect attempt after this long. */
  connectTimeoutMs: number;
  /** A command without a reply after this long fails (the server hangs or is partitioned). */
  commandTimeoutMs: number;
  /** Longest pause between reconnect attempts. */
  reconnectMaxMs: number;
}

export function openConnection(url: string, tuning: ConnectionTuning, connectionName: string): Redis {
  return new Redis(url, {
    connectionName,
    // Never park commands while disconnected: they would grant slots minutes later, or never answer.
    enableOfflineQueue: false,
    // Commands in flight when the connection drops fail at once instead of being replayed.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: tuning.connectTimeoutMs,
    commandTimeout: tuning.commandTimeoutMs,
    // Keep reconnecting forever, so the same instance works again once Redis is back.
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 10), tuning.reconnectMaxMs),
  });
}

/** One listener pair per connection, however many callers wait for it. */
const nextReady = new WeakMap<Redis, Promise<void>>();

function readyEvent(redis: Redis): Promise<void> {
  let pending = nextReady.get(redis);
  if (!pending) {
    pending = new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        nextReady.delete(redis);
        redis.off('ready', onReady);
        redis.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = (): void => settle();
      const onEnd = (): void => settle(new SlotsUnavailableError('redis connection closed'));
      redis.once('ready', onReady);
      redis.once('end', onEnd);
    });
    pending.catch(() => {}); // a closed connection with nobody waiting is not an error
    nextReady.set(redis, pending);
  }
  return pending;
}

/**
 * Resolve when the connection is usable; wait up to `timeoutMs` for a (re)connect, so a blip or
 * the first connect after start does not fail a call, but an outage fails it promptly.
 * @throws {SlotsUnavailableError}
 */
export function whenReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  if (redis.status === 'end') return Promise.reject(new SlotsUnavailableError('redis connection closed'));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SlotsUnavailableError(`redis not reachable within ${timeoutMs} ms (connection ${redis.status})`)),
      timeoutMs,
    );
  });
  return Promise.race([readyEvent(redis), timeout]).finally(() => clearTimeout(timer));
}

/** Close gracefully when connected, at once otherwise. */
export async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Describe a failure for SlotsUnavailableError without losing an existing one. */
export function unavailable(error: unknown): SlotsUnavailableError {
  if (error instanceof SlotsUnavailableError) return error;
  return new SlotsUnavailableError(error instanceof Error ? error.message : String(error));
}
