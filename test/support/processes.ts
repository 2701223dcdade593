/** Child processes for the multi-process suites: real `node` processes running TypeScript via tsx. */
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './paths.ts';

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Resolves when stdout contains `text`; rejects if the process exits first. */
  waitFor(text: string | RegExp): Promise<void>;
}

/** `node --import tsx <script> ...args`, run from the project root. */
export function spawnTs(script: string, args: readonly string[] = [], env: Record<string, string | undefined> = {}): Child {
  return spawnNode(['--import', 'tsx', script, ...args], env);
}

export function spawnNode(args: readonly string[], env: Record<string, string | undefined> = {}): Child {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<{ test: (s: string) => boolean; resolve: () => void; reject: (e: Error) => void }> = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.test(out)) {
        waiters[i]!.resolve();
        waiters.splice(i, 1);
      }
    }
  };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    check();
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    proc.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`process exited (${code ?? signal}) before printing the awaited text.\nstdout: ${out}\nstderr: ${err}`));
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(text) {
      const test = (s: string): boolean => (typeof text === 'string' ? s.includes(text) : text.test(s));
      if (test(out)) return Promise.resolve();
      if (proc.exitCode !== null || proc.signalCode !== null) {
        return Promise.reject(new Error(`process already exited.\nstdout: ${out}\nstderr: ${err}`));
      }
      return new Promise((resolve, reject) => waiters.push({ test, resolve, reject }));
    },
  };
}

/** Kills a child we started (by its own pid) and waits for it to be gone. */
export async function killChild(child: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill(signal);
  await child.exited;
}
