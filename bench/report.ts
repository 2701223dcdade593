/** The benchmark table: one row per measure, ocq beside the baseline, with the target. */

export interface Row {
  measure: string;
  unit: string;
  /** The figure for ocq (null: not measured, see note). */
  ocq: number | null;
  /** The figure for the baseline (null: not meaningful for this measure). */
  baseline: number | null;
  /** Human-readable target, e.g. "< 25 ms"; "" when the row is informational. */
  target: string;
  /** Whether ocq meets the target; null when the row has no target or was not measured. */
  pass: boolean | null;
  note?: string;
}

function cell(value: number | null, unit: string): string {
  if (value === null || Number.isNaN(value)) return '—';
  const text = Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 0 : 1);
  return unit ? `${text} ${unit}` : text;
}

/** A plain-text table (also valid Markdown). */
export function formatTable(rows: readonly Row[]): string {
  const header = ['measure', 'ocq', 'baseline', 'target', 'pass?'];
  const body = rows.map((r) => [
    r.measure,
    cell(r.ocq, r.unit),
    cell(r.baseline, r.unit),
    r.target || '—',
    r.pass === null ? '—' : r.pass ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  const notes = rows.filter((r) => r.note).map((r) => `  - ${r.measure}: ${r.note}`);
  return [line(header), rule, ...body.map(line), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}
