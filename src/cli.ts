/**
 * `ocq`: the product's one binary.
 *
 *   ocq start         one process: embedded database (or DATABASE_URL), API, worker, simulated carrier
 *   ocq serve         API and webhooks only (PostgreSQL; run N behind a load balancer)
 *   ocq worker        a worker only (PostgreSQL + Redis; run M on any hosts)
 *   ocq migrate       apply migrations (safe to run twice, and from two processes at once)
 *   ocq carrier-sim   the Twilio-compatible simulated carrier, standalone
 *   ocq admin ...     businesses, users and tokens
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from './config.ts';
import { OcqError } from './domain/errors.ts';
import { createLogger, type Logger } from './logger.ts';
import { openMigratedStore, startRuntime, type Runtime } from './runtime/components.ts';
import { openStore } from './store/database.ts';
import { migrate } from './store/migrate.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is a whole number from 0 to 65535');
  return n;
}

/** Graceful shutdown on the first Ctrl-C / SIGTERM; a second one exits at once. */
function closeOnSignal(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (signal: string) => {
    if (closing) process.exit(130);
    closing = true;
    logger.info({ signal }, 'shutting down: no new dials; handing runs back');
    close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

async function runProcess(config: Config, logger: Logger, mode: 'start' | 'serve' | 'worker'): Promise<Runtime> {
  const store = await openMigratedStore(config, logger, mode === 'start' ? {} : { requirePostgres: mode });
  let runtime: Runtime | undefined;
  try {
    if (mode === 'start') {
      // With no real Twilio account configured, dial the simulated carrier on this same server.
      const { embeddedCarrier } = await import('./runtime/embedded-carrier.ts');
      const { ensureDemoData } = await import('./runtime/demo.ts');
      const carrier = config.twilio.accountSid ? undefined : embeddedCarrier(config, logger);
      const effective = carrier?.config ?? config;
      runtime = await startRuntime({ config: effective, logger, store, http: true, worker: true, extraPlugins: carrier ? [carrier.plugin] : [] });
      await ensureDemoData(store, effective, logger);
      const inner = runtime;
      closeOnSignal(logger, async () => {
        await inner.worker?.stop();
        await carrier?.endLiveCalls();
        await inner.close();
        carrier?.simulator.shutdown();
        await store.close();
      });
    } else {
      runtime = await startRuntime({ config, logger, store, http: mode === 'serve', worker: mode === 'worker' });
      const inner = runtime;
      closeOnSignal(logger, async () => {
        await inner.close();
        await store.close();
      });
    }
    return runtime;
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    await store.close();
    throw error;
  }
}

export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('ocq').description('Outbound call campaign engine').showHelpAfterError();
  program.command('start').description('one process: API, worker and simulated carrier, on the embedded database').action(async () => {
    const config = loadConfig();
    await runProcess(config, createLogger(config.logLevel), 'start');
  });
  program.command('serve').description('API and webhooks (PostgreSQL)').action(async () => {
    const config = loadConfig();
    await runProcess(config, createLogger(config.logLevel), 'serve');
  });
  program.command('worker').description('a worker that leases and dials runs (PostgreSQL)').action(async () => {
    const config = loadConfig();
    await runProcess(config, createLogger(config.logLevel), 'worker');
  });
  program.command('migrate').description('apply pending migrations').action(async () => {
    const config = loadConfig();
    const store = config.databaseUrl ? await openStore({ databaseUrl: config.databaseUrl }) : await openStore({ dataDir: config.dataDir });
    try {
      const applied = await migrate(store.db);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'up to date: nothing to apply');
    } finally {
      await store.close();
    }
  });
  program
    .command('carrier-sim')
    .description('the Twilio-compatible simulated carrier')
    .option('--port <n>', 'port', port, 4010)
    .option('--host <host>', 'interface', '127.0.0.1')
    .option('--account-sid <sid>', 'account to accept (default TWILIO_ACCOUNT_SID)')
    .option('--auth-token <token>', 'its auth token (default TWILIO_AUTH_TOKEN)')
    .action(async (options: { port: number; host: string; accountSid?: string; authToken?: string }) => {
      const logger = createLogger();
      const { runCarrierSim } = await import('./telephony/carrier-sim/server.ts');
      const sim = await runCarrierSim({ ...options, logger });
      closeOnSignal(logger, () => sim.close());
    });
  // The admin commands (and the API schemas they share) load only when asked for or listed, so a
  // long-running worker does not carry them.
  const command = argv[2];
  if (command === undefined || command === 'admin' || command === 'help' || command.startsWith('-')) {
    const { registerAdminCommands } = await import('./cli/admin-commands.ts');
    registerAdminCommands(program, async () => openMigratedStore(loadConfig(), createLogger('warn')));
  }
  return program;
}

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (error) {
  if (error instanceof OcqError) {
    console.error(`ocq: ${error.message}`);
    if (error.he !== error.message) console.error(`ocq: ${error.he}`);
  } else {
    console.error(error);
  }
  process.exit(1);
}
