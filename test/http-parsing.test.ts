/** The pure parts under the HTTP API: phone normalisation, the CSV parser and header mapping, roles, languages. */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { describe, expect, it } from 'vitest';
import { csvRowsToLeads, detectDelimiter, mapLeadColumns, parseCsv } from '../src/domain/csv.ts';
import { ValidationError } from '../src/domain/errors.ts';
import { normalisePhone } from '../src/domain/phone.ts';
import { mayManageRole, roleAtLeast } from '../src/domain/roles.ts';
import { preferredLanguage } from '../src/http/errors.ts';

describe('normalisePhone', () => {
  it.each([
    ['050-123-4567', 'IL', '+972501234567'],
    ['0501234567', 'IL', '+972501234567'],
    ['050 123 4567', 'IL', '+972501234567'],
    ['(050) 123-4567', 'IL', '+972501234567'],
    ['+972 50-123-4567', 'IL', '+972501234567'],
    ['+972501234567', 'IL', '+972501234567'],
    ['972501234567', 'IL', '+972501234567'], // old rule: 972… without the plus
    ['501234567', 'IL', '+972501234567'], // old rule: 5XXXXXXXX without the trunk zero
    ['00972501234567', 'IL', '+972501234567'], // international dialling prefix
    ['  052.765.4321 ', 'IL', '+972527654321'],
    ['03-1234567', 'IL', '+97231234567'], // Tel Aviv landline
    ['972-3-1234567', 'IL', '+97231234567'],
    ['+1 212 555 0100', 'IL', '+12125550100'], // a foreign number with its country code
    ['(212) 555-0100', 'US', '+12125550100'],
    ['+972501234567', 'US', '+972501234567'], // +972 is Israel whatever the business region
  ])('%s in %s → %s', (raw, region, e164) => {
    expect(normalisePhone(raw, region)).toEqual({ ok: true, e164 });
  });

  it.each([
    ['', 'phone_missing'],
    ['   ', 'phone_missing'],
    ['abc', 'phone_invalid_characters'],
    ['050-123-4567 ext 5', 'phone_invalid_characters'],
    ["050'; DROP TABLE leads;--", 'phone_invalid_characters'],
    ['٠٥٠١٢٣٤٥٦٧', 'phone_invalid_characters'], // Arabic-Indic digits are refused, not guessed
    ['1234', 'phone_invalid'],
    ['0501234567890123', 'phone_invalid'],
    ['+0501234567', 'phone_invalid'],
    ['9'.repeat(41), 'phone_invalid_characters'],
  ])('%j is refused: %s', (raw, reason) => {
    expect(normalisePhone(raw, 'IL')).toEqual({ ok: false, reason });
  });

  it('972… is read as a Dallas number, not Israel, for a US business (the old rule is Israeli only)', () => {
    const result = normalisePhone('9725551234', 'US');
    expect(result).toEqual({ ok: true, e164: '+19725551234' });
  });

  it('its Israeli-mobile shortcut gives exactly what libphonenumber-js gives', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let i = 0; i < 5000; i++) {
      const national = `5${Math.floor(random() * 1e8).toString().padStart(8, '0')}`;
      const spelled = [`0${national}`, `+972${national}`, `972${national}`, national][i % 4]!;
      const viaLibrary = parsePhoneNumberFromString(spelled.startsWith('972') ? `+${spelled}` : spelled.length === 9 ? `0${spelled}` : spelled, 'IL');
      expect(normalisePhone(spelled, 'IL')).toEqual({ ok: true, e164: viaLibrary!.number });
      expect(viaLibrary!.isValid()).toBe(true);
    }
  });
});

describe('parseCsv', () => {
  it('reads quotes, doubled quotes, separators and newlines inside quotes, CRLF and a BOM', () => {
    const text = '\uFEFFphone,name,note\r\n050-1234567,"כהן, דנה","she said ""שלום""\nthen left"\r\n0521234567,plain,\r\n';
    expect(parseCsv(text)).toEqual([
      ['phone', 'name', 'note'],
      ['050-1234567', 'כהן, דנה', 'she said "שלום"\nthen left'],
      ['0521234567', 'plain', ''],
    ]);
  });

  it('drops blank lines, keeps a last line without newline, and is lenient with a stray quote', () => {
    expect(parseCsv('a,b\n\n1,x"y\n2,z')).toEqual([['a', 'b'], ['1', 'x"y'], ['2', 'z']]);
  });

  it('detects ; and tab separators from the header row', () => {
    expect(detectDelimiter('טלפון;שם\n1;2')).toBe(';');
    expect(detectDelimiter('phone\tname\n')).toBe('\t');
    expect(detectDelimiter('"a;b",c\n')).toBe(',');
    expect(parseCsv('phone;name\n050;"a;b"\n')).toEqual([['phone', 'name'], ['050', 'a;b']]);
  });

  it('rejects an unterminated quoted field, naming the line', () => {
    expect(() => parseCsv('phone,name\n050,"open\n')).toThrow(ValidationError);
    try {
      parseCsv('phone,name\n1,2\n050,"open\n');
    } catch (error) {
      expect((error as ValidationError).details).toMatchObject({ field: 'file', line: 3 });
    }
  });
});

describe('lead columns', () => {
  it('maps Hebrew and English aliases; other columns become attributes', () => {
    const { fields, attributes } = mapLeadColumns(['טלפון', 'שם מלא', 'מזהה', 'עיר', 'Phone']);
    expect(fields).toEqual({ phone: 0, name: 1, external_id: 2 });
    expect(attributes).toEqual([{ index: 3, name: 'עיר' }, { index: 4, name: 'Phone' }]);
    expect(mapLeadColumns(['Mobile Phone', 'Full_Name', 'CRM-ID']).fields).toEqual({ phone: 0, name: 1, external_id: 2 });
  });

  it('joins first and last names, trims cells and leaves empty cells out', () => {
    const leads = csvRowsToLeads([
      ['first name', 'last name', 'tel', 'city', 'notes'],
      [' דנה ', 'כהן', '050-1234567', 'חיפה', ''],
      ['', '', '0521234567', '', ''],
    ]);
    expect(leads).toEqual([
      { phone: '050-1234567', name: 'דנה כהן', attributes: { city: 'חיפה' } },
      { phone: '0521234567', attributes: {} },
    ]);
  });

  it('requires a phone column', () => {
    expect(() => csvRowsToLeads([['name', 'city'], ['a', 'b']])).toThrow(/no phone column/);
    expect(() => csvRowsToLeads([])).toThrow(/empty/);
  });
});

describe('roles', () => {
  it('nest owner ⊇ admin ⊇ agent ⊇ viewer', () => {
    expect(roleAtLeast('owner', 'admin')).toBe(true);
    expect(roleAtLeast('admin', 'agent')).toBe(true);
    expect(roleAtLeast('agent', 'viewer')).toBe(true);
    expect(roleAtLeast('agent', 'admin')).toBe(false);
    expect(roleAtLeast('viewer', 'agent')).toBe(false);
  });

  it('let owners and admins manage roles up to their own, and nobody else manage any', () => {
    expect(mayManageRole('owner', 'owner')).toBe(true);
    expect(mayManageRole('admin', 'admin')).toBe(true);
    expect(mayManageRole('admin', 'owner')).toBe(false);
    expect(mayManageRole('agent', 'viewer')).toBe(false);
  });
});

describe('preferredLanguage', () => {
  it.each([
    [undefined, 'en'],
    ['he', 'he'],
    ['he-IL,he;q=0.9,en-US;q=0.8', 'he'],
    ['en-US,en;q=0.9,he;q=0.8', 'en'],
    ['fr-FR,he;q=0.5', 'he'],
    ['iw', 'he'],
    ['*', 'en'],
    ['he;q=0', 'en'],
    ['garbage;;;q=abc', 'en'],
  ])('%s → %s', (header, lang) => {
    expect(preferredLanguage(header)).toBe(lang);
  });
});
