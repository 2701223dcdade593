/**
 * Group commit for the engine's hot single-row statements. A worker drives hundreds of runs and a
 * server takes hundreds of callbacks a second; sent one by one, each small statement pays its own
 * round trip, parse, counter-trigger invocation and commit (with its WAL flush). A batcher sends
 * whatever arrived while the previous statement was in flight as ONE statement: an idle system
 * pays one round trip per request, as before, and a busy one pays one per batch.
 *
 * Each request still gets its own answer, and each row of the batch is guarded by the same
 * conditions as the single statement was, so batching changes cost, never meaning. The one
 * shared fate: if the statement fails (connection lost), every request of the batch fails, as a
 * single statement would have.
 */
export interface BatcherOptions<In> {
  /** Most requests per statement (bounds parameters and lock sets). */
  maxBatch?: number;
  /**
   * Requests with the same key never share a statement: the later waits for the next one. Used
   * where two rows of one statement would meet (two callbacks for one attempt, two dials for one
   * business's last slot).
   */
  keyOf?: (item: In) => string;
  /** Retry the whole batch on these errors (a deadlock with another process's batch). */
  retryable?: (error: unknown) => boolean;
  /**
   * Statements in flight at once (default 1). More lets a request that arrives while one is in
   * flight go at once instead of queueing behind its round trip (and commit), at the cost of a
   * connection each. A request whose key is in flight still waits for it, so same-key requests
   * keep their order.
   */
  maxInFlight?: number;
}

interface Pending<In, Out> {
  item: In;
  resolve: (out: Out) => void;
  reject: (error: unknown) => void;
}

const RETRIES = 3;

export class Batcher<In, Out> {
  private queue: Array<Pending<In, Out>> = [];
  private inFlight = 0;
  /** Keys of the requests in flight (only with keyOf). */
  private readonly keysInFlight = new Set<string>();
  private scheduled = false;

  /** @param execute runs one statement for `items`; returns one answer per item, in order. */
  constructor(
    private readonly execute: (items: readonly In[]) => Promise<Out[]>,
    private readonly options: BatcherOptions<In> = {},
  ) {}

  run(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Waits one turn of the event loop, so requests made in the same tick share the statement. */
  private schedule(): void {
    if (this.inFlight >= (this.options.maxInFlight ?? 1) || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private take(): Array<Pending<In, Out>> {
    const max = this.options.maxBatch ?? 500;
    const keyOf = this.options.keyOf;
    if (!keyOf) return this.queue.splice(0, max);
    const batch: Array<Pending<In, Out>> = [];
    const rest: Array<Pending<In, Out>> = [];
    const keys = new Set<string>();
    for (const pending of this.queue) {
      const key = keyOf(pending.item);
      if (batch.length < max && !keys.has(key) && !this.keysInFlight.has(key)) {
        keys.add(key);
        batch.push(pending);
      } else {
        rest.push(pending);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= (this.options.maxInFlight ?? 1) || this.queue.length === 0) return;
    const batch = this.take();
    if (batch.length === 0) return; // every queued key is in flight: its completion flushes again
    const keyOf = this.options.keyOf;
    const keys = keyOf ? batch.map((p) => keyOf(p.item)) : [];
    for (const key of keys) this.keysInFlight.add(key);
    this.inFlight++;
    try {
      const out = await this.executeWithRetry(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(out[i] as Out));
    } catch (error) {
      for (const p of batch) p.reject(error);
    } finally {
      this.inFlight--;
      for (const key of keys) this.keysInFlight.delete(key);
      // What queued meanwhile has waited a round trip already: send it now.
      if (this.queue.length > 0) void this.flush();
    }
  }

  private async executeWithRetry(items: readonly In[]): Promise<Out[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.execute(items);
        if (out.length !== items.length) throw new Error(`batch statement answered ${out.length} of ${items.length} requests`);
        return out;
      } catch (error) {
        if (attempt >= RETRIES || !this.options.retryable?.(error)) throw error;
      }
    }
  }
}

/** PostgreSQL's deadlock_detected: two processes' batches locked rows in crossing orders; the loser rolled back. */
export function isDeadlock(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '40P01';
}

/**
 * One set of batchers per database handle, made on first use: the engine and the webhook of one
 * process share them without any wiring.
 */
export function batchersFor<T extends object>(owner: object, cache: WeakMap<object, T>, make: () => T): T {
  let found = cache.get(owner);
  if (!found) cache.set(owner, (found = make()));
  return found;
}
