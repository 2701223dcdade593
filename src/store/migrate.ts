/**
 * Migrations: numbered SQL files in ./migrations (NNN_name.sql), applied in order, each in its
 * own transaction, recorded in `ocq_migrations`. Every transaction first takes one advisory lock,
 * so two processes migrating at once serialise, and the second finds the work done (a no-op).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Arbitrary, fixed: "ocq-migrate". */
export const MIGRATION_LOCK_KEY = 7_203_114_501;

export interface Migration {
  name: string;
  sql: string;
}

export function listMigrations(): Migration[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ name: file.replace(/\.sql$/, ''), sql: fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8') }));
}

async function lockAndEnsureTable(trx: Kysely<Database>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(trx);
  await sql`CREATE TABLE IF NOT EXISTS ocq_migrations (
    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`.execute(trx);
}

/**
 * Applies every migration not yet applied, up to and including `upTo` when given (tests use it
 * to build a database at an earlier version). Returns the names it applied.
 */
export async function migrate(db: Kysely<Database>, options: { upTo?: string } = {}): Promise<string[]> {
  const migrations = listMigrations();
  if (options.upTo !== undefined && !migrations.some((m) => m.name === options.upTo)) {
    throw new Error(`no migration named ${options.upTo}`);
  }
  await refuseUnknownMigrations(db, migrations);
  const applied: string[] = [];
  for (const migration of migrations) {
    if (options.upTo !== undefined && migration.name > options.upTo) break;
    const ran = await db.transaction().execute(async (trx) => {
      await lockAndEnsureTable(trx);
      const done = await trx.selectFrom('ocq_migrations').select('name').where('name', '=', migration.name).executeTakeFirst();
      if (done) return false;
      await sql.raw(migration.sql).execute(trx);
      await trx.insertInto('ocq_migrations').values({ name: migration.name }).execute();
      return true;
    });
    if (ran) applied.push(migration.name);
  }
  return applied;
}

/** A database migrated by a newer version of the product must not be run by this one. */
async function refuseUnknownMigrations(db: Kysely<Database>, known: readonly Migration[]): Promise<void> {
  const exists = await sql<{ t: string | null }>`SELECT to_regclass('ocq_migrations')::text AS t`.execute(db);
  if (!exists.rows[0]?.t) return;
  const applied = await db.selectFrom('ocq_migrations').select('name').execute();
  const names = new Set(known.map((m) => m.name));
  const unknown = applied.map((row) => row.name).filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new Error(`the database has migrations this version does not know (${unknown.join(', ')}): run a newer version of ocq`);
  }
}
