/**
 * PGlite must never be opened by two processes: the second silently loses the first one's
 * writes. A lock file holding the owner's pid guards the folder. A lock left by a dead process
 * (kill -9) is taken over; a live one is refused with a clear error; so is a second open of the
 * same folder inside one process.
 *
 * The lock appears atomically with its pid in it (written to a temp file, then hard-linked into
 * place), so no one can read it half-written; a stale lock is replaced under an exclusive
 * `mkdir`, so two processes replacing the same stale lock cannot delete each other's new one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataDirLockedError } from '../domain/errors.ts';

const lockedHere = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(lockPath: string): number | null {
  try {
    const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Links a pid file into place; false if a lock is already there. */
function tryCreate(lockPath: string): boolean {
  const temp = `${lockPath}.${process.pid}.tmp`;
  fs.writeFileSync(temp, String(process.pid));
  try {
    fs.linkSync(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** Takes the folder's lock or throws {@link DataDirLockedError}. Returns the release function. */
export function lockDataDir(dir: string): () => void {
  const folder = path.resolve(dir);
  if (lockedHere.has(folder)) throw new DataDirLockedError(folder, `${process.pid} (this process)`);
  fs.mkdirSync(folder, { recursive: true });
  const lockPath = path.join(folder, 'ocq.lock');
  const takeoverDir = `${lockPath}.takeover`;
  for (let tries = 0; tries < 5; tries++) {
    if (tryCreate(lockPath)) {
      lockedHere.add(folder);
      return () => {
        lockedHere.delete(folder);
        if (readHolder(lockPath) === process.pid) fs.rmSync(lockPath, { force: true });
      };
    }
    const holder = readHolder(lockPath);
    if (holder !== null && holder !== process.pid && processAlive(holder)) throw new DataDirLockedError(folder, String(holder));
    // Stale: its process is gone. Replace it under an exclusive takeover marker.
    try {
      fs.mkdirSync(takeoverDir);
    } catch {
      continue; // someone else is taking it over: look again
    }
    try {
      if (readHolder(lockPath) === holder) fs.rmSync(lockPath, { force: true });
    } finally {
      fs.rmdirSync(takeoverDir);
    }
  }
  throw new DataDirLockedError(folder, String(readHolder(lockPath) ?? 'unknown'));
}
