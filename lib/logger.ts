import pino from 'pino';

export type Logger = pino.Logger;

/** Structured logs to stderr; level from CMDOP_LOG_LEVEL (default info). */
export function createLogger(name: string, level = process.env.CMDOP_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
