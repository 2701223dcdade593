/**
 * Re-reads of a run shared by the live streams watching it. A run event fans out to every stream
 * of the run (run-event-hub.ts), and the reads they ask for in that same turn of the event loop
 * become one query: a hundred viewers of a run cost one read per change, not a hundred.
 *
 * A read is never shared with a request made after it started: that request may follow a newer
 * change, so it waits for a read of its own. No stream is handed a state older than the event
 * that woke it. Streams of one run are all of its business (the route checked ownership), and
 * the read stays scoped by that business.
 */
import type { Kysely } from 'kysely';
import { getRun } from '../store/runs.ts';
import type { Database, Run } from '../store/schema.ts';

export class SharedRunReads {
  /** Reads asked for but not started yet, by business and run. */
  private readonly forming = new Map<string, Promise<Run | undefined>>();

  constructor(private readonly db: Kysely<Database>) {}

  read(businessId: string, runId: string): Promise<Run | undefined> {
    const key = `${businessId}/${runId}`;
    let read = this.forming.get(key);
    if (!read) {
      read = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.forming.delete(key); // from here on, a request waits for a later read
        return getRun(this.db, businessId, runId);
      });
      this.forming.set(key, read);
    }
    return read;
  }
}
