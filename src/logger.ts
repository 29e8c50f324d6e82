import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'
import type { LogLevel } from './config.js'

export type { Logger }

/**
 * Structured JSON logs when the output is a file or a pipe (testnets, services,
 * log collectors); readable coloured lines on a terminal. pino-pretty runs in
 * this thread (sync) so the last lines before an exit are never lost.
 */
export function createLogger (level: LogLevel, destination: NodeJS.WritableStream & { isTTY?: boolean, fd?: number } = process.stdout): Logger {
  if (destination.isTTY === true) {
    return pino({ level }, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: destination.fd ?? 1 }))
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: destination.fd ?? 1, sync: true }))
}
