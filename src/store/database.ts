import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level'
import { OctetError, isOctetError, systemErrorCode } from '../errors.js'
import { SPACE_CHECK_INTERVAL, diskFullError, hasRoomToResume, isNoSpaceError } from './space.js'

/**
 * Bumped whenever a stored record changes shape. A database written by another
 * version is refused at start with a clear message rather than misread.
 */
export const STORE_VERSION = 1
const VERSION_KEY = 'store-version'
/** Written to find out whether the disk takes writes again. */
const PROBE_KEY = 'space-probe'

type Root = Level<string, unknown>
/** A sublevel whose values are JSON records. */
export type RecordSublevel<V> = AbstractSublevel<Root, string | Buffer | Uint8Array, string, V>
/** A sublevel whose values are raw bytes. */
export type BytesSublevel = AbstractSublevel<Root, string | Buffer | Uint8Array, string, Uint8Array>

/** One operation of an atomic batch; `sublevel` names where it applies. */
export type StoreOp =
  | { type: 'put', sublevel: RecordSublevel<any> | BytesSublevel, key: string, value: unknown }
  | { type: 'del', sublevel: RecordSublevel<any> | BytesSublevel, key: string }

/** Whether the store takes writes; `full`: since when it does not, and what to tell a client. */
export type StoreHealth =
  | { writable: true }
  | { writable: false, reason: 'DISK_FULL', since: number, error: OctetError }

/** abstract-level's private write methods, which every put, del, batch and clear (of sublevels too) ends in. */
type PrivateWrite = (...args: unknown[]) => Promise<unknown>
const PRIVATE_WRITES = ['_put', '_del', '_batch', '_clear'] as const

/** Paths of the two level databases inside a data directory. */
export function databasePaths (dataDir: string): { state: string, libp2p: string } {
  return {
    state: join(dataDir, 'db', 'state'),
    libp2p: join(dataDir, 'db', 'libp2p')
  }
}

/**
 * octet's own state: one level database, partitioned into sublevels by concern.
 * Modules receive the sublevel they own and nothing else, so no module reaches
 * into another's keys.
 */
export class Store {
  private readonly committedListeners = new Set<(ops: StoreOp[]) => void>()
  private readonly failedListeners = new Set<(ops: StoreOp[]) => void>()
  private readonly healthListeners = new Set<(health: StoreHealth) => void>()
  /** every sublevel handed out, by encoding and name: a reopened database must reopen them too */
  private readonly sublevels = new Map<string, { open: () => Promise<void> }>()
  private health: StoreHealth = { writable: true }
  private spaceTimer: NodeJS.Timeout | undefined
  private resuming = false
  private closed = false

  private constructor (private readonly db: Root, private readonly path: string) {
    this.guardWrites()
  }

  static async open (dataDir: string): Promise<Store> {
    const path = databasePaths(dataDir).state
    await mkdir(path, { recursive: true })
    const db: Root = new Level<string, unknown>(path, { valueEncoding: 'json' })
    try {
      await db.open()
    } catch (err) {
      throw translateOpenError(err, path)
    }
    const store = new Store(db, path)
    try {
      await store.checkVersion()
    } catch (err) {
      await store.close()
      throw err
    }
    return store
  }

  private async checkVersion (): Promise<void> {
    const meta = this.records<number>('meta')
    const version = await meta.get(VERSION_KEY)
    if (version == null) {
      await meta.put(VERSION_KEY, STORE_VERSION)
      return
    }
    if (version !== STORE_VERSION) {
      throw new OctetError('STORE_VERSION_MISMATCH',
        `the database was written by store version ${version}, this octet reads version ${STORE_VERSION}; use a matching octet release or a new --data-dir`)
    }
  }

  records<V> (name: string): RecordSublevel<V> {
    return this.sublevel(`json:${name}`, () => this.db.sublevel<string, V>(name, { valueEncoding: 'json' }))
  }

  bytes (name: string): BytesSublevel {
    return this.sublevel(`view:${name}`, () => this.db.sublevel<string, Uint8Array>(name, { valueEncoding: 'view' }))
  }

  private sublevel<S extends { open: () => Promise<void> }> (id: string, create: () => S): S {
    let sublevel = this.sublevels.get(id) as S | undefined
    if (sublevel == null) this.sublevels.set(id, sublevel = create())
    return sublevel
  }

  /**
   * Writes operations on several sublevels atomically: a message, its outbox
   * entry and its event are on disk together or not at all. DISK_FULL when
   * the disk is full (see guardWrites).
   */
  async batch (ops: StoreOp[]): Promise<void> {
    if (ops.length === 0) return
    const last = lastPerKey(ops)
    try {
      // abstract-level routes each operation through its `sublevel`, encoding values per sublevel
      await this.db.batch(last as unknown as Array<AbstractBatchOperation<Root, string, unknown>>)
    } catch (err) {
      for (const listener of this.failedListeners) listener(last)
      throw err
    }
    for (const listener of this.committedListeners) listener(last)
  }

  /**
   * Calls `listener` with the operations of every batch once it is on disk,
   * before the writer continues: in-memory mirrors of a sublevel follow it
   * without ever running ahead of the disk. Returns the unsubscribe function.
   */
  onCommitted (listener: (ops: StoreOp[]) => void): () => void {
    this.committedListeners.add(listener)
    return () => { this.committedListeners.delete(listener) }
  }

  /**
   * Calls `listener` with the operations of every batch that failed (nothing
   * of it was written), before the writer hears of it: whoever handed over
   * state to write behind takes it back (see WriteBehindRecords.restore).
   */
  onFailed (listener: (ops: StoreOp[]) => void): () => void {
    this.failedListeners.add(listener)
    return () => { this.failedListeners.delete(listener) }
  }

  get writable (): boolean {
    return this.health.writable
  }

  status (): StoreHealth {
    return this.health
  }

  /** DISK_FULL while writes are refused; for callers that should not start work they cannot keep. */
  assertWritable (): void {
    if (!this.health.writable) throw this.health.error
  }

  /** Calls `listener` whenever the store stops or resumes taking writes. */
  onHealthChange (listener: (health: StoreHealth) => void): () => void {
    this.healthListeners.add(listener)
    return () => { this.healthListeners.delete(listener) }
  }

  /** Resolves once the store takes writes (at once when it does). */
  async whenWritable (): Promise<void> {
    if (this.health.writable) return
    await new Promise<void>(resolve => {
      const off = this.onHealthChange(health => {
        if (!health.writable) return
        off()
        resolve()
      })
    })
  }

  /**
   * Every write, through Store.batch or straight on a sublevel, passes here.
   * The first that fails for lack of space turns the store read-only, and
   * every later one is refused with DISK_FULL at once, until space is back
   * and the database was reopened: after a failed write LevelDB may hold a
   * torn log record (what it writes after it would be lost on the next
   * open) or a background error that refuses all writes until a reopen.
   */
  private guardWrites (): void {
    const writes = this.db as unknown as Record<typeof PRIVATE_WRITES[number], PrivateWrite>
    for (const name of PRIVATE_WRITES) {
      const write = writes[name].bind(this.db)
      writes[name] = async (...args) => {
        if (!this.health.writable) throw this.health.error
        try {
          return await write(...args)
        } catch (err) {
          if (!isNoSpaceError(err)) throw err
          throw this.becomeFull(err)
        }
      }
    }
  }

  /** Turns the store read-only (once) and returns the error for the write that found the disk full. */
  private becomeFull (cause: unknown): OctetError {
    if (!this.health.writable) return this.health.error
    const error = diskFullError(this.path, cause)
    this.setHealth({ writable: false, reason: 'DISK_FULL', since: Date.now(), error })
    if (!this.closed) {
      this.spaceTimer ??= setInterval(() => { void this.tryResume() }, SPACE_CHECK_INTERVAL)
      this.spaceTimer.unref()
    }
    return error
  }

  /** Space back? Reopen, then write a probe: only a write that lands says the disk takes writes. */
  private async tryResume (): Promise<void> {
    if (this.resuming || this.closed || this.health.writable) return
    this.resuming = true
    const full = this.health
    try {
      if (!await hasRoomToResume(this.path)) return
      await this.reopen()
      this.health = { writable: true }
      await this.records<number>('meta').put(PROBE_KEY, Date.now())
      clearInterval(this.spaceTimer)
      this.spaceTimer = undefined
      this.setHealth(this.health)
    } catch (err) {
      // still full (the probe made the store read-only again), or the reopen failed: the next tick tries again
      if (this.health.writable && !isOctetError(err, 'DISK_FULL')) this.health = full
    } finally {
      this.resuming = false
    }
  }

  /**
   * Closes and opens the database, and with it every sublevel. Sublevels are
   * opened while the database opens, so reads made meanwhile wait for it;
   * only those in the instant of closing fail.
   */
  private async reopen (): Promise<void> {
    await this.db.close()
    const opening = this.db.open()
    const sublevels = [...this.sublevels.values()].map(async sublevel => { await sublevel.open() })
    await opening
    await Promise.all(sublevels)
  }

  private setHealth (health: StoreHealth): void {
    this.health = health
    for (const listener of this.healthListeners) listener(health)
  }

  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.spaceTimer)
    this.spaceTimer = undefined
    await this.db.close()
  }
}

/**
 * Only the last operation on each key, in order: within a batch a later
 * write wins anyway, and merged commits (a burst of sends, each rewriting
 * its conversation) would otherwise encode and write every superseded value.
 */
function lastPerKey (ops: StoreOp[]): StoreOp[] {
  const latest = new Map<StoreOp['sublevel'], Map<string, number>>()
  let superseded = false
  ops.forEach((op, i) => {
    let keys = latest.get(op.sublevel)
    if (keys == null) latest.set(op.sublevel, keys = new Map())
    if (keys.has(op.key)) superseded = true
    keys.set(op.key, i)
  })
  if (!superseded) return ops
  return ops.filter((op, i) => latest.get(op.sublevel)?.get(op.key) === i)
}

function translateOpenError (err: unknown, path: string): Error {
  // classic-level wraps the OS error: LEVEL_LOCKED when another process holds the LOCK file
  const code = systemErrorCode(err)
  const cause = err instanceof Error ? (err.cause as unknown) : undefined
  if (code === 'LEVEL_LOCKED' || systemErrorCode(cause) === 'LEVEL_LOCKED') {
    return new OctetError('DAEMON_ALREADY_RUNNING', `the database at ${path} is in use by another process; stop the other octet daemon or use another --data-dir`, { cause: err })
  }
  return new OctetError('DATA_DIR_UNWRITABLE', `cannot open the database at ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
