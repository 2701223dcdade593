/**
 * Hot statements are prepared once per PostgreSQL connection (store/drivers/hot-statements.ts).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preparedNameFor } from '../src/store/drivers/hot-statements.ts';
import { storeFactories, type TestStore } from './support/stores.ts';

describe('preparedNameFor', () => {
  it('names a text only once it is hot, always with the same name', () => {
    const text = `SELECT ${Math.random()} AS unique_text`;
    const names = Array.from({ length: 25 }, () => preparedNameFor(text));
    expect(names.slice(0, 19)).toEqual(Array.from({ length: 19 }, () => undefined));
    expect(names[19]).toMatch(/^ocq_[0-9a-f]{40}$/);
    expect(new Set(names.slice(19))).toEqual(new Set([names[19]]));
    expect(preparedNameFor(`${text} `)).toBeUndefined(); // another text
  });
});

const postgres = storeFactories.find((f) => f.name === 'postgres')!;

describe.runIf(postgres.available)('hot statements on postgres', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await postgres.open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('sends a repeated statement as a named one, with correct results every time', async () => {
    const marker = `hot_${Date.now()}`;
    const query = (n: number) => sql<{ n: number; marker: string }>`SELECT ${n}::int AS n, ${marker}::text AS marker`.execute(store.db);
    for (let i = 0; i < 40; i++) expect((await query(i)).rows).toEqual([{ n: i, marker }]);
    // Within a transaction (one connection), the hot text is a prepared statement of that session.
    const prepared = await store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 3; i++) await sql`SELECT ${i}::int AS n, ${marker}::text AS marker`.execute(trx);
      return sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE name LIKE 'ocq_%'`.execute(trx);
    });
    expect(prepared.rows.some((r) => r.statement.includes('AS marker'))).toBe(true);
  });
});
