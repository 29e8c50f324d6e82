import { OctetError } from '../errors.js'
import type { Store, StoreOp } from './database.js'

/**
 * State kept in memory and written behind (Signal sessions and sender keys,
 * see WriteBehindRecords). It registers with the pipeline, which puts every
 * pending change into each batch it writes and gives back what a failed
 * batch held.
 */
export interface WriteBehindSource {
  /** The pending changes as batch operations; from now on they are the pipeline's to write. */
  takeWrites: () => StoreOp[]
  /** The batch that carried `ops` (from takeWrites) failed: nothing of it is on disk. */
  restore: (ops: StoreOp[]) => void
}

/**
 * What a participant adds to a commit when its batch is put together (in
 * commit order), and hears once the batch landed or failed. The event log
 * uses it to number events in commit order and publish them once on disk.
 */
export interface Staged<T> {
  ops: StoreOp[]
  /** the batch is on disk; called in commit order before the commit resolves, its result is the commit's */
  landed: () => T
  /** the batch failed (nothing of it is on disk); called in commit order before the commit rejects */
  failed: () => void
}

interface Pending {
  ops: StoreOp[]
  stage: (() => Staged<unknown>) | undefined
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

/**
 * The one ordered write path to the Store. Rules:
 *
 * - Order: commits land in the order they were made; one made after another
 *   never lands before it. Each lands whole or not at all.
 * - Group commit: commits made while a batch is being written go into the
 *   next batch together, so a burst costs one database write, not one each.
 * - Write-behind: every batch carries every pending change of every
 *   registered WriteBehindSource. So a commit resolves only once every
 *   write-behind change made before it is on disk, and no caller takes (or
 *   forgets to take) such writes itself. A failed batch gives each source
 *   back what it took (restore), and the next batch carries it.
 * - Durability: "on disk" is LevelDB's unsynced write (it survives a crash
 *   of the process; Store.checkpoint syncs).
 * - close() refuses new commits and resolves once every queued commit and
 *   the pending write-behind changes are written (or failed).
 */
export class CommitPipeline {
  private readonly queue: Pending[] = []
  private readonly sources = new Set<WriteBehindSource>()
  private writing: Promise<void> | undefined
  private closed = false

  constructor (readonly store: Store) {}

  /** `source`'s pending changes go into every batch from now on. Returns the unregister function. */
  addWriteBehind (source: WriteBehindSource): () => void {
    this.sources.add(source)
    return () => { this.sources.delete(source) }
  }

  /**
   * Writes `ops` (and what `stage`, called when the batch is put together,
   * adds) after every commit made before. Resolves with what the stage's
   * `landed` returns once on disk; rejects when the batch failed (DISK_FULL
   * among others), or UNAVAILABLE once the pipeline is closed.
   */
  async commit (ops: StoreOp[]): Promise<void>
  async commit<T> (ops: StoreOp[], stage: () => Staged<T>): Promise<T>
  async commit<T> (ops: StoreOp[], stage?: () => Staged<T>): Promise<T | undefined> {
    if (this.closed) throw new OctetError('UNAVAILABLE', 'the store is closing: nothing more is written')
    return await new Promise<T | undefined>((resolve, reject) => {
      this.queue.push({ ops, stage, resolve: resolve as (value: unknown) => void, reject })
      this.writing ??= this.writeQueued()
    })
  }

  /** Resolves once every write-behind change made before the call is on disk (a commit of nothing else). */
  async flush (): Promise<void> {
    await this.commit([])
  }

  /** Refuses new commits; resolves once the queued ones and the pending write-behind changes were written. */
  async close (): Promise<void> {
    if (!this.closed) {
      // the last batch: whatever is still written behind
      const last = this.commit([]).catch(() => {})
      this.closed = true
      await last
    }
    await this.writing
  }

  /**
   * Writes groups until the queue is empty. It awaits before it ends, so
   * `writing` is set by then; it is cleared in the same turn as the last look
   * at the queue, so a commit made after that starts a new writer.
   */
  private async writeQueued (): Promise<void> {
    try {
      while (this.queue.length > 0) await this.writeGroup(this.queue.splice(0, this.queue.length))
    } finally {
      this.writing = undefined
    }
  }

  private async writeGroup (group: Pending[]): Promise<void> {
    const staged: Array<Staged<unknown> | undefined> = []
    const ops: StoreOp[] = []
    for (const commit of group) {
      const stage = commit.stage?.()
      staged.push(stage)
      ops.push(...commit.ops, ...(stage?.ops ?? []))
    }
    const taken = [...this.sources].map(source => ({ source, ops: source.takeWrites() }))
    for (const t of taken) ops.push(...t.ops)
    try {
      await this.store.batch(ops)
    } catch (err) {
      // nothing of the group was written: the sources get their writes back for the next batch,
      // the participants forget what they handed out, and later commits still go ahead
      for (const t of taken) t.source.restore(t.ops)
      for (const stage of staged) stage?.failed()
      for (const commit of group) commit.reject(err)
      return
    }
    group.forEach((commit, i) => {
      // a hook that throws rejects its own commit (whose batch is on disk all the same), not the rest
      try {
        commit.resolve(staged[i]?.landed())
      } catch (err) {
        commit.reject(err)
      }
    })
  }
}
