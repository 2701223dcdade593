/** `GET /api/outbound/runs/:id/events` over a real port, with run events pushed through the real notifier. */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRunEventStreamCount, RunEventStream } from '../src/http/run-event-stream.ts';
import type { RunJson } from '../src/http/schemas.ts';
import { SharedRunReads } from '../src/http/shared-run-reads.ts';
import { newId } from '../src/store/ids.ts';
import { getRun } from '../src/store/runs.ts';
import type { TestApp } from './support/app.ts';
import { createRunTestApp, createRunViaApi, dialJobs, endJobs, finalizeRun, leadsOf, publish, startRun } from './support/run-fixtures.ts';
import { openSse, type SseConnection } from './support/sse-client.ts';
import { storeFactories } from './support/stores.ts';

const eventsPath = (runId: string) => `/api/outbound/runs/${runId}/events`;

async function nextRun(connection: SseConnection, event: string): Promise<RunJson> {
  const received = await connection.next();
  expect(received.event).toBe(event);
  return JSON.parse(received.data) as RunJson;
}

describe.each(storeFactories)('run events (SSE) on $name', (factory) => {
  let t: TestApp;
  let baseUrl: string;

  beforeAll(async () => {
    if (!factory.available) return;
    t = await createRunTestApp(factory);
    baseUrl = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.skipIf(!factory.available)('answers a foreign run exactly as a missing one, with a 404 before any stream', async () => {
    const { A, B } = t.seed;
    const foreignRun = await createRunViaApi(t, B, await leadsOf(t, B, 1));
    const foreign = await openSse(baseUrl, eventsPath(foreignRun.id), A.owner.token);
    const missing = await openSse(baseUrl, eventsPath(newId()), A.owner.token);
    expect(foreign.status).toBe(404);
    expect(foreign.headers['content-type']).toMatch(/^application\/json/);
    expect(await foreign.text()).toBe(await missing.text());
    const logged = await t.store.db.selectFrom('security_events').selectAll().where('target_id', '=', foreignRun.id).execute();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ actor_business_id: A.businessId, owner_business_id: B.businessId, target_type: 'run' });

    const anonymous = await openSse(baseUrl, eventsPath(foreignRun.id), 'ocq_nope');
    expect(anonymous.status).toBe(401);
  });

  it.skipIf(!factory.available)('pushes the snapshot, then every change as it happens, then the final state and end', async () => {
    const { A } = t.seed;
    const run = await createRunViaApi(t, A, await leadsOf(t, A, 3));
    const stream = await openSse(baseUrl, eventsPath(run.id), A.viewer.token);
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(stream.headers['cache-control']).toBe('no-store');

      const snapshot = await nextRun(stream, 'status');
      expect(snapshot).toEqual(run);

      await startRun(t.store.db, A.businessId, run.id);
      await publish(t, 'started', A, run.id);
      expect(await nextRun(stream, 'status')).toMatchObject({ status: 'running', locked_by_worker: 'test-host:1' });

      const [live] = await dialJobs(t.store.db, A.businessId, run.id, 1);
      await publish(t, 'progress', A, run.id);
      expect(await nextRun(stream, 'progress')).toMatchObject({ status: 'running', dialing: 1, in_progress: 1, queued: 2 });

      // Cancel through the API: the engine's RunControl publishes `cancel_requested`.
      const cancel = await t.app.inject({ method: 'POST', url: `/api/outbound/runs/${run.id}/cancel`, headers: A.agent.headers });
      expect(cancel.statusCode).toBe(202);
      expect(await nextRun(stream, 'status')).toMatchObject({ status: 'running', cancel_requested: true, cancelled: 2, in_progress: 1 });

      await endJobs(t.store.db, A.businessId, [live!], 'completed');
      await finalizeRun(t.store.db, A.businessId, run.id);
      await publish(t, 'ended', A, run.id);
      const final = await nextRun(stream, 'status');
      expect(final).toMatchObject({ status: 'cancelled', completed: 1, cancelled: 2, cursor_position: 3, progress_pct: 100 });
      expect(final.ended_at).toMatch(/Z$/);
      const end = await stream.next();
      expect(end.event).toBe('end');
      expect(JSON.parse(end.data)).toEqual({ id: run.id, status: 'cancelled' });
      await stream.ended;
      await expect(stream.next()).rejects.toThrow('stream ended');
    } finally {
      stream.close();
    }
  });

  it.skipIf(!factory.available)('ignores events of other runs, and a stream of an ended run gives its final state and ends', async () => {
    const { A } = t.seed;
    const watched = await createRunViaApi(t, A, await leadsOf(t, A, 2));
    const other = await createRunViaApi(t, A, await leadsOf(t, A, 2));
    const stream = await openSse(baseUrl, eventsPath(watched.id), A.viewer.token);
    try {
      await nextRun(stream, 'status');
      await startRun(t.store.db, A.businessId, other.id);
      await publish(t, 'started', A, other.id);
      await startRun(t.store.db, A.businessId, watched.id);
      await publish(t, 'started', A, watched.id);
      // Events are delivered in order: had the other run's event been taken, this would be a duplicate.
      const next = await nextRun(stream, 'status');
      expect(next).toMatchObject({ id: watched.id, status: 'running' });
    } finally {
      stream.close();
    }

    const stop = await t.app.inject({ method: 'POST', url: `/api/outbound/runs/${other.id}/stop`, headers: A.agent.headers });
    expect(stop.json().status).toBe('stopped');
    const late = await openSse(baseUrl, eventsPath(other.id), A.viewer.token);
    expect(await nextRun(late, 'status')).toMatchObject({ id: other.id, status: 'stopped' });
    expect((await late.next()).event).toBe('end');
    await late.ended;
  });

  it.skipIf(!factory.available)('streams of one run share each re-read, but never one that started before they asked', async () => {
    const { A, B } = t.seed;
    const run = await createRunViaApi(t, A, await leadsOf(t, A, 2));
    const reads = new SharedRunReads(t.store.db);
    const first = reads.read(A.businessId, run.id);
    expect(reads.read(A.businessId, run.id)).toBe(first); // asked in the same turn: one query
    expect(reads.read(B.businessId, run.id)).not.toBe(first); // another business: its own, scoped read
    await new Promise((resolve) => setImmediate(resolve)); // the first read has started
    await startRun(t.store.db, A.businessId, run.id);
    const later = reads.read(A.businessId, run.id);
    expect(later).not.toBe(first);
    expect((await later)?.status).toBe('running');
    expect((await first)?.id).toBe(run.id);
    expect(await reads.read(B.businessId, run.id)).toBeUndefined();
  });

  it.skipIf(!factory.available)('drops its subscription when the client goes away', async () => {
    const { A } = t.seed;
    const run = await createRunViaApi(t, A, await leadsOf(t, A, 1));
    const streams = await Promise.all([1, 2, 3].map(() => openSse(baseUrl, eventsPath(run.id), A.viewer.token)));
    for (const stream of streams) await nextRun(stream, 'status');
    expect(openRunEventStreamCount()).toBe(3);
    for (const stream of streams) stream.close();
    await vi.waitFor(() => expect(openRunEventStreamCount()).toBe(0), { timeout: 5000, interval: 10 });
    // The app still serves new streams afterwards.
    const again = await openSse(baseUrl, eventsPath(run.id), A.viewer.token);
    expect((await nextRun(again, 'status')).id).toBe(run.id);
    again.close();
  });

  it.skipIf(!factory.available)('ends open streams when the server shuts down', async () => {
    const own = await createRunTestApp(factory);
    const url = await own.app.listen({ host: '127.0.0.1', port: 0 });
    const { A } = own.seed;
    const run = await createRunViaApi(own, A, await leadsOf(own, A, 1));
    const stream = await openSse(url, eventsPath(run.id), A.viewer.token);
    await nextRun(stream, 'status');
    await own.close();
    await stream.ended;
  });

  it.skipIf(!factory.available)('heartbeats, and re-reads the run on each beat in case a notification was lost', async () => {
    const { A } = t.seed;
    const run = await createRunViaApi(t, A, await leadsOf(t, A, 2));
    const out = new PassThrough();
    out.setEncoding('utf8');
    let received = '';
    const waitFor = (text: string) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (received.includes(text)) {
            out.off('data', onData);
            resolve();
          }
        };
        const onData = (chunk: string): void => {
          received += chunk;
          check();
        };
        out.on('data', onData);
        check();
      });
    const stream = new RunEventStream({ out, readRun: () => getRun(t.store.db, A.businessId, run.id), heartbeatMs: 20 });
    try {
      stream.start();
      await waitFor('"status":"pending"');
      await startRun(t.store.db, A.businessId, run.id); // no notification published
      await waitFor(': heartbeat');
      await waitFor('"status":"running"');
      expect(received).toMatch(/event: status\ndata: \{[^\n]*"status":"running"/);
    } finally {
      stream.close();
    }
  });
});
