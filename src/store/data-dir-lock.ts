/**
 * PGlite must never be opened by two processes: the second silently loses the first one's
 * writes. A lock file holding the owner's pid guards the folder; a lock left by a dead process
 * (kill -9) is taken over, a live one is refused with a clear error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DataDirLockedError } from '../domain/errors.ts';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the folder's lock or throws {@link DataDirLockedError}. Returns the release function. */
export function lockDataDir(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const lockPath = path.join(dir, 'ocq.lock');
  for (let tries = 0; tries < 3; tries++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(lockPath, 'utf8') === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(fs.readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new DataDirLockedError(dir, String(holder));
      }
      // Stale (its process is gone) or ours: remove and try again.
      fs.rmSync(lockPath, { force: true });
    }
  }
  throw new DataDirLockedError(dir, 'unknown');
}
