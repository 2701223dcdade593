/**
 * Tenant code cannot reach an unscoped look-up. The store names every unscoped function after its
 * one purpose (`…ForAuth`, `…ForSecurityLog`, `…ForAdmin`); this walks the source and checks each
 * such name is used only where that purpose lives, and that HTTP code builds no queries of its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/paths.ts';

const SRC = path.join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Where each kind of unscoped look-up may be used (besides the store module defining it). */
const ALLOWED: Record<string, readonly string[]> = {
  ForAuth: ['http/auth.ts'],
  ForSecurityLog: ['http/security.ts'],
  ForAdmin: ['http/routes/admin.ts', 'admin/service.ts'],
};

describe('tenant scoping in the source', () => {
  const files = sourceFiles(SRC).map((file) => ({ rel: path.relative(SRC, file).split(path.sep).join('/'), text: fs.readFileSync(file, 'utf8') }));

  it('uses each unscoped store function only where its purpose lives', () => {
    const offences: string[] = [];
    for (const { rel, text } of files) {
      if (rel.startsWith('store/')) continue;
      for (const match of text.matchAll(/\b\w+(ForAuth|ForSecurityLog|ForAdmin)\b/g)) {
        const purpose = match[1]!;
        if (!ALLOWED[purpose]!.includes(rel)) offences.push(`${rel}: ${match[0]}`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('builds no SQL in HTTP code: every query goes through a business-scoped store function', () => {
    const offences = files
      .filter(({ rel }) => rel.startsWith('http/') && rel !== 'http/routes/health.ts') // health: SELECT 1
      .filter(({ text }) => /\.(selectFrom|insertInto|updateTable|deleteFrom)\(|\bsql`/.test(text))
      .map(({ rel }) => rel);
    expect(offences).toEqual([]);
  });
});
