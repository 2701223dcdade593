/**
 * The whole database as comparable data, for "bad input changes nothing" assertions. Token
 * `last_used_at` is left out: authenticating a request may legitimately touch it.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.ts';

export const TENANT_TABLES = ['businesses', 'users', 'api_tokens', 'leads', 'runs', 'jobs', 'audit_events'] as const;
export const ALL_TABLES = [...TENANT_TABLES, 'security_events'] as const;
type Table = (typeof ALL_TABLES)[number];

const IGNORED_COLUMNS: Partial<Record<Table, string[]>> = { api_tokens: ['last_used_at'] };

async function rowsOf(db: Kysely<Database>, table: Table, businessId?: string): Promise<unknown[]> {
  const where =
    businessId === undefined
      ? sql``
      : table === 'businesses'
        ? sql`WHERE id = ${businessId}`
        : sql`WHERE business_id = ${businessId}`;
  const result = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)} ${where} ORDER BY id`.execute(db);
  const ignored = IGNORED_COLUMNS[table] ?? [];
  return result.rows.map((row) => Object.fromEntries(Object.entries(row).filter(([column]) => !ignored.includes(column))));
}

/** Every row of every tenant table (optionally of one business only). */
export async function snapshotTenantTables(db: Kysely<Database>, businessId?: string): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {};
  for (const table of TENANT_TABLES) snapshot[table] = await rowsOf(db, table, businessId);
  return snapshot;
}

/** Every row of every table, the security log included. */
export async function snapshotAllTables(db: Kysely<Database>): Promise<Record<string, unknown[]>> {
  const snapshot: Record<string, unknown[]> = {};
  for (const table of ALL_TABLES) snapshot[table] = await rowsOf(db, table);
  return snapshot;
}

export async function countRows(db: Kysely<Database>, table: Table): Promise<number> {
  const result = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.table(table)}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}
