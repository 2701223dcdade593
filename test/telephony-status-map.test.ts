import { describe, expect, it } from 'vitest';
import type { CallProgress } from '../src/telephony/port.ts';
import { mapCallStatus, normalizeCallStatus, progressFromProviderCall } from '../src/telephony/status-map.ts';

describe('mapCallStatus: every Twilio CallStatus', () => {
  const table: Array<[string, Record<string, string>, CallProgress]> = [
    ['queued', { CallStatus: 'queued' }, { kind: 'pending' }],
    ['initiated', { CallStatus: 'initiated' }, { kind: 'pending' }],
    ['ringing', { CallStatus: 'ringing' }, { kind: 'ringing' }],
    ['in-progress', { CallStatus: 'in-progress' }, { kind: 'answered' }],
    ['in-progress + AnsweredBy', { CallStatus: 'in-progress', AnsweredBy: 'machine_start' }, { kind: 'answered', answeredBy: 'machine_start' }],
    ['completed', { CallStatus: 'completed', CallDuration: '42' }, { kind: 'ended', outcome: 'completed', durationSeconds: 42 }],
    [
      'completed + AnsweredBy',
      { CallStatus: 'completed', CallDuration: '7', AnsweredBy: 'human' },
      { kind: 'ended', outcome: 'completed', durationSeconds: 7, answeredBy: 'human' },
    ],
    ['busy', { CallStatus: 'busy', CallDuration: '0' }, { kind: 'ended', outcome: 'busy', durationSeconds: 0 }],
    ['no-answer', { CallStatus: 'no-answer' }, { kind: 'ended', outcome: 'no_answer' }],
    ['failed + ErrorCode', { CallStatus: 'failed', ErrorCode: '32009' }, { kind: 'ended', outcome: 'failed', errorCode: '32009' }],
    ['canceled', { CallStatus: 'canceled' }, { kind: 'ended', outcome: 'canceled' }],
    // Vocabulary drift the old system died of.
    ['in_progress', { CallStatus: 'in_progress' }, { kind: 'answered' }],
    ['IN-PROGRESS', { CallStatus: ' IN-PROGRESS ' }, { kind: 'answered' }],
    ['no_answer', { CallStatus: 'no_answer' }, { kind: 'ended', outcome: 'no_answer' }],
    ['cancelled', { CallStatus: 'cancelled' }, { kind: 'ended', outcome: 'canceled' }],
    // Asynchronous AMD verdict: no CallStatus.
    ['AMD verdict', { CallSid: 'CA1', AnsweredBy: 'machine_end_beep' }, { kind: 'answered', answeredBy: 'machine_end_beep' }],
    // Unknown: pending, flagged for the caller to log.
    ['unknown', { CallStatus: 'on-hold' }, { kind: 'pending', unrecognizedStatus: 'on-hold' }],
    ['missing', {}, { kind: 'pending', unrecognizedStatus: '' }],
  ];
  it.each(table)('%s', (_name, params, expected) => {
    expect(mapCallStatus(params)).toEqual(expected);
  });

  it('ignores an unparsable CallDuration instead of inventing one', () => {
    expect(mapCallStatus({ CallStatus: 'completed', CallDuration: 'abc' })).toEqual({ kind: 'ended', outcome: 'completed' });
  });
});

describe('normalizeCallStatus', () => {
  it('returns null for what is not a Twilio status', () => {
    expect(normalizeCallStatus('answered')).toBeNull();
    expect(normalizeCallStatus(undefined)).toBeNull();
  });
});

describe('progressFromProviderCall (reconciliation by fetch)', () => {
  it('maps a fetched call like a callback', () => {
    const base = { providerCallId: 'CA1', to: '+15550000001', from: '+15550000002' };
    expect(progressFromProviderCall({ ...base, status: 'completed', durationSeconds: 12 })).toEqual({
      kind: 'ended',
      outcome: 'completed',
      durationSeconds: 12,
    });
    expect(progressFromProviderCall({ ...base, status: 'no-answer' })).toEqual({ kind: 'ended', outcome: 'no_answer' });
    expect(progressFromProviderCall({ ...base, status: 'queued' })).toEqual({ kind: 'pending' });
  });
});
