/**
 * The simulated carrier as a standalone HTTP server (tests, benchmarks, `ocq carrier-sim`).
 * The product's one-process demo mounts {@link carrierSimPlugin} on its own server instead.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { silentLogger, type Logger } from '../../logger.ts';
import { carrierSimPlugin } from './routes.ts';
import { CarrierSimulator, type CarrierSimOptions } from './simulator.ts';
import { newSid } from './twilio-shapes.ts';

/** A simulator with its own Fastify server: API at `/2010-04-01`, admin at `/sim`. */
export class CarrierSim extends CarrierSimulator {
  /** The Fastify server (usable with `app.inject` before `listen`). */
  readonly app: FastifyInstance;
  private address: string | undefined;

  constructor(options: CarrierSimOptions = {}) {
    super(options);
    this.app = Fastify({ logger: false });
    void this.app.register(carrierSimPlugin(this));
  }

  /** Starts listening; resolves with the base URL to give the adapter (`apiBaseUrl`). Port 0 picks a free one. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await this.app.listen({ port, host });
    const bound = this.app.server.address();
    const actualPort = typeof bound === 'object' && bound ? bound.port : port;
    this.address = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    return this.address;
  }

  /** The base URL (after {@link listen}). */
  get baseUrl(): string {
    if (!this.address) throw new Error('carrier-sim: not listening yet');
    return this.address;
  }

  /** Stops the calls, the callbacks and the server. */
  async close(): Promise<void> {
    this.shutdown();
    await this.app.close();
  }
}

/**
 * A simulated carrier, not yet listening.
 *
 * @example
 * const sim = createCarrierSim({ accounts: [{ accountSid, authToken }], script: { ringMs: [5, 10], talkMs: [0, 0] } });
 * const apiBaseUrl = await sim.listen();
 * // ... createTwilioProvider({ apiBaseUrl, logger }) ...
 * await sim.idle();
 * expect(sim.record.account(accountSid).highWater).toBeLessThanOrEqual(3);
 * await sim.close();
 */
export function createCarrierSim(options: CarrierSimOptions = {}): CarrierSim {
  return new CarrierSim(options);
}

/** Options of {@link runCarrierSim}. */
export interface RunCarrierSimOptions extends Omit<CarrierSimOptions, 'accounts'> {
  port: number;
  host?: string;
  /** The account to accept; default env `TWILIO_ACCOUNT_SID`, else a fresh random SID. */
  accountSid?: string;
  /** Its auth token; default env `TWILIO_AUTH_TOKEN`, else a fresh random token. */
  authToken?: string;
}

/**
 * Runs the simulator as a server for `ocq carrier-sim --port N`. Logs the URL and the account
 * to use; the caller closes the returned simulator on shutdown.
 */
export async function runCarrierSim(options: RunCarrierSimOptions): Promise<CarrierSim> {
  const { port, host = '127.0.0.1', accountSid: sid, authToken: token, ...rest } = options;
  const accountSid = sid ?? process.env.TWILIO_ACCOUNT_SID ?? newSid('AC');
  const authToken = token ?? process.env.TWILIO_AUTH_TOKEN ?? randomBytes(16).toString('hex');
  const logger: Logger = rest.logger ?? silentLogger;
  const sim = createCarrierSim({ ...rest, accounts: [{ accountSid, authToken }] });
  const url = await sim.listen(port, host);
  logger.info(
    { url, accountSid, apiBaseUrl: url, stats: `${url}/sim/stats` },
    `carrier simulator listening: set TWILIO_API_BASE_URL=${url} TWILIO_ACCOUNT_SID=${accountSid}`,
  );
  return sim;
}
