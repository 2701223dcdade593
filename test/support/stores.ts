/**
 * Every integration suite runs on both drivers: the embedded default (PGlite, from a migrated
 * dump) and real PostgreSQL (a database copied from the migrated template). Each `open()` gives a
 * fresh, isolated, migrated database.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, inject } from 'vitest';
import { openStore, type Store } from '../../src/store/database.ts';
import { hasPostgres } from './services.ts';
import { createScratchDatabase } from './pg-databases.ts';

const templates = inject('ocqTemplates');

export interface StoreFactory {
  name: 'pglite' | 'postgres';
  available: boolean;
  /** A fresh migrated database; closing the store drops it. */
  open(): Promise<TestStore>;
}

export interface TestStore extends Store {
  /** PostgreSQL only: the URL of this test database, for child processes. */
  url?: string;
}

async function openPglite(): Promise<TestStore> {
  const dump = new Blob([fs.readFileSync(templates.pgliteTemplateFile)]);
  return openStore({ memory: true, loadDataDir: dump });
}

/** Creates an empty-of-data, migrated PostgreSQL database; returns its URL. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!templates.postgresTemplate) throw new Error('no PostgreSQL template: PostgreSQL was unreachable at setup');
  return createScratchDatabase(templates.postgresTemplate);
}

async function openPostgres(): Promise<TestStore> {
  const { url, drop } = await createPostgresDatabase();
  const store = await openStore({ databaseUrl: url });
  return {
    ...store,
    db: store.db,
    kind: store.kind,
    notifier: store.notifier,
    url,
    async close() {
      await store.close();
      await drop();
    },
  };
}

export const storeFactories: StoreFactory[] = [
  { name: 'pglite', available: true, open: openPglite },
  { name: 'postgres', available: hasPostgres, open: openPostgres },
];

/**
 * Opens a fresh store of `factory` before the suite's tests and closes it after; returns the
 * database accessor (valid inside tests). Call it at the top of a `describe.each(storeFactories)`.
 */
export function useStore(factory: StoreFactory): { db: () => TestStore['db']; store: () => TestStore } {
  let store: TestStore | undefined;
  beforeAll(async () => {
    if (factory.available) store = await factory.open();
  });
  afterAll(async () => {
    await store?.close();
  });
  const current = (): TestStore => {
    if (!store) throw new Error(`the ${factory.name} store is not open`);
    return store;
  };
  return { db: () => current().db, store: current };
}
