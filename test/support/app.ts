/**
 * A real app on a real database for HTTP suites: two businesses (A and B), each with one user and
 * token per role, seeded through the product's own admin service. Log lines are captured, so a
 * suite can assert on security warnings.
 *
 * @example
 * const t = await createTestApp(factory);
 * const res = await t.app.inject({ method: 'GET', url: '/api/leads', headers: t.seed.A.viewer.headers });
 * await t.close();
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { createBusiness, createToken, createUser } from '../../src/admin/service.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import type { RunControl } from '../../src/engine/run-control.ts';
import { buildApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/context.ts';
import type { Metrics } from '../../src/metrics.ts';
import type { CallSlots } from '../../src/slots/port.ts';
import type { RoleName } from '../../src/domain/roles.ts';
import type { StoreFactory, TestStore } from './stores.ts';

/** The system admin token every test app accepts on /api/admin/*. */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface SeededUser {
  userId: string;
  tokenId: string;
  token: string;
  /** `{ authorization: 'Bearer <token>' }` */
  headers: { authorization: string };
}

export interface SeededBusiness {
  businessId: string;
  owner: SeededUser;
  admin: SeededUser;
  agent: SeededUser;
  viewer: SeededUser;
}

export type LogLine = Record<string, unknown> & { level: number; msg?: string };

export interface TestApp {
  app: FastifyInstance;
  store: TestStore;
  deps: AppDeps;
  seed: { A: SeededBusiness; B: SeededBusiness };
  /** `{ authorization: 'Bearer <admin token>' }` */
  adminHeaders: { authorization: string };
  /** Every log line at or above the chosen level (default warn), parsed. */
  logs: LogLine[];
  /** The `security: 'foreign_access'` warn lines logged so far. */
  securityLines(): LogLine[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** The lead's RunControl; by default a stub that throws (cancel/stop routes then answer 500). */
  runControl?: RunControl;
  slots?: CallSlots;
  metrics?: Metrics;
  /** Overrides on a config built from defaults (adminToken set, rate limit effectively off). */
  config?: Partial<Config>;
  extraPlugins?: FastifyPluginAsync[];
  /** Captured log level; default 'warn'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** A RunControl that fails loudly: tests that need cancel/stop inject the real one. */
export const unavailableRunControl: RunControl = {
  cancel: () => Promise.reject(new Error('RunControl not provided to createTestApp (pass opts.runControl)')),
  stop: () => Promise.reject(new Error('RunControl not provided to createTestApp (pass opts.runControl)')),
};

const ROLE_NAMES: RoleName[] = ['owner', 'admin', 'agent', 'viewer'];

async function seedBusiness(store: TestStore, label: string): Promise<SeededBusiness> {
  const business = await createBusiness(store.db, { name: `Business ${label}`, caller_id: '+97235550000' });
  const users = {} as Record<RoleName, SeededUser>;
  for (const role of ROLE_NAMES) {
    const user = await createUser(store.db, { businessId: business.id, email: `${role}@${label.toLowerCase()}.example.com`, name: `${label} ${role}`, role });
    const { token, record } = await createToken(store.db, { userId: user.id, businessId: business.id, name: `${label} ${role} token` });
    users[role] = { userId: user.id, tokenId: record.id, token, headers: { authorization: `Bearer ${token}` } };
  }
  return { businessId: business.id, ...users };
}

export async function createTestApp(factory: StoreFactory, opts: TestAppOptions = {}): Promise<TestApp> {
  const store = await factory.open();
  const logs: LogLine[] = [];
  const logger = pino({ level: opts.logLevel ?? 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const config: Config = {
    ...loadConfig({ OCQ_ADMIN_TOKEN: TEST_ADMIN_TOKEN, OCQ_RATE_LIMIT_PER_MINUTE: '1000000' }),
    ...opts.config,
  };
  const deps: AppDeps = {
    config,
    store,
    logger,
    runControl: opts.runControl ?? unavailableRunControl,
    ...(opts.slots ? { slots: opts.slots } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  };
  try {
    const seed = { A: await seedBusiness(store, 'A'), B: await seedBusiness(store, 'B') };
    const app = await buildApp(deps, opts.extraPlugins ? { extraPlugins: opts.extraPlugins } : {});
    return {
      app,
      store,
      deps,
      seed,
      adminHeaders: { authorization: `Bearer ${config.adminToken ?? TEST_ADMIN_TOKEN}` },
      logs,
      securityLines: () => logs.filter((line) => line.security === 'foreign_access'),
      async close() {
        await app.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
