/**
 * Twilio's REST API (the part the product uses) in front of a {@link CarrierSimulator}, and the
 * simulator's own admin routes. Three Fastify plugins:
 *
 * - {@link carrierSimApiRoutes}: register at prefix `/2010-04-01` (Twilio's API version path);
 * - {@link carrierSimAdminRoutes}: register at prefix `/sim` (stats, reset, script, faults);
 * - {@link carrierSimPlugin}: both, at those prefixes; register at the root of any server.
 *
 * The admin routes have no authentication: mount them only where the simulator is wanted.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { parseTwilioForm, type WebhookParams } from '../signature.ts';
import type { CreateFailureStatus, DropCallbacksOptions } from './faults.ts';
import type { ScriptChange } from './script.ts';
import type { SimAccount } from './accounts.ts';
import type { CreateCallInput } from './new-call.ts';
import { TwilioApiError, type CarrierSimulator, type ListCallsFilter } from './simulator.ts';
import { API_VERSION, callResource, twilioError } from './twilio-shapes.ts';

const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;

type Params = { accountSid: string; callSid?: string };

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function all(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  // Twilio takes repeated names; a single space-separated value is accepted too.
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/\s+/)).filter(Boolean);
}

function optionalNumber(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function toCreateInput(form: WebhookParams): CreateCallInput {
  const input: CreateCallInput = {};
  const set = <K extends keyof CreateCallInput>(key: K, value: CreateCallInput[K] | undefined): void => {
    if (value !== undefined) input[key] = value;
  };
  set('to', first(form.To));
  set('from', first(form.From));
  set('url', first(form.Url));
  set('twiml', first(form.Twiml));
  set('applicationSid', first(form.ApplicationSid));
  set('statusCallback', first(form.StatusCallback));
  set('statusCallbackEvent', all(form.StatusCallbackEvent));
  set('timeout', optionalNumber(first(form.Timeout)));
  set('timeLimit', optionalNumber(first(form.TimeLimit)));
  set('machineDetection', first(form.MachineDetection));
  set('asyncAmd', first(form.AsyncAmd));
  set('asyncAmdStatusCallback', first(form.AsyncAmdStatusCallback));
  return input;
}

function sendError(reply: FastifyReply, err: TwilioApiError): FastifyReply {
  return reply.code(err.httpStatus).send(err.body);
}

function notFound(reply: FastifyReply, uri: string): FastifyReply {
  return reply.code(404).send(twilioError(404, 20404, `The requested resource ${uri} was not found`));
}

function basicCredentials(request: FastifyRequest): { username: string; password: string } | null {
  const header = request.headers.authorization;
  if (!header?.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function parseDateFilter(raw: unknown, name: string): Date | undefined {
  if (typeof raw !== 'string' || raw === '') return undefined;
  const date = new Date(raw);
  if (Number.isNaN(date.getTime())) throw new TwilioApiError(400, twilioError(400, 20001, `Invalid ${name}: ${raw}`));
  return date;
}

/** Twilio's Calls API: create, fetch, update (hang-up), list. Register at prefix `/2010-04-01`. */
export function carrierSimApiRoutes(sim: CarrierSimulator): FastifyPluginAsync {
  return async (app) => {
    if (!app.hasContentTypeParser(FORM_CONTENT_TYPE)) {
      app.addContentTypeParser(FORM_CONTENT_TYPE, { parseAs: 'string' }, (_req, body, done) => {
        done(null, parseTwilioForm(body as string));
      });
    }
    // HTTP Basic auth on every route: account SID + auth token, or API key SID + secret.
    const authenticated = new WeakMap<FastifyRequest, SimAccount>();
    app.addHook('preHandler', async (request, reply) => {
      const { accountSid } = request.params as Params;
      const creds = basicCredentials(request);
      const account = creds && sim.authenticate(creds.username, creds.password, accountSid);
      if (!account) return reply.code(401).send(twilioError(401, 20003, 'Authenticate'));
      authenticated.set(request, account);
    });
    const accountOf = (request: FastifyRequest): SimAccount => {
      const account = authenticated.get(request);
      if (!account) throw new Error('carrier-sim: route reached without authentication');
      return account;
    };

    app.post<{ Params: Params }>('/Accounts/:accountSid/Calls.json', async (request, reply) => {
      try {
        const call = sim.createCall(accountOf(request), toCreateInput((request.body ?? {}) as WebhookParams));
        const created = callResource(call); // the answer shows the call as it was created, however late it goes out
        const delay = sim.faults.takeCreateDelay();
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        return reply.code(201).send(created);
      } catch (err) {
        if (err instanceof TwilioApiError) return sendError(reply, err);
        throw err;
      }
    });

    app.get<{ Params: Params }>('/Accounts/:accountSid/Calls/:callSid.json', async (request, reply) => {
      const call = sim.getCall(request.params.accountSid, request.params.callSid ?? '');
      return call ? reply.send(callResource(call)) : notFound(reply, request.url);
    });

    app.post<{ Params: Params }>('/Accounts/:accountSid/Calls/:callSid.json', async (request, reply) => {
      const call = sim.getCall(request.params.accountSid, request.params.callSid ?? '');
      if (!call) return notFound(reply, request.url);
      const status = first(((request.body ?? {}) as WebhookParams).Status);
      try {
        if (status !== undefined) sim.updateCallStatus(call, status);
        return reply.send(callResource(call));
      } catch (err) {
        if (err instanceof TwilioApiError) return sendError(reply, err);
        throw err;
      }
    });

    app.get<{ Params: Params; Querystring: Record<string, string | undefined> }>('/Accounts/:accountSid/Calls.json', async (request, reply) => {
      const q = request.query;
      let filter: ListCallsFilter;
      try {
        const startTimeAfter = parseDateFilter(q['StartTime>'], 'StartTime>');
        const startTimeBefore = parseDateFilter(q['StartTime<'], 'StartTime<');
        filter = {
          ...(q.To && { to: q.To }),
          ...(q.From && { from: q.From }),
          ...(q.Status && { status: q.Status }),
          ...(startTimeAfter && { startTimeAfter }),
          ...(startTimeBefore && { startTimeBefore }),
        };
      } catch (err) {
        if (err instanceof TwilioApiError) return sendError(reply, err);
        throw err;
      }
      const pageSize = Math.min(Math.max(Number(q.PageSize) || DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
      const page = Math.max(Number(q.Page) || 0, 0);
      const matches = sim.listCalls(request.params.accountSid, filter);
      const slice = matches.slice(page * pageSize, (page + 1) * pageSize);
      const path = `/${API_VERSION}/Accounts/${request.params.accountSid}/Calls.json`;
      const pageUri = (n: number): string => {
        const query = new URLSearchParams();
        for (const [key, value] of Object.entries(q)) if (value !== undefined && key !== 'Page' && key !== 'PageToken') query.set(key, value);
        query.set('PageSize', String(pageSize));
        query.set('Page', String(n));
        return `${path}?${query.toString()}`;
      };
      const hasNext = (page + 1) * pageSize < matches.length;
      return reply.send({
        calls: slice.map(callResource),
        start: page * pageSize,
        end: page * pageSize + Math.max(slice.length - 1, 0),
        page,
        page_size: pageSize,
        uri: pageUri(page),
        first_page_uri: pageUri(0),
        next_page_uri: hasNext ? pageUri(page + 1) : null,
        previous_page_uri: page > 0 ? pageUri(page - 1) : null,
      });
    });
  };
}

/** The body of `POST /sim/faults`. */
export interface FaultsRequest {
  clear?: boolean;
  failNextCreates?: { count: number; status?: CreateFailureStatus };
  rejectCredentials?: boolean;
  dropCallbacks?: DropCallbacksOptions | false;
  delayCreateResponses?: { ms: number; count?: number };
}

/**
 * The simulator's admin API. Register at prefix `/sim`:
 * `GET /stats`, `GET /calls`, `POST /reset`, `PATCH /script`, `POST /faults`.
 */
export function carrierSimAdminRoutes(sim: CarrierSimulator): FastifyPluginAsync {
  return async (app) => {
    app.get('/stats', async () => sim.record.snapshot());
    app.get('/calls', async () => sim.allCalls());
    app.post('/reset', async () => {
      sim.reset();
      return { ok: true };
    });
    app.patch<{ Body: ScriptChange }>('/script', async (request) => {
      sim.setScript(request.body ?? {});
      return sim.script;
    });
    app.post<{ Body: FaultsRequest }>('/faults', async (request) => {
      const body = request.body ?? {};
      if (body.clear) sim.faults.clear();
      if (body.failNextCreates) sim.faults.failNextCreates(body.failNextCreates.count, body.failNextCreates.status);
      if (body.rejectCredentials !== undefined) sim.faults.rejectCredentials(body.rejectCredentials);
      if (body.dropCallbacks === false) sim.faults.stopDroppingCallbacks();
      else if (body.dropCallbacks) sim.faults.dropCallbacks(body.dropCallbacks);
      if (body.delayCreateResponses) sim.faults.delayCreateResponses(body.delayCreateResponses.ms, body.delayCreateResponses.count);
      return { ok: true };
    });
  };
}

/** The whole simulator (API at `/2010-04-01`, admin at `/sim`); register at a server's root. */
export function carrierSimPlugin(sim: CarrierSimulator): FastifyPluginAsync {
  return async (app) => {
    await app.register(carrierSimApiRoutes(sim), { prefix: `/${API_VERSION}` });
    await app.register(carrierSimAdminRoutes(sim), { prefix: '/sim' });
  };
}
