/**
 * `ocq worker` with the old system's waiting strategy, as a process of its own: the baseline of
 * the throughput measure when the worker runs apart from the carrier and the webhook server.
 * Everything is the product's (config from the same env vars, store, Twilio adapter, Worker)
 * except what the in-process baseline swaps too (engine-rig.ts): slots that sleep 1 s when the
 * business is full, and a notifier that never says a call ended.
 *
 *   node bench/baseline-worker.js worker      (env as for `ocq worker`)
 */
import { loadConfig } from '../src/config.ts';
import type { EngineContext } from '../src/engine/context.ts';
import { Worker } from '../src/engine/worker.ts';
import { createLogger } from '../src/logger.ts';
import { createCallSlots } from '../src/slots/index.ts';
import { openStore } from '../src/store/database.ts';
import { createTwilioProvider } from '../src/telephony/twilio-adapter.ts';
import { BaselineCallSlots } from './baseline-slots.ts';
import { withoutSlotWakeups } from './baseline-notifier.ts';

const config = loadConfig();
const logger = createLogger(config.logLevel);
if (!config.databaseUrl) throw new Error('the baseline worker needs DATABASE_URL');
const store = await openStore({ databaseUrl: config.databaseUrl, logger });
const slots = new BaselineCallSlots(createCallSlots({ redisUrl: config.redisUrl, logger }), { redisUrl: config.redisUrl ?? 'redis://127.0.0.1:6379', sleepMs: 1000 });
const ctx: EngineContext = {
  config,
  store: { ...store, notifier: withoutSlotWakeups(store.notifier) },
  slots,
  telephony: createTwilioProvider({ apiBaseUrl: config.twilio.apiBaseUrl, logger }),
  logger,
};
const worker = new Worker(ctx, { workerId: config.workerId });
await worker.start();
logger.info({ workerId: config.workerId, strategy: 'baseline' }, 'worker started');

const shutdown = async (): Promise<void> => {
  await worker.stop();
  await slots.close();
  await store.close();
  process.exit(0);
};
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
