import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../src/domain/errors.ts';
import { classifyProviderError, isNotFound, mayHaveReachedProvider } from '../src/telephony/errors.ts';

/** The SDK's own exception, as `calls.create` throws it for an HTTP error answer. */
function restException(statusCode: number, code?: number, message = 'x'): unknown {
  return new twilio.RestException({ statusCode, body: code === undefined ? '' : JSON.stringify({ code, message, status: statusCode }) });
}

describe('classifyProviderError', () => {
  const table: Array<[string, unknown, { code: string; retryable: boolean; fatalForRun: boolean }]> = [
    ['401 / 20003', restException(401, 20003, 'Authenticate'), { code: 'provider_auth_failed', retryable: false, fatalForRun: true }],
    ['401 without a body', restException(401), { code: 'provider_auth_failed', retryable: false, fatalForRun: true }],
    ['20005 account not active', restException(401, 20005), { code: 'provider_account_inactive', retryable: false, fatalForRun: true }],
    ['21211 invalid To', restException(400, 21211), { code: 'provider_invalid_number', retryable: false, fatalForRun: false }],
    ['21214 To unreachable', restException(400, 21214), { code: 'provider_invalid_number', retryable: false, fatalForRun: false }],
    ['21210 From not verified', restException(400, 21210), { code: 'provider_invalid_caller_id', retryable: false, fatalForRun: true }],
    ['21212 invalid From', restException(400, 21212), { code: 'provider_invalid_caller_id', retryable: false, fatalForRun: true }],
    ['21215 geo permission', restException(400, 21215), { code: 'provider_destination_not_permitted', retryable: false, fatalForRun: false }],
    ['429', restException(429, 20429), { code: 'provider_rate_limited', retryable: true, fatalForRun: false }],
    ['500', restException(500, 20500), { code: 'provider_unavailable', retryable: true, fatalForRun: false }],
    ['503 without body', restException(503), { code: 'provider_unavailable', retryable: true, fatalForRun: false }],
    ['other 4xx', restException(400, 21205), { code: 'provider_rejected', retryable: false, fatalForRun: false }],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { code: 'provider_unreachable', retryable: true, fatalForRun: false }],
    [
      'AggregateError of ECONNREFUSED (IPv4 + IPv6)',
      new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })], 'fail'),
      { code: 'provider_unreachable', retryable: true, fatalForRun: false },
    ],
    ['axios timeout', Object.assign(new Error('timeout of 100ms exceeded'), { code: 'ECONNABORTED' }), { code: 'provider_timeout', retryable: true, fatalForRun: false }],
    ['reset (in cause)', new Error('socket hang up', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }), { code: 'provider_timeout', retryable: true, fatalForRun: false }],
    ['a bug', new TypeError('cannot read x of undefined'), { code: 'provider_error', retryable: false, fatalForRun: false }],
  ];
  it.each(table)('%s', (_name, err, expected) => {
    const classified = classifyProviderError(err);
    expect(classified).toBeInstanceOf(ProviderError);
    expect({ code: classified.code, retryable: classified.retryable, fatalForRun: classified.fatalForRun }).toEqual(expected);
    expect(classified.message).not.toBe('');
    expect(classified.he).toMatch(/[\u0590-\u05FF]/);
  });

  it('keeps the provider status and code for the logs', () => {
    const classified = classifyProviderError(restException(400, 21211, "Invalid 'To' Phone Number"));
    expect(classified.providerStatus).toBe(400);
    expect(classified.providerCode).toBe(21211);
    expect(classified.message).toContain('21211');
  });

  it('passes a ProviderError through unchanged', () => {
    const once = classifyProviderError(restException(429, 20429));
    expect(classifyProviderError(once)).toBe(once);
  });

  it('says which failures may hide a created call', () => {
    expect(mayHaveReachedProvider(classifyProviderError(Object.assign(new Error('t'), { code: 'ECONNABORTED' })))).toBe(true);
    expect(mayHaveReachedProvider(classifyProviderError(restException(500)))).toBe(true);
    expect(mayHaveReachedProvider(classifyProviderError(Object.assign(new Error('r'), { code: 'ECONNREFUSED' })))).toBe(false);
    expect(mayHaveReachedProvider(classifyProviderError(restException(429, 20429)))).toBe(false);
  });

  it('recognises not-found', () => {
    expect(isNotFound(restException(404, 20404))).toBe(true);
    expect(isNotFound(restException(500))).toBe(false);
  });
});
