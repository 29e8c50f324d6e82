import { BaseDatastore } from 'datastore-core'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore, Key, KeyQuery, Pair, Query } from 'interface-datastore'
import { SECOND } from '../units.js'

/** Where libp2p's peer store keeps one record per peer (`@libp2p/peer-store`, peer-id-to-datastore-key.js). */
export const PEER_RECORD_PREFIX = '/peers/'
/** How long a changed peer record may live in memory only. */
export const PEER_RECORD_FLUSH_INTERVAL = 10 * SECOND
/** Records kept in memory; the least recently used clean ones go first. About 1 KB each. */
export const PEER_RECORD_CACHE_SIZE = 4096

export interface PeerRecordCacheOptions {
  flushInterval?: number
  maxEntries?: number
  /** A write-behind that failed; the records stay dirty and are tried again at the next flush. */
  onFlushError?: (err: Error) => void
}

/**
 * libp2p's datastore with the peer store's records held in memory and written behind.
 *
 * libp2p 3's peer store reads and rewrites a peer's whole record (it stamps `updated` on every
 * write, so every write is a real one) each time a stream is opened or accepted — the
 * connection merges the stream's protocol into it — and reads 20 records for every DHT
 * FIND_NODE it answers. Each was a LevelDB get and put: measured on an idle 20-node testnet,
 * about a third of a daemon's CPU went to them, and 50 daemons starved the 2-core machine.
 * Peer records are soft state that identify, the DHT and dials rebuild, so losing the last
 * PEER_RECORD_FLUSH_INTERVAL of them to a crash costs nothing a restart would not redo.
 * Every other key (DHT records, the keychain) passes straight through.
 */
export class PeerRecordCache extends BaseDatastore {
  private readonly records = new Map<string, { key: Key, value: Uint8Array }>()
  private readonly dirty = new Set<string>()
  private readonly flushInterval: number
  private readonly maxEntries: number
  private readonly onFlushError: (err: Error) => void
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> = Promise.resolve()
  /** after close(): writes go straight to the store, and nothing is scheduled */
  private closed = false

  constructor (private readonly store: Datastore, options: PeerRecordCacheOptions = {}) {
    super()
    this.flushInterval = options.flushInterval ?? PEER_RECORD_FLUSH_INTERVAL
    this.maxEntries = options.maxEntries ?? PEER_RECORD_CACHE_SIZE
    this.onFlushError = options.onFlushError ?? (() => {})
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const name = key.toString()
    // libp2p may still settle a peer-store update after the daemon closed this cache
    if (!isPeerRecord(name) || this.closed) return await this.store.put(key, value, options)
    this.remember(name, key, value)
    this.dirty.add(name)
    this.scheduleFlush()
    this.evict()
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const name = key.toString()
    if (!isPeerRecord(name)) return await this.store.get(key, options)
    const cached = this.records.get(name)
    if (cached != null) {
      this.remember(name, key, cached.value)
      return cached.value
    }
    const value = await this.store.get(key, options)
    // a put while the read was in flight holds the newer record
    if (!this.records.has(name)) {
      this.remember(name, key, value)
      this.evict()
    }
    return this.records.get(name)?.value ?? value
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    const name = key.toString()
    if (isPeerRecord(name) && this.records.has(name)) return true
    return await this.store.has(key, options)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    const name = key.toString()
    if (isPeerRecord(name)) {
      this.records.delete(name)
      this.dirty.delete(name)
    }
    await this.store.delete(key, options)
  }

  // a query reads LevelDB, so what is only in memory goes there first
  override async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    await this.flush()
    yield * this.store.query(q, options)
  }

  override async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    await this.flush()
    yield * this.store.queryKeys(q, options)
  }

  /** Writes every changed record to the store (one batch); the daemon calls it before closing the store. */
  async flush (): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    // a failed flush must not stop the ones after it
    this.flushing = this.flushing.catch(() => {}).then(async () => {
      if (this.dirty.size === 0) return
      const names = [...this.dirty]
      this.dirty.clear()
      const batch = this.store.batch()
      for (const name of names) {
        const record = this.records.get(name)
        if (record != null) batch.put(record.key, record.value)
      }
      try {
        await batch.commit()
      } catch (err) {
        // written again by the next flush, unless a newer put or a delete came meanwhile
        for (const name of names) if (this.records.has(name)) this.dirty.add(name)
        this.scheduleFlush()
        this.onFlushError(err as Error)
        throw err
      }
    })
    await this.flushing
  }

  /** Writes what is pending; from now on writes go straight to the store and nothing is retried later. */
  async close (): Promise<void> {
    this.closed = true
    await this.flush()
  }

  /**
   * Unref'd: a pending write-behind never keeps the process alive (a daemon whose start failed
   * must exit); close() writes what is pending. Never after close: the store may be closed too.
   */
  private scheduleFlush (): void {
    if (this.closed || this.timer != null) return
    this.timer = setTimeout(() => { void this.flush().catch(() => {}) }, this.flushInterval)
    this.timer.unref()
  }

  /** Map order is recency order: a use moves the record to the end. */
  private remember (name: string, key: Key, value: Uint8Array): void {
    this.records.delete(name)
    this.records.set(name, { key, value })
  }

  /** Drops the least recently used clean records beyond maxEntries; dirty ones wait for their flush. */
  private evict (): void {
    if (this.records.size <= this.maxEntries) return
    for (const name of this.records.keys()) {
      if (this.records.size <= this.maxEntries) return
      if (!this.dirty.has(name)) this.records.delete(name)
    }
  }
}

function isPeerRecord (key: string): boolean {
  return key.startsWith(PEER_RECORD_PREFIX)
}
