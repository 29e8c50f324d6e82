/** The part of a level sublevel that a write-through cache needs. */
export interface KeyValue<V> {
  get: (key: string) => Promise<V | undefined>
  put: (key: string, value: V) => Promise<void>
  del: (key: string) => Promise<void>
}

/**
 * A write-through cache in front of a sublevel, for records read on every
 * message (Signal sessions, identity keys). Writes reach the database before
 * the cache, so a crash never leaves the cache ahead of the disk. At most
 * `capacity` entries are kept, least recently used dropped first.
 */
export class CachedRecords<V> implements KeyValue<V> {
  private readonly cache = new Map<string, V | undefined>()

  constructor (private readonly backing: KeyValue<V>, private readonly capacity = 10_000) {}

  async get (key: string): Promise<V | undefined> {
    if (this.cache.has(key)) {
      const value = this.cache.get(key)
      // refresh recency
      this.cache.delete(key)
      this.cache.set(key, value)
      return value
    }
    const value = await this.backing.get(key)
    this.remember(key, value)
    return value
  }

  async put (key: string, value: V): Promise<void> {
    await this.backing.put(key, value)
    this.remember(key, value)
  }

  async del (key: string): Promise<void> {
    await this.backing.del(key)
    this.remember(key, undefined)
  }

  private remember (key: string, value: V | undefined): void {
    this.cache.delete(key)
    this.cache.set(key, value)
    if (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value
      if (oldest !== undefined) this.cache.delete(oldest)
    }
  }
}
