/**
 * Once per `npm test`: build migrated templates, so each suite starts from a copy instead of
 * migrating a fresh database (a fresh PGlite costs ~2.5 s; a copy of a dump well under one).
 */
import fs from 'node:fs';
import { sql } from 'kysely';
import pg from 'pg';
import { openStore } from '../../src/store/database.ts';
import { migrate } from '../../src/store/migrate.ts';
import { hasPostgres, postgresUrl } from './services.ts';
import { PG_TEMPLATE, PGLITE_TEMPLATE_FILE, TMP_DIR } from './paths.ts';

export default async function setup(): Promise<void> {
  fs.mkdirSync(TMP_DIR, { recursive: true });
  const store = await openStore({ memory: true });
  await migrate(store.db);
  const dump = await store.dump!();
  fs.writeFileSync(PGLITE_TEMPLATE_FILE, Buffer.from(await dump.arrayBuffer()));
  await store.close();

  if (hasPostgres) {
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    // Leftovers of an interrupted earlier run.
    const old = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ocq_t_%' OR datname = $1`, [PG_TEMPLATE]);
    for (const row of old.rows) await admin.query(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${PG_TEMPLATE}"`);
    await admin.end();
    const url = new URL(postgresUrl);
    url.pathname = `/${PG_TEMPLATE}`;
    const template = await openStore({ databaseUrl: url.toString(), poolSize: 1 });
    await migrate(template.db);
    await sql`SELECT 1`.execute(template.db);
    await template.close();
  }
}

