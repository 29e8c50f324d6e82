import { OctetError } from './errors.js'

/**
 * The run of a network service from its start() to its stop(): start and
 * stop take turns in the order they were called, one signal aborts every
 * operation of the run when it stops, and an operation cut short says why
 * with one vocabulary (the caller's reason, UNAVAILABLE, TIMEOUT). The
 * mailbox and prekey services each keep one.
 */
export class ServiceRun {
  private controller = new AbortController()
  private lifecycle: Promise<void> = Promise.resolve()
  private started = false

  /** `name` as errors say it: "the mailbox service" */
  constructor (private readonly name: string) {}

  get running (): boolean {
    return this.started
  }

  /** Aborted when the service stops; a new one for each run. */
  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** Runs `step` (a start or a stop) once every step called before it is done. */
  async serially (step: () => Promise<void>): Promise<void> {
    const run = this.lifecycle.then(step)
    this.lifecycle = run.catch(() => {})
    await run
  }

  /** A new run: running, with a fresh signal. */
  begin (): void {
    this.controller = new AbortController()
    this.started = true
  }

  /** Ends the run: no longer running, and its operations aborted with UNAVAILABLE, which is returned. */
  end (): OctetError {
    this.started = false
    const stopped = this.stoppedError()
    this.controller.abort(stopped)
    return stopped
  }

  stoppedError (): OctetError {
    return new OctetError('UNAVAILABLE', `${this.name} stopped`)
  }

  assertRunning (): void {
    if (!this.started) throw new OctetError('UNAVAILABLE', `${this.name} is not running`)
  }

  /** Aborted by the timeout, the caller's signal, or the end of the run. */
  signalFor (timeout: AbortSignal, signal?: AbortSignal): AbortSignal {
    return AbortSignal.any(signal == null ? [timeout, this.controller.signal] : [timeout, this.controller.signal, signal])
  }

  /** Why an operation was cut short, if it was: the caller's reason, UNAVAILABLE or TIMEOUT. */
  abortError (signal: AbortSignal | undefined, timeout: AbortSignal, what: string): unknown {
    if (signal?.aborted === true) return signal.reason
    if (this.controller.signal.aborted) return new OctetError('UNAVAILABLE', `${what}: ${this.name} stopped`)
    if (timeout.aborted) return new OctetError('TIMEOUT', `${what} timed out`)
    return undefined
  }
}
