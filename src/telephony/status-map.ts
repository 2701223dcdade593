/**
 * Maps Twilio's call statuses to what they mean for a job. Every status Twilio documents is
 * handled (the old system lost jobs on unhandled terminal statuses and on `in_progress` spelling
 * drift); anything else is reported as `pending` with `unrecognizedStatus` so the caller logs it
 * and the job waits for reconciliation instead of being guessed at.
 */
import type { CallProgress, ProviderCall, ProviderCallStatus } from './port.ts';

const KNOWN_STATUSES: ReadonlySet<string> = new Set<ProviderCallStatus>([
  'queued',
  'initiated',
  'ringing',
  'in-progress',
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
]);

/**
 * Normalises a raw status: case, surrounding space, `_` or space for `-`, and the British
 * `cancelled`. Returns `null` for anything that is still not a Twilio status.
 */
export function normalizeCallStatus(raw: string | undefined | null): ProviderCallStatus | null {
  if (raw == null) return null;
  let status = raw.trim().toLowerCase().replace(/[_\s]+/g, '-');
  if (status === 'cancelled') status = 'canceled';
  if (status === 'noanswer') status = 'no-answer';
  if (status === 'inprogress') status = 'in-progress';
  return KNOWN_STATUSES.has(status) ? (status as ProviderCallStatus) : null;
}

function parseSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined;
}

function nonEmpty(raw: string | undefined): string | undefined {
  return raw === undefined || raw === '' ? undefined : raw;
}

/** The progress a known status means; durations and AMD result are passed through when present. */
export function progressForStatus(
  status: ProviderCallStatus,
  extra: { durationSeconds?: number; answeredBy?: string; errorCode?: string } = {},
): CallProgress {
  const ended = (outcome: 'completed' | 'no_answer' | 'busy' | 'failed' | 'canceled'): CallProgress => ({
    kind: 'ended',
    outcome,
    ...(extra.durationSeconds !== undefined && { durationSeconds: extra.durationSeconds }),
    ...(extra.answeredBy !== undefined && { answeredBy: extra.answeredBy }),
    ...(extra.errorCode !== undefined && { errorCode: extra.errorCode }),
  });
  switch (status) {
    case 'queued':
    case 'initiated':
      return { kind: 'pending' };
    case 'ringing':
      return { kind: 'ringing' };
    case 'in-progress':
      return extra.answeredBy !== undefined ? { kind: 'answered', answeredBy: extra.answeredBy } : { kind: 'answered' };
    case 'completed':
      return ended('completed');
    case 'busy':
      return ended('busy');
    case 'no-answer':
      return ended('no_answer');
    case 'failed':
      return ended('failed');
    case 'canceled':
      return ended('canceled');
  }
}

/**
 * What a status callback's POST parameters mean for the job.
 *
 * An asynchronous answering-machine-detection callback carries `AnsweredBy` and no `CallStatus`;
 * it can only come from an answered call, so it maps to `answered` with the result.
 *
 * @example
 * mapCallStatus({ CallStatus: 'completed', CallDuration: '42' }) // {kind:'ended', outcome:'completed', durationSeconds:42}
 */
export function mapCallStatus(params: Record<string, string>): CallProgress {
  const answeredBy = nonEmpty(params.AnsweredBy);
  const raw = params.CallStatus;
  if (raw === undefined && answeredBy !== undefined) return { kind: 'answered', answeredBy };
  const status = normalizeCallStatus(raw);
  if (status === null) return { kind: 'pending', unrecognizedStatus: raw ?? '' };
  const durationSeconds = parseSeconds(params.CallDuration);
  const errorCode = nonEmpty(params.ErrorCode);
  return progressForStatus(status, {
    ...(durationSeconds !== undefined && { durationSeconds }),
    ...(answeredBy !== undefined && { answeredBy }),
    ...(errorCode !== undefined && { errorCode }),
  });
}

/** The same mapping for a fetched call (reconciliation when callbacks were lost). */
export function progressFromProviderCall(call: ProviderCall): CallProgress {
  return progressForStatus(call.status, {
    ...(call.durationSeconds !== undefined && { durationSeconds: call.durationSeconds }),
    ...(call.answeredBy !== undefined && { answeredBy: call.answeredBy }),
  });
}
