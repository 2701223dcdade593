/**
 * The HTTP application: Fastify 5, TypeBox schemas on every body, query and param, OpenAPI 3 at
 * `/openapi.json` (rendered at `/docs`), per-token rate limiting, one error shape, bearer auth on
 * `/api/*`, and every route plugin. The composition root (`ocq start` / `ocq serve`) adds the
 * provider webhook and the simulated carrier through `extraPlugins`.
 *
 * Request pipeline: rate limit (onRequest) → auth (preParsing, before any body is read) → body
 * parse (size and media type checked) → schema validation → handler → error handler.
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Static, TSchema } from '@sinclair/typebox';
import type { Redis } from 'ioredis';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyTypeProvider } from 'fastify';
import { auditRoutes } from './routes/audit.ts';
import { adminRoutes } from './routes/admin.ts';
import { healthRoutes } from './routes/health.ts';
import { leadRoutes } from './routes/leads.ts';
import { legacyRoutes } from './routes/legacy.ts';
import { runEventRoutes } from './routes/run-events.ts';
import { runRoutes } from './routes/runs.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { userRoutes } from './routes/users.ts';
import { rateLimitKey, registerAuth, routeAccess } from './auth.ts';
import type { AppDeps } from './context.ts';
import { ErrorBodySchema, HttpError, RateLimitedError, registerErrorHandling, sendError } from './errors.ts';
import { RequestLogController } from './request-log.ts';
import { openConnection, whenReady } from '../slots/redis-connection.ts';

/**
 * Lets routes infer request types from their TypeBox schemas:
 * `app.withTypeProvider<TypeBoxTypeProvider>().post('/x', { schema: { body: B } }, (req) => req.body)`.
 */
export interface TypeBoxTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}

/** Default JSON body limit: 10,000 leads with attributes fit comfortably. Larger bodies get 413. */
export const JSON_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

export interface BuildAppOptions {
  /** Mounted last, at the root: the provider status webhook, the simulated carrier. */
  extraPlugins?: FastifyPluginAsync[];
}

async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'outbound-call-queue API',
        version: '0.1.0',
        description:
          'Multi-tenant outbound call campaigns. Tenant routes take `Authorization: Bearer ocq_…`; the business is always the token\'s. ' +
          'Errors are `{error: {code, message, details?}}`; messages are Hebrew when Accept-Language prefers he.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token (`ocq_…`), created by an owner/admin or the system admin' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'The system admin token (OCQ_ADMIN_TOKEN); /api/admin/* only' },
        },
      },
      security: [{ bearerAuth: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

/** JSON as Fastify parses it, except that an empty body is "no body" (POST /cancel sent with a JSON content type). */
function registerJsonParser(app: FastifyInstance): void {
  const strictJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    void strictJson(request, text, done);
  });
  // Only JSON (and, on the import route, CSV and multipart) is accepted: anything else is a 415.
  app.removeContentTypeParser('text/plain');
}

/**
 * Builds the whole app, ready to `listen` or `inject`.
 *
 * @example
 * const app = await buildApp({ config, store, logger, runControl, slots, metrics }, { extraPlugins: [webhook] });
 * await app.listen({ host: config.host, port: config.port });
 */
export async function buildApp(deps: AppDeps, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    // Typed as Fastify's logger interface, so the instance is a plain FastifyInstance for plugins.
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One log line per request, at completion (not two).
    logController: new RequestLogController(),
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    return503OnClosing: true,
    // A malformed URL is bad input, never a 500.
    frameworkErrors: (error, request, reply) => {
      request.log.debug({ err: error }, 'malformed request');
      sendError(reply, request, new HttpError(400, 'bad_request', { en: `bad request: ${error.message}`, he: 'בקשה לא תקינה' }, { reason: error.code }));
    },
  });

  registerErrorHandling(app);
  registerJsonParser(app);
  app.addSchema(ErrorBodySchema);

  const sharedCounters = await rateLimitRedis(app, deps);
  await app.register(rateLimit, {
    ...sharedCounters,
    global: true,
    max: deps.config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: rateLimitKey,
    // Per token on the API only: health probes, docs and provider webhooks are not throttled here.
    allowList: (request) => routeAccess(request.routeOptions.url ?? '') === 'public',
    errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000))),
  });
  await registerDocs(app);
  registerAuth(app, deps);

  const routePlugins: Array<FastifyPluginAsync<AppDeps>> = [
    healthRoutes,
    adminRoutes,
    userRoutes,
    tokenRoutes,
    leadRoutes,
    runRoutes,
    legacyRoutes,
    auditRoutes,
    runEventRoutes,
  ];
  for (const plugin of routePlugins) await app.register(plugin, deps);
  for (const plugin of options.extraPlugins ?? []) await app.register(plugin);
  await app.ready();
  return app;
}

/** Rate-limit counters in Redis, shared by every API process (`OCQ_RATE_LIMIT_STORE=redis`). */
const RATE_LIMIT_KEY_PREFIX = 'ocq:rate-limit:';
const RATE_LIMIT_CONNECT_WAIT_MS = 2000;

/**
 * The rate limiter's Redis options, or none for per-process counters. The limiter fails OPEN
 * (`skipOnError`): a Redis outage must not take the API down with it (dialling, which must fail
 * closed, uses its own connections). The connection never queues commands while Redis is away,
 * so a request does not wait for it.
 */
async function rateLimitRedis(app: FastifyInstance, deps: AppDeps): Promise<{ redis: Redis; nameSpace: string; skipOnError: true } | Record<string, never>> {
  if (deps.config.rateLimitStore !== 'redis' || !deps.config.redisUrl) return {};
  const redis = openConnection(deps.config.redisUrl, { connectTimeoutMs: 2000, commandTimeoutMs: 500, reconnectMaxMs: 2000 }, 'ocq-rate-limit');
  redis.on('error', (error: Error) => deps.logger.debug({ err: error }, 'rate-limit Redis connection error; requests are not limited meanwhile'));
  app.addHook('onClose', async () => {
    redis.disconnect();
  });
  // Counting from the first request: the server starts once the connection is up, or after
  // RATE_LIMIT_CONNECT_WAIT_MS without it (then unlimited until Redis answers).
  await whenReady(redis, RATE_LIMIT_CONNECT_WAIT_MS).catch((error: unknown) =>
    deps.logger.warn({ err: error }, 'rate-limit Redis not reachable at start; requests are not limited until it is'),
  );
  return { redis, nameSpace: RATE_LIMIT_KEY_PREFIX, skipOnError: true };
}
