/**
 * Once per `npm test`: build migrated templates, so each suite starts from a copy instead of
 * migrating a fresh database (a fresh PGlite costs ~2.5 s; a copy of a dump well under one).
 * The templates belong to this run alone and are dropped at its end; leftovers of interrupted
 * runs older than a day are swept.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openStore } from '../../src/store/database.ts';
import { migrate } from '../../src/store/migrate.ts';
import { hasPostgres, postgresUrl } from './services.ts';
import { testDatabaseAgeSeconds, testDatabaseName, TMP_DIR } from './paths.ts';

const LEFTOVER_AGE_SECONDS = 24 * 3600;

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  fs.mkdirSync(TMP_DIR, { recursive: true });
  const pgliteTemplateFile = path.join(TMP_DIR, `pglite-template-${process.pid}.tar.gz`);
  const store = await openStore({ memory: true });
  await migrate(store.db);
  fs.writeFileSync(pgliteTemplateFile, Buffer.from(await (await store.dump!()).arrayBuffer()));
  await store.close();

  let postgresTemplate: string | null = null;
  if (hasPostgres) {
    postgresTemplate = testDatabaseName();
    await withAdmin(async (admin) => {
      const all = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ocq_t_%'`);
      for (const { datname } of all.rows) {
        const age = testDatabaseAgeSeconds(datname);
        if (age !== null && age > LEFTOVER_AGE_SECONDS) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      }
      await admin.query(`CREATE DATABASE "${postgresTemplate}"`);
    });
    const url = new URL(postgresUrl);
    url.pathname = `/${postgresTemplate}`;
    const template = await openStore({ databaseUrl: url.toString(), poolSize: 1 });
    await migrate(template.db);
    await template.close();
  }
  project.provide('ocqTemplates', { postgresTemplate, pgliteTemplateFile });

  return async () => {
    fs.rmSync(pgliteTemplateFile, { force: true });
    if (postgresTemplate) {
      const name = postgresTemplate;
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    }
  };
}
