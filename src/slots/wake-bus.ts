/**
 * Event-driven waiting: one subscriber connection per CallSlots instance. The scripts PUBLISH
 * the attempt id of the single waiter that should retry; the bus hands the message to that
 * waiter only, if it waits in this instance. Everyone else ignores it: no thundering herd.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { whenReady } from './redis-connection.ts';

/**
 * A retry trigger for one waiter: wake() ends the current sleep, or, if the waiter is busy
 * retrying, makes its next sleep return at once (a wake is never lost, and never doubled up).
 */
export class Wakeup {
  private pending = false;
  private endSleep: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  wake(): void {
    if (this.endSleep) this.finishSleep();
    else this.pending = true;
  }

  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.endSleep = resolve;
      this.timer = setTimeout(() => this.finishSleep(), ms);
    });
  }

  /** End any sleep for good (the waiter is done). */
  cancel(): void {
    this.pending = false;
    if (this.endSleep) this.finishSleep();
  }

  private finishSleep(): void {
    clearTimeout(this.timer);
    const resolve = this.endSleep;
    this.endSleep = undefined;
    resolve?.();
  }
}

export class WakeBus {
  /** channel -> attemptId -> wake callback, for the waiters of this instance. */
  private readonly listeners = new Map<string, Map<string, () => void>>();
  /** Channels left while disconnected: ioredis will resubscribe them, so drop them on reconnect. */
  private readonly stale = new Set<string>();
  private connectedBefore = false;

  /**
   * @param onResync called when wakes may have been missed (the subscriber reconnected) or a
   *   retry is needed to notice an outage (the subscriber dropped): local waiters retry now.
   */
  constructor(
    private readonly sub: Redis,
    private readonly readyTimeoutMs: number,
    private readonly logger: Logger,
    private readonly onResync: () => void,
  ) {
    sub.on('message', (channel: string, attemptId: string) => this.listeners.get(channel)?.get(attemptId)?.());
    sub.on('ready', () => {
      if (!this.connectedBefore) {
        this.connectedBefore = true;
        return;
      }
      for (const channel of this.stale) this.unsubscribe(channel);
      this.stale.clear();
      // ioredis re-sent SUBSCRIBE before emitting 'ready'; the PING reply proves it took effect,
      // so a wake published after the waiters' retry cannot be missed.
      sub.ping().then(this.onResync, (error: unknown) => this.logger.debug({ err: error }, 'wake bus resync ping failed'));
    });
    sub.on('close', () => {
      if (this.listeners.size > 0) this.onResync();
    });
    sub.on('error', (error: Error) => this.logger.debug({ err: error }, 'wake bus connection error'));
  }

  /**
   * Listen for wakes addressed to `attemptId`. Resolves once the server has registered the
   * subscription: from then on no wake for it is missed (the caller retries once right after).
   * @throws {SlotsUnavailableError} when the subscriber cannot reach Redis.
   */
  async join(channel: string, attemptId: string, wake: () => void): Promise<void> {
    let local = this.listeners.get(channel);
    if (!local) {
      local = new Map();
      this.listeners.set(channel, local);
    }
    local.set(attemptId, wake);
    this.stale.delete(channel);
    await whenReady(this.sub, this.readyTimeoutMs);
    // SUBSCRIBE is idempotent; commands on one connection run in order, so it also wins over
    // an UNSUBSCRIBE sent earlier by a departing waiter.
    await this.sub.subscribe(channel);
  }

  leave(channel: string, attemptId: string): void {
    const local = this.listeners.get(channel);
    if (!local?.delete(attemptId) || local.size > 0) return;
    this.listeners.delete(channel);
    if (this.sub.status === 'ready') this.unsubscribe(channel);
    else this.stale.add(channel);
  }

  private unsubscribe(channel: string): void {
    this.sub.unsubscribe(channel).catch((error: unknown) => this.logger.debug({ err: error }, 'unsubscribe failed'));
  }
}
