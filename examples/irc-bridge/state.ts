/**
 * What the bridge keeps across its own restarts, in one small JSON file: the id of the
 * last octet event it handled (relayed to IRC and confirmed by the server, or not for
 * IRC), and the IRC lines not yet taken by the daemon, each with the Idempotency-Key it is
 * sent under. Written atomically (a temp file, fsync, rename): a crash leaves the old
 * state or the new one, never half of one.
 */
import { randomUUID } from 'node:crypto'
import { open, readFile, rename } from 'node:fs/promises'

/** How long the cursor of an event that was not relayed may wait to be written. */
const LAZY_SAVE = 1_000

export interface Pending {
  /** the Idempotency-Key: a resend after a lost answer or a restart makes no second message */
  key: string
  text: string
}

interface StateData {
  version: 1
  groupId: string
  /** the last event handled: the event stream resumes after it (Last-Event-ID) */
  lastEventId?: number
  /** IRC lines not yet accepted by the daemon, oldest first */
  pending: Pending[]
}

export class StateError extends Error {
  readonly code = 'BAD_STATE'
  override readonly name = 'StateError'
}

export class BridgeState {
  private writing: Promise<void> = Promise.resolve()
  private later: NodeJS.Timeout | undefined

  private constructor (readonly path: string, private readonly data: StateData) {}

  static async load (path: string, groupId: string): Promise<BridgeState> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new BridgeState(path, { version: 1, groupId, pending: [] })
      throw err
    }
    const data = JSON.parse(text) as StateData
    if (data.version !== 1 || !Array.isArray(data.pending)) throw new StateError(`${path} is not a state file of this bridge`)
    if (data.groupId !== groupId) throw new StateError(`${path} is the state of group ${data.groupId}, not ${groupId}: give another --state-file`)
    return new BridgeState(path, data)
  }

  get lastEventId (): number | undefined {
    return this.data.lastEventId
  }

  get pending (): readonly Pending[] {
    return this.data.pending
  }

  /**
   * The event `id` was handled: the next connection resumes after it. A relayed event is on
   * disk before this resolves; any other (`relayed` false) is written within a second — one
   * replayed after a crash is skipped again, harmlessly, and a daemon's stream of unrelated
   * events costs no fsync each.
   */
  async handled (id: number, relayed: boolean): Promise<void> {
    this.data.lastEventId = id
    if (relayed) {
      await this.save()
    } else {
      this.later ??= setTimeout(() => {
        this.later = undefined
        // a failed write is retried by the next one, which writes the same and more
        this.save().catch(() => {})
      }, LAZY_SAVE)
    }
  }

  /** The events after the cursor are gone (410 EVENTS_PRUNED): the next connection takes new events only. */
  async forgetCursor (): Promise<void> {
    delete this.data.lastEventId
    await this.save()
  }

  /** Writes what a lazy save still holds; for stopping. */
  async flush (): Promise<void> {
    clearTimeout(this.later)
    this.later = undefined
    await this.save()
  }

  /** Queues an IRC line for the group, on disk before this resolves. */
  async enqueue (text: string): Promise<Pending> {
    const pending = { key: `irc-bridge-${randomUUID()}`, text }
    this.data.pending.push(pending)
    await this.save()
    return pending
  }

  /** The daemon has the oldest pending line. */
  async sent (key: string): Promise<void> {
    this.data.pending = this.data.pending.filter(p => p.key !== key)
    await this.save()
  }

  /** Writes the state as it is now; writes are one after another, the last one wins. */
  async save (): Promise<void> {
    const write = this.writing.then(async () => { await this.write() })
    this.writing = write.catch(() => {})
    await write
  }

  private async write (): Promise<void> {
    const temp = `${this.path}.${process.pid}.tmp`
    const file = await open(temp, 'w', 0o600)
    try {
      await file.writeFile(JSON.stringify(this.data) + '\n')
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, this.path)
  }
}
