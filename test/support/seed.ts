/**
 * Test data builders and assertions shared by the store suites. Every builder writes through the
 * real database; ids come from the product's own {@link newId}.
 */
import { expect } from 'vitest';
import type { Kysely } from 'kysely';
import { newId } from '../../src/store/ids.ts';
import type { Database, Role, Run } from '../../src/store/schema.ts';
import type { JobStatus } from '../../src/domain/job-state.ts';

let phoneSeq = 0;
/** A valid, distinct E.164 number. */
export function phone(): string {
  phoneSeq += 1;
  return `+9725${String(10_000_000 + phoneSeq).slice(-8)}`;
}

export async function addBusiness(db: Kysely<Database>, name = 'Biz'): Promise<string> {
  const id = newId();
  await db.insertInto('businesses').values({ id, name, caller_id: '+97235550000' }).execute();
  return id;
}

export async function addUser(db: Kysely<Database>, businessId: string, role: Role = 'owner'): Promise<string> {
  const id = newId();
  await db.insertInto('users').values({ id, business_id: businessId, email: `${id}@example.com`, name: `User ${role}`, role }).execute();
  return id;
}

export async function addLeads(db: Kysely<Database>, businessId: string, n: number): Promise<string[]> {
  const rows = Array.from({ length: n }, (_, i) => {
    const id = newId();
    return {
      id,
      business_id: businessId,
      phone_e164: phone(),
      name: `Lead ${i}`,
      external_id: `ext-${id}`,
      attributes: JSON.stringify({ i, tag: i % 2 === 0 ? 'even' : 'odd' }),
    };
  });
  await db.insertInto('leads').values(rows).execute();
  return rows.map((r) => r.id);
}

/** The counter columns of a run, as `{ status: n }` with the zero counts dropped. */
export function countersOf(run: Run): Partial<Record<JobStatus, number>> {
  const all: Record<JobStatus, number> = {
    queued: run.queued_count,
    dialing: run.dialing_count,
    ringing: run.ringing_count,
    in_call: run.in_call_count,
    completed: run.completed_count,
    no_answer: run.no_answer_count,
    busy: run.busy_count,
    failed: run.failed_count,
    cancelled: run.cancelled_count,
    unknown: run.unknown_count,
  };
  return Object.fromEntries(Object.entries(all).filter(([, n]) => n !== 0));
}

/** Awaits `promise` and asserts it failed with the PostgreSQL SQLSTATE `code` (and constraint). */
export async function expectDbError(promise: Promise<unknown>, code: string, constraint?: string | RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, 'the statement should have been rejected').toBeInstanceOf(Error);
  const error = caught as Error & { code?: string; constraint?: string };
  expect({ code: error.code, message: error.message }).toMatchObject({ code });
  if (constraint !== undefined) expect(error.constraint).toMatch(constraint);
  return error;
}

/** Version 7 and RFC 4122 variant. */
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds a UUIDv7 carries in its first 48 bits. */
export function uuidV7Millis(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}
