/** Twilio's wire formats: SIDs, dates, the Call resource, errors and status-callback parameters. */
import { randomFillSync } from 'node:crypto';
import type { SimCall } from './sim-call.ts';

export const API_VERSION = '2010-04-01';

/** Random bytes for SIDs, drawn in bulk: one `randomBytes(16)` per call costs more than the rest of the SID. */
const sidEntropy = Buffer.alloc(16 * 256);
let sidOffset = sidEntropy.length;

/** A Twilio-style SID: two-letter prefix and 32 hex digits (`CA…`, `AC…`, `SK…`). */
export function newSid(prefix: 'CA' | 'AC' | 'SK' | 'PN'): string {
  if (sidOffset === sidEntropy.length) {
    randomFillSync(sidEntropy);
    sidOffset = 0;
  }
  sidOffset += 16;
  return prefix + sidEntropy.toString('hex', sidOffset - 16, sidOffset);
}

/** The last date written, by its second: most dates written in a burst fall in the same second. */
let lastSecond = Number.NaN;
let lastText = '';

/** RFC 2822 as Twilio writes it (`Tue, 10 Aug 2010 08:02:17 +0000`); Twilio's precision is one second. */
export function rfc2822(date: Date): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastText = date.toUTCString().replace('GMT', '+0000');
  }
  return lastText;
}

/** The E.164 numbers the simulator accepts: `+`, then 2 to 15 digits, not starting with 0. */
export function isE164(number: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(number);
}

/** A Twilio error body: `{code, message, more_info, status}`. */
export interface TwilioErrorBody {
  code: number;
  message: string;
  more_info: string;
  status: number;
}

/** The error body for Twilio error `code` answered with HTTP `status`. */
export function twilioError(status: number, code: number, message: string): TwilioErrorBody {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** The URI of one call resource. */
export function callUri(accountSid: string, callSid: string): string {
  return `/${API_VERSION}/Accounts/${accountSid}/Calls/${callSid}.json`;
}

/** The Call resource JSON, with Twilio's field names. */
export function callResource(call: SimCall): Record<string, unknown> {
  const uri = callUri(call.accountSid, call.sid);
  const base = uri.slice(0, -'.json'.length);
  return {
    sid: call.sid,
    date_created: rfc2822(call.dateCreated),
    date_updated: rfc2822(call.dateUpdated),
    parent_call_sid: null,
    account_sid: call.accountSid,
    to: call.to,
    to_formatted: call.to,
    from: call.from,
    from_formatted: call.from,
    phone_number_sid: null,
    status: call.status,
    start_time: call.startTime ? rfc2822(call.startTime) : null,
    end_time: call.endTime ? rfc2822(call.endTime) : null,
    duration: call.durationSeconds === undefined ? null : String(call.durationSeconds),
    price: null,
    price_unit: 'USD',
    direction: 'outbound-api',
    answered_by: call.answeredBy ?? null,
    api_version: API_VERSION,
    forwarded_from: null,
    group_sid: null,
    caller_name: null,
    queue_time: '0',
    trunk_sid: null,
    uri,
    subresource_uris: {
      notifications: `${base}/Notifications.json`,
      recordings: `${base}/Recordings.json`,
      events: `${base}/Events.json`,
    },
  };
}

/** SIP response codes Twilio reports with each final status. */
const SIP_CODE: Record<string, string> = {
  completed: '200',
  busy: '486',
  'no-answer': '487',
  canceled: '487',
  failed: '500',
};

/**
 * The POST parameters of one status callback, with Twilio's names. `CallDuration` and
 * `SipResponseCode` come with final statuses; `AnsweredBy` when machine detection ran.
 */
export function statusCallbackParams(call: SimCall, callStatus: string, sequenceNumber: number, at: Date): Record<string, string> {
  const params: Record<string, string> = {
    AccountSid: call.accountSid,
    ApiVersion: API_VERSION,
    CallSid: call.sid,
    CallStatus: callStatus,
    CallbackSource: 'call-progress-events',
    Called: call.to,
    Caller: call.from,
    Direction: 'outbound-api',
    From: call.from,
    SequenceNumber: String(sequenceNumber),
    Timestamp: rfc2822(at),
    To: call.to,
  };
  const sip = SIP_CODE[callStatus];
  if (sip !== undefined) {
    params.SipResponseCode = sip;
    params.CallDuration = String(call.durationSeconds ?? 0);
    params.Duration = String(Math.ceil((call.durationSeconds ?? 0) / 60));
  }
  // Synchronous detection knows the verdict at answer; asynchronous sends it in its own callback.
  const verdictKnown = sip !== undefined || (callStatus === 'in-progress' && !call.asyncAmd);
  if (call.machineDetection && call.answeredBy !== undefined && verdictKnown) params.AnsweredBy = call.answeredBy;
  return params;
}

/** The parameters of an asynchronous answering-machine-detection callback. */
export function amdCallbackParams(call: SimCall): Record<string, string> {
  return {
    AccountSid: call.accountSid,
    AnsweredBy: call.answeredBy ?? 'unknown',
    CallSid: call.sid,
    MachineDetectionDuration: '2400',
  };
}
