/**
 * Phone normalisation to E.164, pure. libphonenumber-js does the parsing in the business's
 * default region; the old system's Israeli shorthands are applied first so its clients' data
 * keeps working: `0XXXXXXXXX`, `972…` (no plus) and `5XXXXXXXX` (no trunk zero) → `+972…`.
 *
 * @example
 * normalisePhone('050-123-4567', 'IL'); // { ok: true, e164: '+972501234567' }
 */
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

export type PhoneRejection = 'phone_missing' | 'phone_invalid_characters' | 'phone_invalid';
export type PhoneResult = { ok: true; e164: string } | { ok: false; reason: PhoneRejection };

/** A business's region when none is known (the schema's default too: migrations/001). */
export const DEFAULT_REGION = 'IL';

/** What a stored phone must look like (the leads.phone_e164 CHECK). */
export const E164_PATTERN = /^\+[1-9][0-9]{6,14}$/;

/** Digits, a leading plus or `00`, and the separators people type. Letters (and `ext.`) are refused. */
const TYPED_PHONE = /^\+?[\d\s().\-/]*$/;
const SEPARATORS = /[\s().\-/]/g;

export function isSupportedRegion(region: string): region is CountryCode {
  return /^[A-Z]{2}$/.test(region) && isSupportedCountry(region);
}

/** The old system's Israeli rules, on digits only (no separators). */
function applyIsraeliShorthands(digits: string): string {
  if (/^972[1-9]\d{7,8}$/.test(digits)) return `+${digits}`;
  if (/^5\d{8}$/.test(digits)) return `0${digits}`;
  return digits;
}

/**
 * Israeli mobiles (`05X…`, `+9725X…`, `9725X…`, `5X…`) are most of every import, and parsing costs
 * microseconds each. For them the library's verdict is known: its metadata reads any 9-digit
 * national number starting with 5 as a valid Israeli number. That is checked against the library
 * once, at first use; if it ever disagrees (other metadata), every number goes through the library.
 */
const ISRAELI_MOBILE = /^(?:\+972|972|0)?(5\d{8})$/;
let israeliMobileShortcut: boolean | undefined;

function libraryAgreesOnIsraeliMobiles(): boolean {
  for (let second = 0; second <= 9; second++) {
    for (const rest of ['0000000', '1234567', '9999999']) {
      const national = `5${second}${rest}`;
      for (const [input, region] of [[`0${national}`, 'IL'], [`+972${national}`, undefined]] as const) {
        const parsed = parsePhoneNumberFromString(input, region);
        if (!parsed?.isValid() || parsed.number !== `+972${national}`) return false;
      }
    }
  }
  return true;
}

export function normalisePhone(raw: string, defaultRegion: string): PhoneResult {
  const trimmed = raw.trim();
  if (trimmed === '') return { ok: false, reason: 'phone_missing' };
  if (trimmed.length > 40 || !TYPED_PHONE.test(trimmed)) return { ok: false, reason: 'phone_invalid_characters' };
  let candidate = trimmed.replace(SEPARATORS, '');
  if (defaultRegion === 'IL' || candidate.startsWith('+972')) {
    const mobile = ISRAELI_MOBILE.exec(candidate)?.[1];
    if (mobile !== undefined && (candidate.startsWith('+') || defaultRegion === 'IL')) {
      israeliMobileShortcut ??= libraryAgreesOnIsraeliMobiles();
      if (israeliMobileShortcut) return { ok: true, e164: `+972${mobile}` };
    }
  }
  if (defaultRegion === 'IL' && !candidate.startsWith('+')) candidate = applyIsraeliShorthands(candidate);
  const region = isSupportedRegion(defaultRegion) ? defaultRegion : undefined;
  const parsed = parsePhoneNumberFromString(candidate, region);
  if (!parsed || !parsed.isValid() || !E164_PATTERN.test(parsed.number)) return { ok: false, reason: 'phone_invalid' };
  return { ok: true, e164: parsed.number };
}
