import { pino, type Logger } from 'pino';

export type { Logger };

/** One structured logger for the process; modules take `logger.child({ module })`. */
export function createLogger(level: string = process.env.OCQ_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A silent logger for tests that do not inspect log lines. */
export const silentLogger: Logger = pino({ level: 'silent' });
