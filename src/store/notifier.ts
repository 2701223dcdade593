/**
 * Push notifications between processes: PostgreSQL LISTEN/NOTIFY on both drivers. Used to wake
 * workers for new runs, to push cancel/stop to the run's worker at once, and to feed SSE.
 * Delivery is best-effort (a dropped connection loses what was sent meanwhile), so every consumer
 * also has a slow safety poll; `onReconnect` lets it re-scan after a gap.
 */
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from '../logger.ts';

export type NotificationHandler = (payload: string) => void;

export interface Notifier {
  notify(channel: string, payload: string): Promise<void>;
  /** Subscribe; returns the unsubscribe function. */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>>;
  /** Called after the listening connection was lost and re-established: events may have been missed. */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}

class HandlerRegistry {
  readonly byChannel = new Map<string, Set<NotificationHandler>>();
  readonly reconnectHandlers: Array<() => void> = [];

  add(channel: string, handler: NotificationHandler): boolean {
    let set = this.byChannel.get(channel);
    const isNew = set === undefined;
    if (!set) this.byChannel.set(channel, (set = new Set()));
    set.add(handler);
    return isNew;
  }

  remove(channel: string, handler: NotificationHandler): boolean {
    const set = this.byChannel.get(channel);
    set?.delete(handler);
    if (set && set.size === 0) {
      this.byChannel.delete(channel);
      return true;
    }
    return false;
  }

  dispatch(channel: string, payload: string): void {
    for (const handler of this.byChannel.get(channel) ?? []) handler(payload);
  }
}

function quoteIdent(channel: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  return `"${channel}"`;
}

/** LISTEN on one dedicated connection, re-established with backoff when it drops. */
export class PgNotifier implements Notifier {
  private readonly handlers = new HandlerRegistry();
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly connectionString: string,
    private readonly logger: Logger,
  ) {}

  async notify(channel: string, payload: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    const first = this.handlers.add(channel, handler);
    const client = await this.connection();
    if (first) await client.query(`LISTEN ${quoteIdent(channel)}`);
    return async () => {
      if (this.handlers.remove(channel, handler) && this.client && !this.closed) {
        await this.client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
      }
    };
  }

  onReconnect(handler: () => void): void {
    this.handlers.reconnectHandlers.push(handler);
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (msg) => this.handlers.dispatch(msg.channel, msg.payload ?? ''));
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'notification connection lost');
      this.client = undefined;
      client.end().catch(() => undefined);
      if (!this.closed) void this.reconnect();
    });
    await client.connect();
    for (const channel of this.handlers.byChannel.keys()) await client.query(`LISTEN ${quoteIdent(channel)}`);
    this.client = client;
    return client;
  }

  private async reconnect(): Promise<void> {
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      try {
        await this.connection();
        this.logger.info('notification connection re-established');
        for (const handler of this.handlers.reconnectHandlers) handler();
        return;
      } catch (error) {
        this.logger.warn({ err: error, retryInMs: delay * 2 }, 'notification reconnect failed');
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

/** PGlite runs in this process: LISTEN/NOTIFY works on its single connection. */
export class PGliteNotifier implements Notifier {
  private readonly reconnectHandlers: Array<() => void> = [];

  constructor(private readonly pglite: PGlite) {}

  async notify(channel: string, payload: string): Promise<void> {
    await this.pglite.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    return this.pglite.listen(channel, handler);
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler); // never called: PGlite cannot disconnect
  }

  async close(): Promise<void> {}
}
