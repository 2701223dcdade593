/**
 * What every route may rely on: the dependencies the app is built with, and the authenticated
 * caller. The tenant is always the token's business: no body or query ever chooses it.
 */
import type { Config } from '../config.ts';
import type { RunControl } from '../engine/run-control.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { CallSlots } from '../slots/port.ts';
import type { Store } from '../store/database.ts';
import type { Role, Run } from '../store/schema.ts';

export interface AuthContext {
  userId: string;
  businessId: string;
  role: Role;
  tokenId: string;
}

export interface AppDeps {
  config: Config;
  store: Store;
  logger: Logger;
  runControl: RunControl;
  /** For /readyz (Redis reachability) and live-call gauges; absent in pure API tests. */
  slots?: CallSlots;
  /** Shared with the engine; when absent, /metrics serves an app-local registry (runs by state only). */
  metrics?: Metrics;
}

/** A run read by the auth look-up itself (see `authReadsRun`), scoped to the token's business. */
export interface AuthRunRead {
  id: string;
  /** Undefined: no run with this id in the caller's business. */
  run: Run | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on tenant routes; routes read the business from here only. */
    auth?: AuthContext;
    /** Set by the auth hook on routes with `config.authReadsRun`; `loadRun` uses it instead of a second query. */
    authRunRead?: AuthRunRead;
  }
  interface FastifyContextConfig {
    /**
     * The name of the route's run-id param: the token look-up reads that run too, scoped to the
     * token's business, in the same statement (one round trip for a polled run).
     */
    authReadsRun?: string;
  }
}
