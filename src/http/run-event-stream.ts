/**
 * One Server-Sent Events stream of one run. Notifications carry only ids, so on each one the run
 * is re-read through the business-scoped store and the whole serialized run is pushed:
 *
 *   event: status     first event (the snapshot), and whenever status or a cancel/stop flag changed
 *   event: progress   anything else moved (counters, lease)
 *   event: end        after the final `status` of an ended run; then the server closes the stream
 *   : heartbeat       a comment every 15 s, which also re-reads the run (notifications are best-effort)
 *
 * Re-reads are serialised and coalesced: a burst of events costs one read, and the client sees
 * each distinct state once, in order. The route shares each read among the run's streams
 * (shared-run-reads.ts).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { isTerminalRun } from '../domain/run-state.ts';
import type { Run } from '../store/schema.ts';
import { serializeRun } from './serialize.ts';

export const SSE_HEARTBEAT_MS = 15_000;
/** Reconnect delay an EventSource should use after a dropped connection. */
const RETRY_MS = 3_000;

/** Streams open in this process (for tests and shutdown). */
const openStreams = new Set<RunEventStream>();
export function openRunEventStreamCount(): number {
  return openStreams.size;
}

export interface RunEventStreamOptions {
  out: Writable;
  /** Re-reads the run, scoped to the caller's business. */
  readRun: () => Promise<Run | undefined>;
  heartbeatMs?: number;
  /** Called once when the stream ends, for whichever reason. */
  onClose?: () => void;
}

/** What makes an update a `status` event rather than `progress`. */
function stateOf(run: Run): string {
  return `${run.status}|${run.cancel_requested}|${run.stop_requested}`;
}

export class RunEventStream {
  private pending = false;
  private draining = false;
  private closed = false;
  private lastSent: string | undefined;
  private lastState: string | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  /** Aborts a wait for 'drain' when the stream closes. */
  private readonly closing = new AbortController();

  constructor(private readonly options: RunEventStreamOptions) {
    openStreams.add(this);
    options.out.once('close', () => this.close());
    options.out.once('error', () => this.close());
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs ?? SSE_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Sends the snapshot (and ends at once if the run is already over). */
  start(): void {
    this.write(`retry: ${RETRY_MS}\n\n`);
    this.refresh();
  }

  /** Something may have changed (a run event arrived): re-read and push, coalesced with any read in flight. */
  refresh(): void {
    if (this.closed) return;
    this.pending = true;
    if (!this.draining) void this.drain();
  }

  private beat(): void {
    this.write(': heartbeat\n\n');
    this.refresh();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.pending && !this.closed) {
        this.pending = false;
        if (this.options.out.writableNeedDrain) await once(this.options.out, 'drain', { signal: this.closing.signal });
        const run = await this.options.readRun();
        if (!run) return this.close(); // cannot happen (runs are never deleted); never stream nothing forever
        this.sendRun(run);
        if (isTerminalRun(run.status)) {
          this.write(`event: end\ndata: ${JSON.stringify({ id: run.id, status: run.status })}\n\n`);
          return this.close();
        }
      }
    } catch {
      // A failed read (or a closed socket) ends the stream; a client reconnects and gets a fresh snapshot.
      this.close();
    } finally {
      this.draining = false;
    }
  }

  private sendRun(run: Run): void {
    const data = JSON.stringify(serializeRun(run));
    if (data === this.lastSent) return;
    const state = stateOf(run);
    const event = state === this.lastState ? 'progress' : 'status';
    this.lastSent = data;
    this.lastState = state;
    this.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  private write(chunk: string): void {
    const out = this.options.out;
    if (!this.closed && !out.destroyed && !out.writableEnded) out.write(chunk);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.closing.abort();
    openStreams.delete(this);
    if (!this.options.out.writableEnded) this.options.out.end();
    this.options.onClose?.();
  }
}
