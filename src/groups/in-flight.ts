/**
 * Work a part of the group service started and must see finished before its
 * stop() resolves: gossip validations, pairwise envelopes being taken in,
 * catch-ups, history streams being served. Each part keeps one InFlight and
 * drains it in stop(), after it stopped starting new work.
 */
export class InFlight {
  private readonly tasks = new Set<Promise<void>>()

  /** Keeps `task` until it settles; returns it as it is (its result or its error). */
  add<T> (task: Promise<T>): Promise<T> {
    const settled = task.then(() => {}, () => {})
    this.tasks.add(settled)
    void settled.then(() => { this.tasks.delete(settled) })
    return task
  }

  /** Resolves once every task added, including any added meanwhile, has settled. */
  async drain (): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks])
  }
}
