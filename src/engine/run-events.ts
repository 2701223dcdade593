/**
 * Run events pushed between processes over the store's notifier (LISTEN/NOTIFY): a worker is
 * woken for a new run or a cancel/stop at once, and SSE clients see progress as it happens.
 * Payloads are tiny and carry no tenant data beyond ids; listeners re-read what they need
 * through the tenant-scoped store.
 */
import type { Notifier } from '../store/notifier.ts';
import { RUN_EVENTS_CHANNEL } from '../store/run-event-channel.ts';

export { RUN_EVENTS_CHANNEL };

export type RunEventKind =
  | 'created'
  | 'started'
  | 'progress'
  | 'cancel_requested'
  | 'stop_requested'
  | 'ended'
  | 'lease_released';

export interface RunEventMessage {
  kind: RunEventKind;
  runId: string;
  businessId: string;
  /** On `progress`: a call reached its final status, so a slot freed (workers wake only for these). */
  callEnded?: boolean;
}

export async function publishRunEvent(notifier: Notifier, message: RunEventMessage): Promise<void> {
  await notifier.notify(RUN_EVENTS_CHANNEL, JSON.stringify(message));
}

/** Subscribe to every run event; returns the unsubscribe function. Malformed payloads are dropped. */
export async function subscribeRunEvents(
  notifier: Notifier,
  handler: (message: RunEventMessage) => void,
): Promise<() => Promise<void>> {
  return notifier.listen(RUN_EVENTS_CHANNEL, (payload) => {
    let message: RunEventMessage;
    try {
      message = JSON.parse(payload) as RunEventMessage;
    } catch {
      return;
    }
    if (typeof message.runId === 'string' && typeof message.businessId === 'string') handler(message);
  });
}
