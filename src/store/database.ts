import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { levelDamage, translateOpenError } from './level-damage.js'
import { SPACE_CHECK_INTERVAL, diskFullError, hasRoomToResume, isNoSpaceError } from './space.js'

/**
 * Bumped whenever a stored record changes shape. A database written by another
 * version is refused at start with a clear message rather than misread.
 */
export const STORE_VERSION = 1
const VERSION_KEY = 'store-version'
/** Written to find out whether the disk takes writes again. */
const PROBE_KEY = 'space-probe'
/** The PeerId whose state this is: written when the state is created, checked at every start. */
const OWNER_KEY = 'owner'
/** Raised and synced now and then (see checkpoint()); a state whose checkpoint went back lost writes. */
const CHECKPOINT_KEY = 'checkpoint'

// classic-level, not the portable `level`: octet needs LevelDB's own properties and repair
type Root = ClassicLevel<string, unknown>
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
  private readonly healthListeners = new Set<(health: StoreHealth) => void>()
  /** every sublevel handed out, by encoding and name: a reopened database must reopen them too */
  private readonly sublevels = new Map<string, { open: () => Promise<void> }>()
  private health: StoreHealth = { writable: true }
  private spaceTimer: NodeJS.Timeout | undefined
  private resuming = false
  private closed = false
  private readonly meta: RecordSublevel<unknown>
  /** batches committed since the last checkpoint() */
  private uncheckpointed = 0

  private constructor (private readonly db: Root, readonly path: string) {
    this.guardWrites()
    this.meta = this.records<unknown>('meta')
  }

  /**
   * Opens octet's state. With `create` (a new data directory, unit tests) a
   * missing database is made and stamped with the store version; without, a
   * missing or unreadable one is STATE_DAMAGED: LevelDB would otherwise make a
   * new one on top of what is left, and delete the old tables as it goes;
   * and what LevelDB shows of damage (levelDamage) is STATE_DAMAGED too.
   */
  static async open (dataDir: string, { create = true }: { create?: boolean } = {}): Promise<Store> {
    const path = databasePaths(dataDir).state
    if (create) await mkdir(path, { recursive: true })
    const db: Root = new ClassicLevel<string, unknown>(path, { valueEncoding: 'json', createIfMissing: create })
    try {
      await db.open()
    } catch (err) {
      throw translateOpenError(err, path)
    }
    const store = new Store(db, path)
    try {
      // before the first read: a read of a truncated table fails with less to say
      const damage = create ? [] : await levelDamage(db, path)
      if (damage.length > 0) throw new OctetError('STATE_DAMAGED', damage.join('; '))
      await store.checkVersion(create)
    } catch (err) {
      await store.close()
      throw err
    }
    return store
  }

  private async checkVersion (create: boolean): Promise<void> {
    const version = await this.meta.get(VERSION_KEY)
    if (version == null) {
      if (!create) throw new OctetError('STATE_DAMAGED', `the database at ${this.path} has no store version: it lost records`)
      await this.meta.put(VERSION_KEY, STORE_VERSION)
      return
    }
    if (version !== STORE_VERSION) {
      throw new OctetError('STORE_VERSION_MISMATCH',
        `the database was written by store version ${String(version)}, this octet reads version ${STORE_VERSION}; use a matching octet release or a new --data-dir`)
    }
  }

  /** The PeerId this state belongs to; undefined for a state from before owners were recorded. */
  async owner (): Promise<string | undefined> {
    const owner = await this.meta.get(OWNER_KEY)
    return typeof owner === 'string' ? owner : undefined
  }

  async setOwner (peerId: string): Promise<void> {
    await this.meta.put(OWNER_KEY, peerId)
  }

  /** The last checkpoint written (0: none yet). */
  async lastCheckpoint (): Promise<number> {
    const checkpoint = await this.meta.get(CHECKPOINT_KEY)
    return typeof checkpoint === 'number' ? checkpoint : 0
  }

  /** Whether anything was committed since the last checkpoint. */
  get changedSinceCheckpoint (): boolean {
    return this.uncheckpointed > 0
  }

  /**
   * Raises the checkpoint by one in a synced write and returns it. LevelDB
   * applies writes in order and the sync flushes its write-ahead log, so once
   * this returns everything committed before it is on disk: a marker that
   * records this checkpoint is never ahead of the database, whatever crashes.
   */
  async checkpoint (): Promise<number> {
    this.uncheckpointed = 0
    const next = await this.lastCheckpoint() + 1
    // a sublevel's put takes no `sync`: a batch of one through the root does
    const op = { type: 'put', sublevel: this.meta, key: CHECKPOINT_KEY, value: next }
    await this.db.batch([op] as unknown as Array<AbstractBatchOperation<Root, string, unknown>>, { sync: true })
    return next
  }

  /** What LevelDB shows of damage right after open (see levelDamage). */
  async structuralDamage (): Promise<string[]> {
    return await levelDamage(this.db, this.path)
  }

  /**
   * Reads every record and counts them per sublevel: proof that each table
   * can be read, and the figures `octet doctor` compares. A read error is
   * STATE_DAMAGED.
   */
  async census (): Promise<Record<string, number>> {
    const counts: Record<string, number> = {}
    const iterator = this.db.iterator({ values: false, keyEncoding: 'utf8' })
    try {
      for (;;) {
        const entries = await iterator.nextv(10_000)
        if (entries.length === 0) break
        for (const [key] of entries) {
          // sublevel keys are `!name!key`
          const name = key.startsWith('!') ? key.slice(1, key.indexOf('!', 1)) : ''
          counts[name] = (counts[name] ?? 0) + 1
        }
      }
    } catch (err) {
      throw new OctetError('STATE_DAMAGED', `reading the database at ${this.path} failed: ${errorMessage(err)}`, { cause: err })
    } finally {
      await iterator.close()
    }
    return counts
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
   * the disk is full (see guardWrites). octet's state goes through the
   * CommitPipeline (src/store/commit.ts), which orders batches and carries
   * the state written behind; this is its last step.
   */
  async batch (ops: StoreOp[]): Promise<void> {
    if (ops.length === 0) return
    const last = lastPerKey(ops)
    // abstract-level routes each operation through its `sublevel`, encoding values per sublevel
    await this.db.batch(last as unknown as Array<AbstractBatchOperation<Root, string, unknown>>)
    this.uncheckpointed++
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
