import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const TMP_DIR = path.join(ROOT, '.tmp', 'test');
export const PGLITE_TEMPLATE_FILE = path.join(TMP_DIR, 'pglite-template.tar.gz');
export const PG_TEMPLATE = 'ocq_template';
