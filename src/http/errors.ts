/**
 * Every error leaves as `{error: {code, message, details?}}` with a stable code, in Hebrew when
 * `Accept-Language` prefers `he`, English otherwise. Bad input is always a 4xx: Fastify's own
 * errors (validation, malformed JSON, size, media type) and database rejections of bad values
 * are translated here; only a genuine bug is a 500 `internal`, logged, with no stack leaked.
 *
 * | status | code |
 * |---|---|
 * | 400 | validation_failed, invalid_json, bad_request |
 * | 401 | unauthenticated |
 * | 403 | forbidden |
 * | 404 | not_found, route_not_found |
 * | 409 | conflict codes (run_already_ended, email_taken, ...) |
 * | 413 | body_too_large |
 * | 415 | unsupported_media_type |
 * | 429 | rate_limited |
 * | 500 | internal |
 */
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OcqError, type Messages } from '../domain/errors.ts';

export type Language = 'en' | 'he';

/** The language with the highest q-value among the ones we speak (`iw` is old Hebrew); English by default. */
export function preferredLanguage(acceptLanguage: string | undefined): Language {
  if (!acceptLanguage) return 'en';
  let best: { lang: Language; q: number } = { lang: 'en', q: 0 };
  for (const part of acceptLanguage.split(',')) {
    const [tag = '', ...params] = part.trim().toLowerCase().split(';');
    const primary = tag.split('-')[0];
    const lang: Language | undefined = primary === 'he' || primary === 'iw' ? 'he' : primary === 'en' ? 'en' : undefined;
    if (!lang) continue;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (Number.isFinite(q) && q > best.q) best = { lang, q };
  }
  return best.lang;
}

/** An HTTP-level error with a code chosen at the throw site (malformed body, size, media type...). */
export class HttpError extends OcqError {
  readonly code: string;
  readonly status: number;
  constructor(status: number, code: string, messages: Messages, details?: Record<string, unknown>) {
    super(messages, details);
    this.status = status;
    this.code = code;
  }
}

export class RateLimitedError extends OcqError {
  readonly code = 'rate_limited';
  readonly status = 429;
  constructor(retryAfterSeconds: number) {
    super(
      { en: `too many requests; retry in ${retryAfterSeconds} s`, he: `יותר מדי בקשות; נסו שוב בעוד ${retryAfterSeconds} שניות` },
      { retry_after_seconds: retryAfterSeconds },
    );
  }
}

export function routeNotFound(method: string, url: string): HttpError {
  const path = url.split('?')[0] ?? url;
  return new HttpError(404, 'route_not_found', { en: `no route ${method} ${path}`, he: `אין נתיב ${method} ${path}` }, { method, path });
}

/** The error body, for the OpenAPI document. */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code' }),
      message: Type.String({ description: 'English, or Hebrew when Accept-Language prefers he' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorBody' },
);

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `/leads/0/phone` → `leads[0].phone`; a missing or unknown property is appended. */
function fieldOf(context: string, issue: AjvError): string {
  const segments = issue.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra = issue.params.missingProperty ?? issue.params.additionalProperty;
  if (typeof extra === 'string') segments.push(extra);
  if (segments.length === 0) return context === 'body' ? 'body' : context;
  return segments.reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : path ? `${path}.${segment}` : segment), '');
}

function validationMessages(field: string, issue: AjvError): Messages {
  const p = issue.params;
  switch (issue.keyword) {
    case 'required':
      return { en: `${field}: is required`, he: `${field}: שדה חובה` };
    case 'type':
      return { en: `${field}: must be ${String(p.type)}`, he: `${field}: חייב להיות מסוג ${String(p.type)}` };
    case 'maxItems':
      return { en: `${field}: at most ${String(p.limit)} items`, he: `${field}: לכל היותר ${String(p.limit)} פריטים` };
    case 'minItems':
      return { en: `${field}: at least ${String(p.limit)} items`, he: `${field}: לפחות ${String(p.limit)} פריטים` };
    case 'maxLength':
      return { en: `${field}: at most ${String(p.limit)} characters`, he: `${field}: לכל היותר ${String(p.limit)} תווים` };
    case 'minLength':
      return { en: `${field}: at least ${String(p.limit)} characters`, he: `${field}: לפחות ${String(p.limit)} תווים` };
    case 'maxProperties':
      return { en: `${field}: at most ${String(p.limit)} properties`, he: `${field}: לכל היותר ${String(p.limit)} מאפיינים` };
    case 'minimum':
      return { en: `${field}: must be at least ${String(p.limit)}`, he: `${field}: חייב להיות לפחות ${String(p.limit)}` };
    case 'maximum':
      return { en: `${field}: must be at most ${String(p.limit)}`, he: `${field}: חייב להיות לכל היותר ${String(p.limit)}` };
    case 'pattern':
    case 'format':
      return { en: `${field}: has an invalid format`, he: `${field}: פורמט לא תקין` };
    case 'enum': {
      const allowed = Array.isArray(p.allowedValues) ? p.allowedValues.join(', ') : '';
      return { en: `${field}: must be one of ${allowed}`, he: `${field}: חייב להיות אחד מ: ${allowed}` };
    }
    case 'additionalProperties':
      return { en: `${field}: unknown field`, he: `${field}: שדה לא מוכר` };
    default:
      return { en: `${field}: ${issue.message ?? 'is invalid'}`, he: `${field}: ערך לא תקין` };
  }
}

function fromValidation(error: FastifyError): HttpError {
  const issue = (error.validation?.[0] ?? { instancePath: '', keyword: 'invalid', params: {} }) as AjvError;
  const location = error.validationContext ?? 'body';
  const field = fieldOf(location, issue);
  return new HttpError(400, 'validation_failed', validationMessages(field, issue), { field, location, reason: issue.keyword });
}

export function unsupportedMediaType(request: FastifyRequest): HttpError {
  const contentType = request.headers['content-type'] ?? '(none)';
  return new HttpError(
    415,
    'unsupported_media_type',
    { en: `unsupported Content-Type ${contentType}`, he: `סוג תוכן לא נתמך ${contentType}` },
    { content_type: contentType },
  );
}

/** Fastify and plugin error codes that are the client's doing. */
function fromFrameworkCode(error: FastifyError, request: FastifyRequest): OcqError | undefined {
  switch (error.code) {
    case 'FST_ERR_VALIDATION':
      return fromValidation(error);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpError(400, 'invalid_json', { en: 'the request body is not valid JSON', he: 'גוף הבקשה אינו JSON תקין' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return unsupportedMediaType(request);
  }
  if (error.validation) return fromValidation(error);
  const status = error.statusCode ?? 500;
  if (status === 413) return new HttpError(413, 'body_too_large', { en: 'the request body is too large', he: 'גוף הבקשה גדול מדי' });
  if (status === 415) return unsupportedMediaType(request);
  if (status >= 400 && status < 500) {
    return new HttpError(status, 'bad_request', { en: `bad request: ${error.message}`, he: 'בקשה לא תקינה' }, { reason: error.code });
  }
  return undefined;
}

/**
 * PostgreSQL rejections of values (class 22: data exception; 23: integrity). Input validation
 * should have caught them first; reaching here means a schema is too loose, so it is logged.
 */
function fromDatabase(error: { code?: unknown; constraint?: unknown }): OcqError | undefined {
  const code = typeof error.code === 'string' ? error.code : '';
  if (!/^2[23][0-9A-Z]{3}$/.test(code)) return undefined;
  if (code === '23505') {
    return new HttpError(409, 'conflict', { en: 'the request conflicts with existing data', he: 'הבקשה מתנגשת בנתונים קיימים' }, { constraint: error.constraint });
  }
  return new HttpError(400, 'validation_failed', { en: 'a value in the request is not acceptable', he: 'ערך בבקשה אינו תקין' }, { reason: code });
}

/** Sends `error` in the error shape and the caller's language. */
export function sendError(reply: FastifyReply, request: FastifyRequest, error: OcqError): FastifyReply {
  const lang = preferredLanguage(request.headers['accept-language']);
  if (error.status === 401) reply.header('www-authenticate', 'Bearer');
  const body: { error: { code: string; message: string; details?: Record<string, unknown> } } = {
    error: { code: error.code, message: error.message_in(lang) },
  };
  if (error.details !== undefined) body.error.details = error.details;
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

const internal = new HttpError(500, 'internal', { en: 'internal error', he: 'שגיאה פנימית' });

/** Installs the error and not-found handlers; call before registering routes. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof OcqError) {
      if (error.status >= 500) request.log.error({ err: error }, 'request failed');
      return sendError(reply, request, error);
    }
    const translated = fromFrameworkCode(error, request) ?? fromDatabase(error);
    if (translated) {
      if (translated.code === 'validation_failed' && error.code?.startsWith('2')) {
        request.log.warn({ err: error }, 'database rejected a request value that validation let through');
      }
      return sendError(reply, request, translated);
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, request, internal);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, request, routeNotFound(request.method, request.url)));
}
