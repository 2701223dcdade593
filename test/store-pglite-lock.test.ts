/**
 * The embedded database must never be opened by two processes (the second would silently lose the
 * first one's writes): a lock file in the data folder refuses a second process with a clear error,
 * and a lock left by a process that died (kill -9) is taken over.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { openStore, type Store } from '../src/store/database.ts';
import { DataDirLockedError } from '../src/domain/errors.ts';
import { lockDataDir } from '../src/store/data-dir-lock.ts';
import { ROOT, TMP_DIR } from './support/paths.ts';
import { killChild, spawnNode, spawnTs, type Child } from './support/processes.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/open-data-dir.ts');
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/**
 * A data folder holding an existing, migrated database. Made from the suite's template dump:
 * an initdb on disk costs ~10 s on two busy cores, and the lock does not depend on it.
 * (`openStore({ dataDir })` keeps the database in `<dataDir>/pglite`.)
 */
async function tempDataDir(): Promise<string> {
  const dir = path.join(TMP_DIR, `pglite-lock-${process.pid}-${randomBytes(4).toString('hex')}`);
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(dir, { recursive: true });
  const template = new Blob([fs.readFileSync(inject('ocqTemplates').pgliteTemplateFile)]);
  const pglite = await PGlite.create(path.join(dir, 'pglite'), { loadDataDir: template });
  await pglite.close();
  expect(fs.existsSync(path.join(dir, 'ocq.lock'))).toBe(false);
  return dir;
}

function child(c: Child): Child {
  cleanups.push(() => killChild(c, 'SIGKILL'));
  return c;
}

async function openHere(dir: string): Promise<Store> {
  const store = await openStore({ dataDir: dir });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await store.close();
  });
  const close = store.close.bind(store);
  return {
    ...store,
    async close() {
      closed = true;
      await close();
    },
  };
}

describe('embedded data folder lock', () => {
  it('a second open of the same folder in one process is refused, and the first keeps its lock', () => {
    const dir = fs.mkdtempSync(path.join(TMP_DIR, 'lock-same-'));
    const release = lockDataDir(dir);
    try {
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
      expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8')).toBe(String(process.pid));
    } finally {
      release();
    }
    expect(fs.existsSync(path.join(dir, 'ocq.lock'))).toBe(false);
    lockDataDir(dir)();
  });

  it('a second process is refused with DataDirLockedError and a clear message while the first holds the folder', async () => {
    const dir = await tempDataDir();
    const first = await openHere(dir);
    await sql`CREATE TABLE mine (v text)`.execute(first.db);
    await sql`INSERT INTO mine VALUES ('first process')`.execute(first.db);
    expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8').trim()).toBe(String(process.pid));

    // A plain second process opening the folder, and the real CLI (`ocq migrate`), at once.
    const second = child(spawnTs(FIXTURE, [dir, 'once']));
    const cli = child(spawnNode([path.join(ROOT, 'bin/ocq.js'), 'migrate'], { OCQ_DATA_DIR: dir, DATABASE_URL: undefined, OCQ_LOG_LEVEL: 'silent' }));
    expect(await second.exited, second.stderr()).toBe(2);
    const [status, message] = second.stdout().split('\n');
    expect(status).toBe('REFUSED DataDirLockedError data_dir_locked');
    expect(message).toContain(`the data folder ${dir} is already open in process ${process.pid}`);
    expect(message).toMatch(/DATABASE_URL/);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain(`ocq: the data folder ${dir} is already open in process ${process.pid}`);

    // The first process is unharmed and still the owner.
    const { rows } = await sql<{ v: string }>`SELECT v FROM mine`.execute(first.db);
    expect(rows).toEqual([{ v: 'first process' }]);
    expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8').trim()).toBe(String(process.pid));

    // Closing releases the folder.
    await first.close();
    expect(fs.existsSync(path.join(dir, 'ocq.lock'))).toBe(false);
  });

  it('a lock left by a killed process (kill -9) is taken over, and its committed data is there', async () => {
    const dir = await tempDataDir();
    const holder = child(spawnTs(FIXTURE, [dir, 'hold']));
    await holder.waitFor(/OPEN \d+\n/);
    const holderPid = Number(/OPEN (\d+)/.exec(holder.stdout())![1]);
    expect(holderPid).toBe(holder.proc.pid);
    expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8').trim()).toBe(String(holderPid));
    // While it lives, this process is refused too.
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);

    await killChild(holder, 'SIGKILL');
    expect(holder.proc.signalCode).toBe('SIGKILL');
    // The stale lock is still on disk: nobody cleaned up.
    expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8').trim()).toBe(String(holderPid));

    const store = await openHere(dir);
    expect(fs.readFileSync(path.join(dir, 'ocq.lock'), 'utf8').trim()).toBe(String(process.pid));
    const { rows } = await sql<{ pid: number }>`SELECT pid FROM held_by`.execute(store.db);
    expect(rows).toEqual([{ pid: holderPid }]);
  });
});
