/**
 * The baseline's notifier: the old system had no "a call ended" wake-up, so a baseline worker
 * must not get the product's own (engine-rig.ts, baseline-worker.ts).
 */
import { RUN_EVENTS_CHANNEL, type RunEventMessage } from '../src/engine/run-events.ts';
import type { Notifier } from '../src/store/notifier.ts';

/** The run events that mean "a call ended, a slot may be free": withheld from baseline workers. */
const SLOT_FREED_EVENTS = new Set(['progress', 'ended']);

/** A notifier that never tells its listeners a call ended (the old system had no such wake-up). */
export function withoutSlotWakeups(inner: Notifier): Notifier {
  return {
    notify: (channel, payload) => inner.notify(channel, payload),
    listen: (channel, handler) =>
      inner.listen(channel, (payload) => {
        if (channel === RUN_EVENTS_CHANNEL) {
          try {
            if (SLOT_FREED_EVENTS.has((JSON.parse(payload) as RunEventMessage).kind)) return;
          } catch {
            // malformed: let the real subscriber drop it
          }
        }
        handler(payload);
      }),
    onReconnect: (handler) => inner.onReconnect(handler),
    close: () => inner.close(),
  };
}
