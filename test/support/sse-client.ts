/**
 * A minimal Server-Sent Events client over node:http, for tests against a listening app: it
 * parses the stream as it arrives and hands out events in order, awaiting the next one.
 */
import http from 'node:http';

export interface SseEvent {
  event: string;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The next event (comments excluded), waiting for it if needed; rejects when the stream ends first. */
  next(): Promise<SseEvent>;
  /** Comment lines seen so far (`: heartbeat`). */
  comments: string[];
  /** Resolves when the server has closed the stream. */
  ended: Promise<void>;
  /** The body, for a non-200 answer. */
  text(): Promise<string>;
  close(): void;
}

export function openSse(baseUrl: string, path: string, token: string): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (response) => {
      response.setEncoding('utf8');
      const queue: SseEvent[] = [];
      const waiters: Array<{ resolve: (e: SseEvent) => void; reject: (e: Error) => void }> = [];
      const comments: string[] = [];
      let buffer = '';
      let raw = '';
      let done = false;
      let markEnded: () => void = () => undefined;
      const ended = new Promise<void>((r) => (markEnded = r));

      const deliver = (event: SseEvent): void => {
        const waiter = waiters.shift();
        if (waiter) waiter.resolve(event);
        else queue.push(event);
      };
      const finish = (): void => {
        if (done) return;
        done = true;
        for (const waiter of waiters.splice(0)) waiter.reject(new Error('stream ended'));
        markEnded();
      };
      response.on('data', (chunk: string) => {
        raw += chunk;
        buffer += chunk;
        let split: number;
        while ((split = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          let event = 'message';
          const data: string[] = [];
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) {
              hasData = true;
              data.push(line.slice(5).trimStart());
            }
          }
          if (hasData) deliver({ event, data: data.join('\n') });
        }
      });
      response.on('end', finish);
      response.on('close', finish);
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        comments,
        ended,
        next: () =>
          new Promise<SseEvent>((res, rej) => {
            const queued = queue.shift();
            if (queued) res(queued);
            else if (done) rej(new Error('stream ended'));
            else waiters.push({ resolve: res, reject: rej });
          }),
        text: async () => {
          await ended;
          return raw;
        },
        close: () => {
          request.destroy();
        },
      });
    });
    request.on('error', reject);
  });
}
