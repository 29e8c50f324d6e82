/**
 * One line per thing that happens, on stdout: `<ISO time> <level> <what> key=value …`.
 * Plain text rather than JSON: an example read by people first, and by the test (which
 * waits for "joined" and "event stream open" lines).
 */
export type Level = 'info' | 'warn' | 'error'

export interface Log {
  info: (message: string, fields?: Record<string, unknown>) => void
  warn: (message: string, fields?: Record<string, unknown>) => void
  error: (message: string, fields?: Record<string, unknown>) => void
}

function line (level: Level, message: string, fields: Record<string, unknown> = {}): string {
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
  return [new Date().toISOString(), level, message, ...rest].join(' ')
}

export function createLog (write: (text: string) => void = text => { process.stdout.write(text) }): Log {
  return {
    info: (message, fields) => { write(line('info', message, fields) + '\n') },
    warn: (message, fields) => { write(line('warn', message, fields) + '\n') },
    error: (message, fields) => { write(line('error', message, fields) + '\n') }
  }
}

/** The message of anything thrown, with its cause (fetch puts ECONNREFUSED there). */
export function errorText (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return err.message + cause
}
