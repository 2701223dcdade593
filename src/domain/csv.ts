/**
 * CSV, pure: an RFC 4180 parser (quoted fields, doubled quotes, CRLF or LF, newlines inside
 * quotes, a UTF-8 BOM) and the mapping of a lead file's header row to lead fields.
 *
 * @example
 * const rows = parseCsv('\uFEFFטלפון,שם\n050-123-4567,"כהן, דנה"\n');
 * const leads = csvRowsToLeads(rows); // [{ phone: '050-123-4567', name: 'כהן, דנה', attributes: {} }]
 */
import { ValidationError } from './errors.ts';

const BOM = '\uFEFF';
const DELIMITERS = [',', ';', '\t'] as const;
type Delimiter = (typeof DELIMITERS)[number];

/** Excel writes `;` in some locales and tab in "Unicode text": pick the commonest one outside quotes in the first line. */
export function detectDelimiter(text: string): Delimiter {
  const counts = new Map<Delimiter, number>(DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === '\n' || char === '\r')) break;
    else if (!quoted && counts.has(char as Delimiter)) counts.set(char as Delimiter, (counts.get(char as Delimiter) ?? 0) + 1);
  }
  let best: Delimiter = ',';
  for (const [delimiter, count] of counts) if (count > (counts.get(best) ?? 0)) best = delimiter;
  return best;
}

/**
 * Parses CSV text into rows of fields. Blank lines are dropped. A quote inside an unquoted field
 * is kept as a character (lenient, like spreadsheet apps); an unterminated quoted field is an error.
 *
 * @throws ValidationError `field: 'file'` for an unterminated quote.
 */
export function parseCsv(input: string, delimiter?: Delimiter): string[][] {
  const text = input.startsWith(BOM) ? input.slice(1) : input;
  const separator = delimiter ?? detectDelimiter(text);
  const rows: string[][] = [];
  const length = text.length;
  let row: string[] = [];
  let line = 1;
  let i = 0;
  while (i < length) {
    let field = '';
    if (text[i] === '"') {
      const startLine = line;
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close === -1) {
          throw new ValidationError(
            { en: `file: unterminated quoted field starting on line ${startLine}`, he: `file: שדה במירכאות שלא נסגר, החל משורה ${startLine}` },
            { field: 'file', line: startLine },
          );
        }
        const chunk = text.slice(i, close);
        line += countNewlines(chunk);
        field += chunk;
        if (text[close + 1] === '"') {
          field += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
    }
    // Unquoted text (or stray text after a closing quote) up to the next separator or line end.
    let end = i;
    while (end < length) {
      const char = text[end];
      if (char === separator || char === '\n' || char === '\r') break;
      end++;
    }
    field += text.slice(i, end);
    row.push(field);
    i = end;
    const char = text[i];
    if (char === separator) {
      i++;
      if (i === length) row.push('');
      else continue;
    }
    if (char === '\r' && text[i + 1] === '\n') i++;
    if (char === '\r' || char === '\n') {
      i++;
      line++;
    }
    if (row.length > 1 || row[0] !== '') rows.push(row);
    row = [];
  }
  if (row.length > 0 && (row.length > 1 || row[0] !== '')) rows.push(row);
  return rows;
}

function countNewlines(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return count;
}

export type LeadField = 'phone' | 'name' | 'first_name' | 'last_name' | 'external_id';

/** Header aliases, compared after {@link headerKey}. Unknown headers become attributes. */
const HEADER_ALIASES: Record<LeadField, readonly string[]> = {
  phone: ['phone', 'phonenumber', 'phoneno', 'mobile', 'mobilephone', 'cell', 'cellphone', 'tel', 'telephone', 'number',
    'טלפון', 'מספרטלפון', 'נייד', 'טלפוןנייד', 'פלאפון', 'סלולרי', 'מספר'],
  name: ['name', 'fullname', 'contact', 'contactname', 'customer', 'customername', 'שם', 'שםמלא', 'שםלקוח', 'שםהלקוח', 'לקוח'],
  first_name: ['firstname', 'givenname', 'first', 'שםפרטי'],
  last_name: ['lastname', 'surname', 'familyname', 'last', 'שםמשפחה'],
  external_id: ['externalid', 'extid', 'id', 'crmid', 'customerid', 'leadid', 'מזהה', 'מזההחיצוני', 'מספרלקוח'],
};

/** Case, spaces, underscores, dashes, dots and Hebrew punctuation do not matter in a header. */
export function headerKey(header: string): string {
  return header.trim().toLowerCase().replace(/[\s_\-.'"׳״]/g, '');
}

const aliasToField = new Map<string, LeadField>(
  (Object.entries(HEADER_ALIASES) as Array<[LeadField, readonly string[]]>).flatMap(([field, aliases]) => aliases.map((alias) => [alias, field] as const)),
);

export interface CsvLead {
  phone: string;
  name?: string;
  external_id?: string;
  attributes: Record<string, string>;
}

export interface CsvColumns {
  /** Column index of each recognised field. */
  fields: Partial<Record<LeadField, number>>;
  /** Other columns: index → attribute name (the header as written). */
  attributes: Array<{ index: number; name: string }>;
}

/** Maps a header row; the first column naming a field wins, repeats become attributes. */
export function mapLeadColumns(header: readonly string[]): CsvColumns {
  const fields: Partial<Record<LeadField, number>> = {};
  const attributes: Array<{ index: number; name: string }> = [];
  header.forEach((raw, index) => {
    const field = aliasToField.get(headerKey(raw));
    if (field && fields[field] === undefined) fields[field] = index;
    else if (raw.trim() !== '') attributes.push({ index, name: raw.trim() });
  });
  return { fields, attributes };
}

/**
 * Turns parsed rows (header first) into lead inputs, one per data row, in order: row `n` of the
 * result is data row `n` (index = its position, not its line). Empty cells are left out.
 *
 * @throws ValidationError `field: 'file'` when there is no header or no phone column.
 */
export function csvRowsToLeads(rows: readonly string[][]): CsvLead[] {
  const [header, ...data] = rows;
  if (!header) throw new ValidationError({ en: 'file: the CSV is empty', he: 'file: קובץ ה-CSV ריק' }, { field: 'file' });
  const { fields, attributes } = mapLeadColumns(header);
  if (fields.phone === undefined) {
    throw new ValidationError(
      { en: 'file: no phone column in the header row (expected e.g. "phone" or "טלפון")', he: 'file: אין עמודת טלפון בשורת הכותרת (למשל "phone" או "טלפון")' },
      { field: 'file', columns: header },
    );
  }
  const cell = (row: readonly string[], index: number | undefined): string | undefined => {
    if (index === undefined) return undefined;
    const value = row[index]?.trim();
    return value === '' ? undefined : value;
  };
  return data.map((row) => {
    const lead: CsvLead = { phone: cell(row, fields.phone) ?? '', attributes: {} };
    const fullName = cell(row, fields.name) ?? ([cell(row, fields.first_name), cell(row, fields.last_name)].filter(Boolean).join(' ') || undefined);
    if (fullName !== undefined) lead.name = fullName;
    const externalId = cell(row, fields.external_id);
    if (externalId !== undefined) lead.external_id = externalId;
    for (const { index, name } of attributes) {
      const value = cell(row, index);
      if (value !== undefined) lead.attributes[name] = value;
    }
    return lead;
  });
}
