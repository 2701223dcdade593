/**
 * `GET /api/outbound/runs/:id/events`: the run's progress and state changes as Server-Sent
 * Events (format in run-event-stream.ts and docs/api-runs.md). Ownership is checked before the
 * stream opens: a foreign or missing id is a plain 404, like every other run route.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../context.ts';
import { requireRole } from '../auth.ts';
import { loadRun } from '../run-access.ts';
import { RunEventHub } from '../run-event-hub.ts';
import { RunEventStream } from '../run-event-stream.ts';
import { SharedRunReads } from '../shared-run-reads.ts';
import { RunIdParams } from '../schemas.ts';

export const runEventRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const hub = new RunEventHub(deps.store.notifier);
  const reads = new SharedRunReads(deps.store.db);
  const streams = new Set<RunEventStream>();
  // Open streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.close();
  });
  app.addHook('onClose', async () => hub.close());

  app.get<{ Params: RunIdParams }>(
    '/api/outbound/runs/:id/events',
    {
      schema: {
        tags: ['runs'],
        summary: 'Server-Sent Events: the run on connect, then on every change; ends after the run ends',
        params: RunIdParams,
        produces: ['text/event-stream'],
        response: { 200: { description: 'text/event-stream of `status`, `progress` and `end` events', type: 'string' } },
      },
    },
    async (request, reply) => {
      const auth = requireRole(request, 'viewer');
      const runId = request.params.id;
      await loadRun(deps, request, auth, runId);

      const readRun = () => reads.read(auth.businessId, runId);
      let stopWatching = (): void => undefined;
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no', // nginx: do not buffer the stream
      });
      const stream = new RunEventStream({
        out: reply.raw,
        readRun,
        onClose: () => {
          stopWatching();
          streams.delete(stream);
        },
      });
      streams.add(stream);
      try {
        // Listen before the snapshot is read, so no change can fall between the two.
        stopWatching = await hub.watch(runId, (message) => {
          if (message.businessId === auth.businessId) stream.refresh();
        });
        if (stream.isClosed) stopWatching(); // the client left while we subscribed
      } catch (error) {
        request.log.warn({ err: error, runId }, 'run events unavailable; the stream falls back to the heartbeat re-read');
      }
      stream.start();
    },
  );
};
