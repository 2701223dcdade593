import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TMP_DIR = path.join(ROOT, '.tmp', 'test');

/**
 * Test databases are named `ocq_t_<created, base-36 seconds>_<random>`, so two `npm test` runs
 * on one server never touch each other's, and leftovers of an interrupted run can be told by age.
 */
export function testDatabaseName(): string {
  return `ocq_t_${Math.floor(Date.now() / 1000).toString(36)}_${randomBytes(5).toString('hex')}`;
}

/** Seconds since a test database of that name was created, or null for other names. */
export function testDatabaseAgeSeconds(name: string): number | null {
  const match = /^ocq_t_([0-9a-z]+)_[0-9a-f]+$/.exec(name);
  return match ? Date.now() / 1000 - parseInt(match[1]!, 36) : null;
}

/** The per-`npm test` templates, handed from the global setup to the suites with provide/inject. */
export interface TestTemplates {
  /** Migrated PostgreSQL template database, or null when PostgreSQL is unreachable. */
  postgresTemplate: string | null;
  /** Gzipped dump of a migrated PGlite database. */
  pgliteTemplateFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    ocqTemplates: TestTemplates;
  }
}
