/** A create request: what Twilio would refuse, and the call it otherwise makes. */
import type { SimAccount } from './accounts.ts';
import type { CallPlan } from './script.ts';
import type { CallbackEvent, SimCall } from './sim-call.ts';
import { isE164, newSid } from './twilio-shapes.ts';

/** The parameters of a create, as parsed from Twilio's form names. */
export interface CreateCallInput {
  to?: string;
  from?: string;
  url?: string;
  twiml?: string;
  applicationSid?: string;
  statusCallback?: string;
  statusCallbackEvent?: string[];
  timeout?: number;
  timeLimit?: number;
  machineDetection?: string;
  asyncAmd?: string;
  asyncAmdStatusCallback?: string;
}

/** Why Twilio would refuse a create: HTTP 400 with this Twilio error code. */
export interface CreateRefusal {
  code: number;
  message: string;
}

const CALLBACK_EVENTS: ReadonlySet<string> = new Set<CallbackEvent>(['initiated', 'ringing', 'answered', 'completed']);
const DEFAULT_TIMEOUT_S = 60;
const MAX_TIMEOUT_S = 600;
const DEFAULT_TIME_LIMIT_S = 14_400;

/** The refusal for an invalid create, or `null` when Twilio would accept it. */
export function refusalFor(
  input: CreateCallInput,
  account: SimAccount,
  rules: { invalidNumber(to: string): boolean; invalidCallerId(from: string): boolean },
): CreateRefusal | null {
  const { to, from } = input;
  if (!to) return { code: 21201, message: "No 'To' number is specified" };
  if (!from) return { code: 21213, message: "No 'From' number is specified" };
  if (!input.url && !input.twiml && !input.applicationSid) return { code: 21205, message: 'Url parameter is required' };
  if (!isE164(to) || rules.invalidNumber(to)) return { code: 21211, message: `Invalid 'To' Phone Number: ${to}` };
  const allowed = account.callerIds === undefined || account.callerIds.includes(from);
  if (!isE164(from) || rules.invalidCallerId(from) || !allowed) {
    return { code: 21212, message: `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.` };
  }
  return null;
}

/** The new call for a create that passed {@link refusalFor}. */
export function newSimCall(account: SimAccount, input: CreateCallInput & { to: string; from: string }, plan: CallPlan): SimCall {
  const machineDetection = input.machineDetection !== undefined && input.machineDetection !== '' && input.machineDetection !== 'None';
  const asyncAmd = machineDetection && input.asyncAmd === 'true';
  const now = new Date();
  return {
    sid: newSid('CA'),
    accountSid: account.accountSid,
    to: input.to,
    from: input.from,
    url: input.url ?? '',
    statusCallback: input.statusCallback || undefined,
    events: new Set((input.statusCallbackEvent ?? []).filter((e): e is CallbackEvent => CALLBACK_EVENTS.has(e))),
    timeoutSeconds: Math.min(Math.max(input.timeout ?? DEFAULT_TIMEOUT_S, 1), MAX_TIMEOUT_S),
    timeLimitSeconds: Math.max(input.timeLimit ?? DEFAULT_TIME_LIMIT_S, 1),
    machineDetection,
    asyncAmd,
    asyncAmdCallback: asyncAmd ? input.asyncAmdStatusCallback || undefined : undefined,
    plan,
    status: 'queued',
    dateCreated: now,
    dateUpdated: now,
    startTime: undefined,
    answeredAt: undefined,
    endTime: undefined,
    durationSeconds: undefined,
    answeredBy: undefined,
    nextSequence: 0,
    timer: undefined,
    callbackChain: Promise.resolve(),
  };
}
