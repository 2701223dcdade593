/**
 * `ocq start` runs with no outside service: the simulated carrier is mounted on the product's own
 * server, and the Twilio adapter is pointed at it (the same adapter a real account uses). Its
 * account is made once and kept in the data folder, so restarts reconcile against the same one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { CarrierSimulator } from '../telephony/carrier-sim/simulator.ts';
import { carrierSimApiRoutes } from '../telephony/carrier-sim/routes.ts';
import { newSid } from '../telephony/carrier-sim/twilio-shapes.ts';
import { isFinalCallStatus } from '../telephony/port.ts';

export interface EmbeddedCarrier {
  config: Config;
  plugin: FastifyPluginAsync;
  simulator: CarrierSimulator;
  /**
   * Shutdown: the simulated calls live in this process and would vanish with it, so end them
   * (a hang-up, as a person would) and wait, bounded, until their final callbacks were delivered
   * and recorded. Call it after the worker stopped dialling, while the server still listens.
   */
  endLiveCalls(timeoutMs?: number): Promise<void>;
}

export function embeddedCarrier(config: Config, logger: Logger): EmbeddedCarrier {
  const file = path.join(config.dataDir, 'sim-account.json');
  let account: { accountSid: string; authToken: string };
  try {
    account = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof account;
  } catch {
    account = { accountSid: newSid('AC'), authToken: newSid('SK').slice(2) };
    fs.mkdirSync(config.dataDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(account), { mode: 0o600 });
  }
  const simulator = new CarrierSimulator({ accounts: [account], logger: logger.child({ module: 'carrier-sim' }) });
  const selfUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  return {
    config: { ...config, twilio: { accountSid: account.accountSid, authToken: account.authToken, apiBaseUrl: selfUrl } },
    // Only the Twilio-shaped API (Basic auth); the simulator's admin routes stay off the product server.
    plugin: async (app) => app.register(carrierSimApiRoutes(simulator), { prefix: '/2010-04-01' }),
    simulator,
    async endLiveCalls(timeoutMs = 5000) {
      for (const view of simulator.allCalls()) {
        if (isFinalCallStatus(view.status)) continue;
        const call = simulator.getCall(view.accountSid, view.sid);
        if (call) simulator.updateCallStatus(call, view.status === 'in-progress' ? 'completed' : 'canceled');
      }
      await simulator.idle(timeoutMs).catch(() => logger.warn('simulated calls still live at shutdown'));
    },
  };
}
