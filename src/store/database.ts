/**
 * Opens the store on one of its two drivers: PostgreSQL (`pg`, production, many processes) or
 * PGlite (embedded, one process, persisted in a folder). One SQL dialect, one set of migrations
 * and queries serve both; both return int8 and numeric as numbers, timestamptz as Date and jsonb
 * as objects.
 */
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { silentLogger, type Logger } from '../logger.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { PGliteDialect } from './drivers/pglite-dialect.ts';
import { PGliteNotifier, PgNotifier, type Notifier } from './notifier.ts';
import { prepareHotStatements } from './drivers/hot-statements.ts';
import type { Database } from './schema.ts';

export type DriverKind = 'postgres' | 'pglite';

export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: DriverKind;
  readonly notifier: Notifier;
  /** PGlite only: the whole database as a gzipped tarball (test templates, backups). */
  dump?(): Promise<Blob>;
  close(): Promise<void>;
}

export type OpenStoreOptions =
  | { databaseUrl: string; poolSize?: number; logger?: Logger }
  | { dataDir: string; logger?: Logger }
  /** An in-memory PGlite (tests, benchmarks); `loadDataDir` starts it from a dump. */
  | { memory: true; loadDataDir?: Blob | File; logger?: Logger };

const INT8 = 20;
const NUMERIC = 1700;
const INT8_ARRAY = 1016;
const toNumber = (value: string): number => Number(value);

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const logger = options.logger ?? silentLogger;
  if ('databaseUrl' in options) return openPostgres(options.databaseUrl, options.poolSize ?? 10, logger);
  // PGlite is loaded only when used: a PostgreSQL worker does not carry its ~80 MB.
  const { PGlite } = await import('@electric-sql/pglite');
  if ('dataDir' in options) {
    const unlock = lockDataDir(options.dataDir);
    try {
      const pglite = await PGlite.create(path.join(options.dataDir, 'pglite'), pgliteOptions());
      return pgliteStore(pglite, unlock);
    } catch (error) {
      unlock();
      throw error;
    }
  }
  const pglite = await PGlite.create({ ...pgliteOptions(), ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}) });
  return pgliteStore(pglite, () => undefined);
}

function pgliteOptions() {
  return { parsers: { [INT8]: toNumber, [NUMERIC]: toNumber } };
}

function pgliteStore(pglite: PGlite, unlock: () => void): Store {
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  const notifier = new PGliteNotifier(pglite);
  return {
    db,
    kind: 'pglite',
    notifier,
    dump: () => pglite.dumpDataDir('gzip'),
    async close() {
      try {
        await notifier.close();
        await db.destroy();
        await pglite.close();
      } finally {
        unlock();
      }
    },
  };
}

function openPostgres(connectionString: string, poolSize: number, logger: Logger): Store {
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    // pg's default closes a connection idle for 10 s; the next burst then waits for a new
    // backend, cold caches and statements not yet prepared. Measured (bench/http-api.ts, GET of a
    // run at 500 req/s): p99 3.1–10.3 ms evenly paced and 9.0–13.2 ms in autocannon's bursts with
    // the default; 2.7–3.3 and 7.9–9.8 ms with connections kept 5 minutes.
    idleTimeoutMillis: 300_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8 || oid === NUMERIC
          ? toNumber
          : oid === INT8_ARRAY
            ? (value: string) => (pg.types.getTypeParser(INT8_ARRAY as Parameters<typeof pg.types.getTypeParser>[0], 'text')(value) as string[]).map(Number)
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // A dropped connection must not crash the process. pg emits 'error' on a client whose socket
  // closes; the pool listens only while the client is idle, so checked-out clients (a Kysely
  // transaction between statements) get their own listener. The query in flight rejects anyway,
  // and the next one reconnects.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle PostgreSQL connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ err: error }, 'PostgreSQL connection lost'));
    prepareHotStatements(client);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const notifier = new PgNotifier(pool, connectionString, logger);
  return {
    db,
    kind: 'postgres',
    notifier,
    async close() {
      await notifier.close();
      await db.destroy();
    },
  };
}
