/**
 * The composition root: opens the store, the slot pool and the provider for one process, and
 * builds the HTTP server and the worker from them. The CLI commands pick what they run.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.ts';
import { ConfigError } from '../domain/errors.ts';
import type { EngineContext } from '../engine/context.ts';
import { createRunControl } from '../engine/run-control-impl.ts';
import { statusWebhookDeps } from '../engine/status-webhook.ts';
import { Worker } from '../engine/worker.ts';
import type { Logger } from '../logger.ts';
import { createMetrics, liveCallsFromDatabase, runsByStateFromDatabase } from '../metrics.ts';
import { createCallSlots } from '../slots/index.ts';
import { openStore, type Store } from '../store/database.ts';
import { migrate } from '../store/migrate.ts';
import { createTwilioProvider } from '../telephony/twilio-adapter.ts';
import { twilioStatusWebhook } from '../telephony/webhook-route.ts';
import { answerRoute } from './answer-route.ts';

/** Opens the configured store and migrates it (a no-op when up to date). */
export async function openMigratedStore(config: Config, logger: Logger, options: { requirePostgres?: string } = {}): Promise<Store> {
  if (options.requirePostgres && !config.databaseUrl) {
    throw new ConfigError(
      'DATABASE_URL',
      `\`ocq ${options.requirePostgres}\` runs beside other processes and needs PostgreSQL; the embedded database allows one process (use \`ocq start\`)`,
    );
  }
  const store = config.databaseUrl
    ? await openStore({ databaseUrl: config.databaseUrl, logger })
    : await openStore({ dataDir: config.dataDir, logger });
  const applied = await migrate(store.db);
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  return store;
}

export interface Runtime {
  ctx: EngineContext;
  app?: FastifyInstance;
  worker?: Worker;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  config: Config;
  logger: Logger;
  store: Store;
  http: boolean;
  worker: boolean;
  /** More routes on the same server (the simulated carrier in `ocq start`). */
  extraPlugins?: FastifyPluginAsync[];
}

export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, logger, store } = options;
  const metrics = createMetrics({
    collectRunsByState: runsByStateFromDatabase(store.db),
    collectLiveCalls: liveCallsFromDatabase(store.db),
  });
  const slots = createCallSlots({ redisUrl: config.redisUrl, logger: logger.child({ module: 'slots' }) });
  const telephony = createTwilioProvider({ apiBaseUrl: config.twilio.apiBaseUrl, logger: logger.child({ module: 'telephony' }) });
  const ctx: EngineContext = { config, store, slots, telephony, logger, metrics };

  let app: FastifyInstance | undefined;
  if (options.http) {
    // Loaded only by processes that serve HTTP: a worker does not carry Fastify and the API.
    const { buildApp } = await import('../http/app.ts');
    app = await buildApp(
      { config, store, logger, slots, metrics, runControl: createRunControl(ctx) },
      { extraPlugins: [twilioStatusWebhook(statusWebhookDeps(ctx)), answerRoute, ...(options.extraPlugins ?? [])] },
    );
    await app.listen({ port: config.port, host: config.host });
    logger.info({ url: `http://${config.host}:${config.port}`, publicUrl: config.publicUrl }, 'HTTP server listening');
  }
  let worker: Worker | undefined;
  if (options.worker) {
    worker = new Worker(ctx, { workerId: config.workerId });
    await worker.start();
    logger.info({ workerId: config.workerId }, 'worker started');
  }
  return {
    ctx,
    app,
    worker,
    async close() {
      // Order matters: stop dialling, then stop taking requests, then let go of the slot pool.
      await worker?.stop();
      await app?.close();
      await slots.close();
    },
  };
}
