/** Scratch PostgreSQL databases for the suites: empty, or copied from a migrated template. */
import pg from 'pg';
import { testDatabaseName } from './paths.ts';
import { postgresUrl } from './services.ts';

async function adminQuery(sqlText: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

/** A new database (a copy of `template` when given); `drop()` removes it. */
export async function createScratchDatabase(template?: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = testDatabaseName();
  await adminQuery(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** Empty (unmigrated), for the migration suites. */
export function createEmptyPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  return createScratchDatabase();
}
