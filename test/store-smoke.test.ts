import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { storeFactories } from './support/stores.ts';

describe.each(storeFactories)('store on $name', (factory) => {
  it.skipIf(!factory.available)('returns the same JS types on both drivers', async () => {
    const store = await factory.open();
    try {
      const r = await sql<{ a: number; b: Date; c: unknown; d: number }>`select 5::int8 as a, now() as b, '{"x":1}'::jsonb as c, 1.5::numeric as d`.execute(store.db);
      expect(r.rows[0]).toMatchObject({ a: 5, c: { x: 1 }, d: 1.5 });
      expect(r.rows[0]?.b).toBeInstanceOf(Date);
    } finally {
      await store.close();
    }
  });
});
