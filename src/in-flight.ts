/**
 * Work a service (or a part of one) started and must see finished before its
 * stop() resolves, so that nothing it does runs on after the store below it
 * closed: sender passes, received batches, gossip validations, catch-ups,
 * history streams. The service stops starting new work, then awaits idle().
 */
export class InFlight {
  private readonly tasks = new Set<Promise<void>>()

  /** Keeps `task` until it settles; returns it as it is (its result or its error is the caller's). */
  track<T> (task: Promise<T>): Promise<T> {
    const settled = task.then(() => {}, () => {})
    this.tasks.add(settled)
    void settled.then(() => { this.tasks.delete(settled) })
    return task
  }

  /** Resolves once every task tracked, including any tracked meanwhile, has settled. */
  async idle (): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks])
  }
}
