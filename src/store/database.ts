import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level'
import { OctetError, systemErrorCode } from '../errors.js'

/**
 * Bumped whenever a stored record changes shape. A database written by another
 * version is refused at start with a clear message rather than misread.
 */
export const STORE_VERSION = 1
const VERSION_KEY = 'store-version'

type Root = Level<string, unknown>
/** A sublevel whose values are JSON records. */
export type RecordSublevel<V> = AbstractSublevel<Root, string | Buffer | Uint8Array, string, V>
/** A sublevel whose values are raw bytes. */
export type BytesSublevel = AbstractSublevel<Root, string | Buffer | Uint8Array, string, Uint8Array>

/** One operation of an atomic batch; `sublevel` names where it applies. */
export type StoreOp =
  | { type: 'put', sublevel: RecordSublevel<any> | BytesSublevel, key: string, value: unknown }
  | { type: 'del', sublevel: RecordSublevel<any> | BytesSublevel, key: string }

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

  private constructor (private readonly db: Root) {}

  static async open (dataDir: string): Promise<Store> {
    const path = databasePaths(dataDir).state
    await mkdir(path, { recursive: true })
    const db: Root = new Level<string, unknown>(path, { valueEncoding: 'json' })
    try {
      await db.open()
    } catch (err) {
      throw translateOpenError(err, path)
    }
    const store = new Store(db)
    try {
      await store.checkVersion()
    } catch (err) {
      await db.close()
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
    return this.db.sublevel<string, V>(name, { valueEncoding: 'json' })
  }

  bytes (name: string): BytesSublevel {
    return this.db.sublevel<string, Uint8Array>(name, { valueEncoding: 'view' })
  }

  /**
   * Writes operations on several sublevels atomically: a message, its outbox
   * entry and its event are on disk together or not at all.
   */
  async batch (ops: StoreOp[]): Promise<void> {
    if (ops.length === 0) return
    const last = lastPerKey(ops)
    // abstract-level routes each operation through its `sublevel`, encoding values per sublevel
    await this.db.batch(last as unknown as Array<AbstractBatchOperation<Root, string, unknown>>)
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

  async close (): Promise<void> {
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
