/** What the engine's parts share: one store, one slot pool, one provider, per process. */
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { CallSlots } from '../slots/port.ts';
import type { Store } from '../store/database.ts';
import type { TelephonyProvider } from '../telephony/port.ts';

export interface EngineContext {
  config: Config;
  store: Store;
  slots: CallSlots;
  telephony: TelephonyProvider;
  logger: Logger;
  metrics?: Metrics;
}

/** A dial is held as a short reservation until its record commits, then for the call's lifetime. */
export const SLOT_RESERVATION_MS = 30_000;

/** How long a call's slot must live: ring time + call time limit + margin. */
export function callSlotTtlMs(business: { ring_timeout_seconds: number; call_time_limit_seconds: number }, config: Config): number {
  return (business.ring_timeout_seconds + business.call_time_limit_seconds + config.slotMarginSeconds) * 1000;
}
