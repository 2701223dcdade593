import { v7 } from 'uuid';

/** A new id: UUIDv7, time-ordered (good index locality) and not enumerable. */
export function newId(): string {
  return v7();
}
