/**
 * The error hierarchy. Every error the product raises on purpose is an {@link OcqError} with a
 * stable `code` (part of the API contract: clients switch on it), an HTTP status, and a message
 * in English and Hebrew. Codes never change meaning once shipped; add new ones instead.
 *
 * @example
 * throw new NotFoundError('run'); // 404 {error:{code:'not_found', message:'run not found'}}
 */
export type Messages = { en: string; he: string };

export abstract class OcqError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly he: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(messages: Messages, details?: Record<string, unknown>) {
    super(messages.en);
    this.name = new.target.name;
    this.he = messages.he;
    this.details = details;
  }

  message_in(lang: 'en' | 'he'): string {
    return lang === 'he' ? this.he : this.message;
  }
}

export class ValidationError extends OcqError {
  readonly code = 'validation_failed';
  readonly status = 400;
}

export class UnauthenticatedError extends OcqError {
  readonly code = 'unauthenticated';
  readonly status = 401;
  constructor() {
    super({ en: 'missing or invalid token', he: 'אסימון חסר או לא תקין' });
  }
}

export class ForbiddenError extends OcqError {
  readonly code = 'forbidden';
  readonly status = 403;
  constructor(action: string) {
    super({ en: `your role may not ${action}`, he: `לתפקיד שלך אין הרשאה לפעולה: ${action}` }, { action });
  }
}

const hebrewTarget: Record<string, string> = {
  run: 'הרצה',
  job: 'שיחה',
  lead: 'ליד',
  user: 'משתמש',
  token: 'אסימון',
  business: 'עסק',
  queue: 'תור',
};

/** A missing id and another business's id get this same error: a 403 would confirm the id exists. */
export class NotFoundError extends OcqError {
  readonly code = 'not_found';
  readonly status = 404;
  constructor(target: string) {
    super({ en: `${target} not found`, he: `${hebrewTarget[target] ?? target} לא נמצא${target === 'run' ? 'ה' : ''}` }, { target });
  }
}

export class ConflictError extends OcqError {
  readonly code: string;
  readonly status = 409;
  constructor(code: string, messages: Messages, details?: Record<string, unknown>) {
    super(messages, details);
    this.code = code;
  }
}

/** Configuration that cannot work: raised at start, naming the variable. */
export class ConfigError extends OcqError {
  readonly code = 'config_invalid';
  readonly status = 500;
  constructor(variable: string, problem: string) {
    super({ en: `${variable}: ${problem}`, he: `${variable}: ${problem}` }, { variable });
  }
}

/** A second process tried to open an embedded (PGlite) data folder that is already open. */
export class DataDirLockedError extends OcqError {
  readonly code = 'data_dir_locked';
  readonly status = 500;
  constructor(dir: string, holder: string) {
    super(
      {
        en: `the data folder ${dir} is already open in process ${holder}; the embedded database allows one process. Stop it, or use PostgreSQL (DATABASE_URL) for several processes`,
        he: `תיקיית הנתונים ${dir} כבר פתוחה בתהליך ${holder}; המסד המוטמע מאפשר תהליך אחד בלבד. עצרו אותו, או השתמשו ב-PostgreSQL (DATABASE_URL)`,
      },
      { dir, holder },
    );
  }
}

/** Redis (or another slot backend) is unreachable: the limiter fails closed, nothing dials. */
export class SlotsUnavailableError extends OcqError {
  readonly code = 'slots_unavailable';
  readonly status = 503;
  constructor(cause: string) {
    super({ en: `call slots unavailable: ${cause}`, he: `מונה השיחות אינו זמין: ${cause}` }, { cause });
  }
}

export class ProviderError extends OcqError {
  readonly code: string;
  readonly status = 502;
  /** Retryable: 429, 5xx, network. Not retryable: auth, invalid number, unverified caller id. */
  readonly retryable: boolean;
  /** The provider rejected our credentials or account: the whole run cannot go on. */
  readonly fatalForRun: boolean;
  readonly providerStatus: number | undefined;
  readonly providerCode: number | undefined;
  constructor(
    code: string,
    messages: Messages,
    opts: { retryable: boolean; fatalForRun?: boolean; providerStatus?: number; providerCode?: number },
  ) {
    super(messages, { providerStatus: opts.providerStatus, providerCode: opts.providerCode });
    this.code = code;
    this.retryable = opts.retryable;
    this.fatalForRun = opts.fatalForRun ?? false;
    this.providerStatus = opts.providerStatus;
    this.providerCode = opts.providerCode;
  }
}
