/**
 * Waiting between reconnects: doubling from `min` to `max`, with jitter so that a bridge
 * and others do not all come back at the same instant after a daemon or server restart.
 * reset() once a connection proved good.
 */
export class Backoff {
  private attempt = 0

  constructor (private readonly min = 250, private readonly max = 15_000) {}

  /** The next delay, ms. */
  next (): number {
    const base = Math.min(this.max, this.min * 2 ** this.attempt)
    this.attempt++
    return Math.round(base / 2 + Math.random() * base / 2)
  }

  reset (): void {
    this.attempt = 0
  }

  /** Waits the next delay; resolves early (false) when `signal` aborts. */
  async wait (signal: AbortSignal): Promise<boolean> {
    return await sleep(this.next(), signal)
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export async function sleep (ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false
  return await new Promise(resolve => {
    const done = (slept: boolean): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(slept)
    }
    const onAbort = (): void => { done(false) }
    const timer = setTimeout(() => { done(true) }, ms)
    signal.addEventListener('abort', onAbort)
  })
}
