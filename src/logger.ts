import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One structured logger for the process; modules take `logger.child({ module })`. Lines are
 * written synchronously: pino's default hands every line to the libuv thread pool, which cost
 * `ocq serve` about 0.1 ms of CPU per request at one line per request (measured: 0.54 → 0.42 ms
 * per GET). A line is also never lost to a crash right after it was logged.
 */
export function createLogger(level: string = process.env.OCQ_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true }));
}

/** A silent logger for tests that do not inspect log lines. */
export const silentLogger: Logger = pino({ level: 'silent' });
