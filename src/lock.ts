/**
 * Runs async work one at a time per key. libsignal loads a record, advances
 * it and saves it back; two such operations on one session at once would
 * each save their own copy and one ratchet step would be lost.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  async run<T> (key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const result = previous.then(work)
    const tail = result.then(() => {}, () => {})
    this.tails.set(key, tail)
    try {
      return await result
    } finally {
      // forget the key once nothing is queued behind this run, so the map stays small
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }
}
