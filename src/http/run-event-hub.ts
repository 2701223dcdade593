/**
 * One run-event subscription per API process, fanned out to the SSE streams watching each run:
 * a thousand open streams cost one LISTEN and one JSON parse per event, not a thousand.
 */
import { subscribeRunEvents, type RunEventMessage } from '../engine/run-events.ts';
import type { Notifier } from '../store/notifier.ts';

export type RunEventHandler = (message: RunEventMessage) => void;

export class RunEventHub {
  private readonly watchersByRun = new Map<string, Set<RunEventHandler>>();
  private subscription: Promise<() => Promise<void>> | undefined;

  constructor(private readonly notifier: Notifier) {}

  /** Calls `handler` for every event naming `runId`; resolves once listening. Returns the stop function. */
  async watch(runId: string, handler: RunEventHandler): Promise<() => void> {
    this.subscription ??= subscribeRunEvents(this.notifier, (message) => this.dispatch(message));
    try {
      await this.subscription;
    } catch (error) {
      this.subscription = undefined; // let the next stream try again
      throw error;
    }
    let watchers = this.watchersByRun.get(runId);
    if (!watchers) this.watchersByRun.set(runId, (watchers = new Set()));
    watchers.add(handler);
    return () => {
      watchers.delete(handler);
      if (watchers.size === 0 && this.watchersByRun.get(runId) === watchers) this.watchersByRun.delete(runId);
    };
  }

  private dispatch(message: RunEventMessage): void {
    for (const handler of this.watchersByRun.get(message.runId) ?? []) handler(message);
  }

  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    this.watchersByRun.clear();
    if (subscription) await (await subscription.catch(() => async () => undefined))();
  }
}
