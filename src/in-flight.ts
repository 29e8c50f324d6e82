/**
 * Work a service started and has not finished: its stop() waits for it, so
 * nothing it does runs on after the store below it closed.
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>()

  /** Runs `work` as one of the tasks idle() waits for; its outcome is the caller's. */
  async track<T> (work: Promise<T>): Promise<T> {
    const settled = work.then(() => {}, () => {})
    this.running.add(settled)
    try {
      return await work
    } finally {
      this.running.delete(settled)
    }
  }

  /** Resolves once no task is running, including tasks started meanwhile. */
  async idle (): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running)
  }
}
