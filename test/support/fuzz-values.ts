/**
 * Bad values for the fuzz suite, chosen from a property's JSON schema (as published in
 * /openapi.json) so that each one is certainly invalid for it. Fastify's validator coerces types
 * (`coerceTypes: 'array'`): a number is a fine string and `"1"` a fine integer, so the "wrong
 * type" values here are the ones no coercion can rescue (objects, non-numeric text).
 */
import { newId } from '../../src/store/ids.ts';

export interface JsonSchema {
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  nullable?: boolean;
  maxProperties?: number;
}

export const SQL_LIKE = ["'; DROP TABLE runs; --", "1' OR '1'='1", 'x"); DELETE FROM leads WHERE ("1"="1', '$1::uuid', 'NULL'];
export const RTL_AND_UNICODE = ['\u202Eשלום\u202C', 'הרצה ١٢٣', '𝕏𝕐ℤ😀', '\uFEFF', '\u0000'];
export const HUGE_STRING = 'ש'.repeat(1_000_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function allowedEnum(schema: JsonSchema): unknown[] | undefined {
  if (schema.enum) return schema.enum;
  if (schema.anyOf?.every((branch) => branch.enum)) return schema.anyOf.flatMap((branch) => branch.enum ?? []);
  return undefined;
}

/** Does `value` pass the string constraints we model (format uuid, pattern, enum)? */
function stringPasses(schema: JsonSchema, value: string): boolean {
  if (schema.format === 'uuid' && !UUID.test(value)) return false;
  if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) return false;
  const allowed = allowedEnum(schema);
  if (allowed && !allowed.includes(value)) return false;
  if (schema.maxLength !== undefined && [...value].length > schema.maxLength) return false;
  if (schema.minLength !== undefined && [...value].length < schema.minLength) return false;
  return true;
}

/** Values certainly invalid for this property, each with a label; none for shapes we do not model (free anyOf). */
export function badValuesFor(schema: JsonSchema): Array<[string, unknown]> {
  const bad: Array<[string, unknown]> = [];
  const enumValues = allowedEnum(schema);
  const type = schema.type ?? (enumValues ? 'string' : undefined);
  switch (type) {
    case 'string': {
      bad.push(['object for a string', { $ne: null }]);
      if (schema.maxLength !== undefined) {
        bad.push(['one character too long', 'x'.repeat(schema.maxLength + 1)]);
        bad.push(['a huge string', HUGE_STRING]);
      }
      if (schema.minLength) bad.push(['empty', '']);
      // A nullable field takes "" as null (the validator coerces it), so "" is not bad there.
      for (const value of [...SQL_LIKE, ...RTL_AND_UNICODE, '-1', '99999999999999999999', ...(schema.nullable ? [] : [''])]) {
        if (!stringPasses(schema, value)) bad.push([`"${value.slice(0, 20)}"`, value]);
      }
      break;
    }
    case 'integer':
    case 'number': {
      bad.push(['text for a number', 'twelve'], ['object for a number', { n: 1 }]);
      if (type === 'integer') bad.push(['a fraction', 2.5]);
      if (schema.minimum !== undefined) bad.push(['below the minimum', schema.minimum - 1], ['hugely negative', -1e308]);
      if (schema.maximum !== undefined) bad.push(['above the maximum', schema.maximum + 1], ['enormous', 1e308]);
      break;
    }
    case 'boolean':
      bad.push(['text for a boolean', 'maybe'], ['object for a boolean', {}]);
      break;
    case 'array': {
      bad.push(['object for an array', { 0: 'x' }]);
      if (schema.maxItems !== undefined && schema.items) bad.push(['a huge array', Array.from({ length: schema.maxItems + 1 }, () => sampleFor(schema.items!))]);
      if (schema.minItems) bad.push(['an empty array', []]);
      if (schema.items?.type === 'string') bad.push(['nested arrays', [[['x']]]], ['objects for strings', [{ id: 1 }]]);
      if (schema.items?.type === 'object') bad.push(['strings for objects', ['x']], ['nulls for objects', [null]]);
      break;
    }
    case 'object':
      bad.push(['text for an object', 'x'], ['array for an object', [1, 2]]);
      if (schema.maxProperties !== undefined) {
        bad.push(['too many properties', Object.fromEntries(Array.from({ length: schema.maxProperties + 1 }, (_, i) => [`k${i}`, i]))]);
      }
      break;
  }
  return bad;
}

/** A value that passes `schema` (for filling huge arrays). */
export function sampleFor(schema: JsonSchema): unknown {
  if (schema.format === 'uuid') return newId();
  if (schema.type === 'object') {
    return Object.fromEntries((schema.required ?? []).map((key) => [key, sampleFor(schema.properties?.[key] ?? {})]));
  }
  if (schema.type === 'integer' || schema.type === 'number') return schema.minimum ?? 1;
  if (schema.type === 'boolean') return true;
  return 'x';
}

const omit = (object: Record<string, unknown>, key: string): Record<string, unknown> => Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));

/**
 * The valid body with one thing broken at a time: each required field left out, each field given
 * each of its bad values, and the same one level down for arrays of objects (`leads[0].phone`).
 */
export function* corruptedBodies(schema: JsonSchema, valid: Record<string, unknown>): Generator<[string, unknown]> {
  for (const key of schema.required ?? []) yield [`without ${key}`, omit(valid, key)];
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    for (const [label, value] of badValuesFor(property)) yield [`${key}: ${label}`, { ...valid, [key]: value }];
    const items = valid[key];
    if (property.type === 'array' && property.items?.type === 'object' && Array.isArray(items) && items.length > 0) {
      const item = items[0] as Record<string, unknown>;
      for (const inner of property.items.required ?? []) yield [`${key}[0] without ${inner}`, { ...valid, [key]: [omit(item, inner)] }];
      for (const [inner, innerSchema] of Object.entries(property.items.properties ?? {})) {
        for (const [label, value] of badValuesFor(innerSchema)) yield [`${key}[0].${inner}: ${label}`, { ...valid, [key]: [{ ...item, [inner]: value }] }];
      }
    }
  }
}
