import type { CommitPipeline, WriteBehindSource } from './commit.js'
import type { BytesSublevel, StoreOp } from './database.js'

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

/**
 * How long a write-behind put may wait to ride with another commit before
 * the cache asks the pipeline for a batch of its own. On the message path a
 * commit follows within a few event-loop turns (a received message's batch,
 * a send window) and carries it; flushed sooner, it would be a database
 * write of its own that the caller's batch then queues behind.
 */
const FLUSH_DELAY = 10

/** What a write-behind cache writes through: the commit pipeline (see CommitPipeline). */
export type WriteBehindCommitter = Pick<CommitPipeline, 'addWriteBehind' | 'flush'>

/** How a write-behind cache turns its objects into stored bytes and back. */
export interface RecordCodec<V> {
  encode: (value: V) => Uint8Array
  decode: (bytes: Uint8Array) => V
}

/**
 * Write-behind cache for records rewritten on every message (a Signal session
 * advances with each encrypt and decrypt). It holds decoded objects, so a
 * record read on every message is decoded once, not per read, and encoded
 * only when its write is taken.
 *
 * Writes: a put or del changes the cache at once and is pending until the
 * commit pipeline it registered with takes it into the next batch it writes
 * (any commit's, or a flush of its own FLUSH_DELAY later). Durable: once any
 * commit made after the put has resolved (the pipeline's rule), so a message
 * stored by a later commit lands with, or after, the session state that
 * decrypted it. Without a pipeline, writes go straight to the database
 * before put returns.
 *
 * Cached objects are handed out as they are: the values must be immutable
 * (libsignal records are; it saves a new record for each change).
 */
export class WriteBehindRecords<V> implements KeyValue<V>, WriteBehindSource {
  private readonly cache = new CachedRecords<V>({
    get: async key => {
      const bytes = await this.sublevel.get(key)
      return bytes == null ? undefined : this.codec.decode(bytes)
    },
    put: async () => {},
    del: async () => {}
  })

  /** key → value to write (undefined: delete), with the version it was given */
  private readonly pending = new Map<string, Written<V>>()
  /** key → version of its newest value, pending, being written or written (one number per key ever written) */
  private readonly newest = new Map<string, number>()
  /** what each operation handed out by takeWrites carries, to take it back if its batch fails */
  private readonly handedOut = new WeakMap<StoreOp, Written<V> & { key: string }>()
  private version = 0
  private flushScheduled = false

  constructor (
    private readonly sublevel: BytesSublevel,
    private readonly codec: RecordCodec<V>,
    private readonly pipeline?: WriteBehindCommitter,
    private readonly onFlushError: (err: unknown) => void = () => {}
  ) {
    pipeline?.addWriteBehind(this)
  }

  async get (key: string): Promise<V | undefined> {
    const pending = this.pending.get(key)
    if (pending != null) return pending.value
    return await this.cache.get(key)
  }

  async put (key: string, value: V): Promise<void> {
    if (this.pipeline == null) await this.sublevel.put(key, this.codec.encode(value))
    else this.defer(key, value)
    await this.cache.put(key, value)
  }

  async del (key: string): Promise<void> {
    if (this.pipeline == null) await this.sublevel.del(key)
    else this.defer(key, undefined)
    await this.cache.del(key)
  }

  private defer (key: string, value: V | undefined): void {
    const version = ++this.version
    this.newest.set(key, version)
    this.pending.set(key, { value, version })
    if (this.flushScheduled) return
    this.flushScheduled = true
    setTimeout(() => {
      this.flushScheduled = false
      // a failed flush gave its writes back (restore): they go with the next batch
      if (this.pending.size > 0) void this.flush().catch(this.onFlushError)
    }, FLUSH_DELAY).unref()
  }

  /** The pending writes as batch operations, for the pipeline to write now (WriteBehindSource). */
  takeWrites (): StoreOp[] {
    const ops = [...this.pending].map(([key, written]) => {
      const op: StoreOp = written.value == null
        ? { type: 'del', sublevel: this.sublevel, key }
        : { type: 'put', sublevel: this.sublevel, key, value: this.codec.encode(written.value) }
      this.handedOut.set(op, { key, ...written })
      return op
    })
    this.pending.clear()
    return ops
  }

  /**
   * A batch that held some of our writes failed: nothing of it is on disk,
   * while the cache already shows those values and whatever was derived from
   * them (a Signal session advanced by a message whose storage failed). Each
   * write whose key was not written anew since goes back to pending, so the
   * next batch carries it: nothing that depends on this state can be
   * acknowledged or leave the node before it is on disk.
   */
  restore (ops: StoreOp[]): void {
    for (const op of ops) {
      const written = this.handedOut.get(op)
      if (written == null || this.newest.get(written.key) !== written.version) continue
      if (this.pending.has(written.key)) continue
      this.pending.set(written.key, { value: written.value, version: written.version })
    }
  }

  /** Resolves once every change made before the call is on disk. */
  async flush (): Promise<void> {
    await this.pipeline?.flush()
  }
}

interface Written<V> {
  value: V | undefined
  version: number
}
