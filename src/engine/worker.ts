/**
 * A worker: leases runs, drives each with a {@link RunDriver}, renews its leases, and hands them
 * back on shutdown. Any number of workers on any hosts may run against one database.
 *
 * Timing (ttl = OCQ_LEASE_TTL_SECONDS, default 15 s):
 * - leases are renewed every ttl/3, in one statement for all of the worker's runs;
 * - a dead worker's lease expires ttl after its last renewal; every worker schedules a lease scan
 *   for the moment the earliest lease it can see expires, so takeover happens within about
 *   ttl (+ scheduling slack) of the last renewal: worst case ttl + the time to notice;
 * - new runs are leased at once (a pushed `created` event), with the safety poll as backstop.
 */
import { appendAudit } from '../store/audit.ts';
import { leaseRuns, releaseLeases, renewLeases, secondsUntilNextLeaseExpiry } from '../store/run-lease.ts';
import type { EngineContext } from './context.ts';
import { RunDriver } from './run-driver.ts';
import { publishRunEvent, subscribeRunEvents } from './run-events.ts';

export interface WorkerOptions {
  workerId: string;
  /** Most runs one worker drives at once. */
  maxRuns?: number;
}

export class Worker {
  private readonly drivers = new Map<string, RunDriver>();
  private readonly loops = new Set<Promise<void>>();
  private running = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private leasing: Promise<void> | undefined;
  private leaseAgain = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private readonly maxRuns: number;

  constructor(
    private readonly ctx: EngineContext,
    private readonly options: WorkerOptions,
  ) {
    this.maxRuns = options.maxRuns ?? 1000;
  }

  get id(): string {
    return this.options.workerId;
  }

  async start(): Promise<void> {
    this.running = true;
    this.unsubscribe = await subscribeRunEvents(this.ctx.store.notifier, (event) => {
      if (event.kind === 'created' || event.kind === 'lease_released') this.scheduleLease(0);
      else if (event.kind === 'ended' || (event.kind === 'progress' && event.callEnded !== false)) this.wakeBusiness(event.businessId);
      else if (event.kind === 'progress') return; // ringing, answered: nothing for a driver to do
      else if (event.kind === 'cancel_requested' || event.kind === 'stop_requested') this.drivers.get(event.runId)?.interrupt();
      else this.drivers.get(event.runId)?.wake();
    });
    this.ctx.store.notifier.onReconnect(() => {
      // Events may have been missed, and webhooks may have failed, while disconnected: look again.
      for (const driver of this.drivers.values()) driver.reconcileSoon();
      this.scheduleLease(0);
    });
    const heartbeatMs = (this.ctx.config.leaseTtlSeconds * 1000) / 3;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), heartbeatMs);
    this.scheduleLease(0);
  }

  /**
   * Stops taking runs, halts every driver before its next dial, waits for the dial steps in
   * progress, and hands the leases back so another worker takes over at once. Calls already live
   * keep their slots; their webhooks end them.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private stopping: Promise<void> | undefined;

  private async shutDown(): Promise<void> {
    this.running = false;
    clearTimeout(this.leaseTimer);
    clearInterval(this.heartbeatTimer);
    await this.unsubscribe?.();
    await this.leasing;
    for (const driver of this.drivers.values()) driver.halt('worker stopping');
    await Promise.allSettled([...this.loops]);
    const drivers = [...this.drivers.values()];
    const released = await releaseLeases(
      this.ctx.store.db,
      drivers.map((driver) => driver.lease),
    ).catch(() => new Set<string>());
    for (const driver of drivers) {
      if (!released.has(driver.lease.runId)) continue;
      await publishRunEvent(this.ctx.store.notifier, { kind: 'lease_released', runId: driver.lease.runId, businessId: driver.businessId }).catch(
        () => undefined,
      );
    }
    this.drivers.clear();
  }

  /** A call of this business ended: any of its runs may dial now (cheap: a business has few runs). */
  private wakeBusiness(businessId: string): void {
    for (const driver of this.drivers.values()) if (driver.businessId === businessId) driver.wake();
  }

  private scheduleLease(delayMs: number): void {
    if (!this.running) return;
    if (this.leasing) {
      this.leaseAgain = true;
      return;
    }
    clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => {
      this.leasing = this.leaseOnce().finally(() => {
        this.leasing = undefined;
        if (this.leaseAgain) {
          this.leaseAgain = false;
          this.scheduleLease(0);
        }
      });
    }, delayMs);
  }

  private async leaseOnce(): Promise<void> {
    const ttl = this.ctx.config.leaseTtlSeconds;
    let nextInMs = this.ctx.config.safetyPollSeconds * 1000;
    try {
      const leased = await leaseRuns(this.ctx.store.db, { workerId: this.id, ttlSeconds: ttl, limit: this.maxRuns - this.drivers.size });
      for (const { run, previousWorker } of leased) {
        if (previousWorker) {
          this.ctx.logger.info({ runId: run.id, previousWorker }, 'took over a stale lease');
          await appendAudit(this.ctx.store.db, {
            businessId: run.business_id,
            actor: { type: 'worker', id: this.id },
            action: 'run.lease_takeover',
            targetType: 'run',
            targetId: run.id,
            data: { previous_worker: previousWorker, status: run.status },
          });
        }
        this.startDriver(new RunDriver(this.ctx, run));
      }
      const untilExpiry = await secondsUntilNextLeaseExpiry(this.ctx.store.db, ttl);
      if (untilExpiry !== null) nextInMs = Math.min(nextInMs, Math.max(50, untilExpiry * 1000 + 50));
      // A full page means more may be waiting.
      if (leased.length > 0 && this.drivers.size < this.maxRuns) nextInMs = Math.min(nextInMs, 10);
    } catch (error) {
      this.ctx.logger.warn({ err: error }, 'lease scan failed; retrying');
      nextInMs = 1000;
    }
    if (this.running) {
      clearTimeout(this.leaseTimer);
      this.leaseTimer = setTimeout(() => this.scheduleLease(0), nextInMs);
    }
  }

  private startDriver(driver: RunDriver): void {
    this.drivers.set(driver.lease.runId, driver);
    const loop = driver
      .drive()
      .catch((error: unknown) => this.ctx.logger.error({ err: error, runId: driver.lease.runId }, 'run driver crashed'))
      .finally(() => {
        this.loops.delete(loop);
        if (this.running) {
          this.drivers.delete(driver.lease.runId);
          // A crashed driver's run is free to lease again once its lease lapses; a finished one is gone.
          this.scheduleLease(0);
        }
      });
    this.loops.add(loop);
  }

  private async heartbeat(): Promise<void> {
    if (!this.running || this.drivers.size === 0) return;
    try {
      const held = await renewLeases(
        this.ctx.store.db,
        [...this.drivers.values()].map((driver) => driver.lease),
      );
      for (const driver of this.drivers.values()) {
        if (!held.has(driver.lease.runId)) {
          this.ctx.logger.info({ runId: driver.lease.runId }, 'lease lost; halting its driver');
          driver.halt('lease lost');
        }
      }
    } catch (error) {
      // Cannot renew (database blip): keep going; the fenced writes protect us if it lapses.
      this.ctx.logger.warn({ err: error }, 'lease renewal failed');
    }
  }
}
