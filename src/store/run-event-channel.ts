/**
 * The notification channel of run events. It lives in the store because some run events are
 * sent by the very statement that makes the change (committed with it, no extra round trip);
 * the event vocabulary itself is the engine's (engine/run-events.ts).
 */
export const RUN_EVENTS_CHANNEL = 'ocq_run_events';
