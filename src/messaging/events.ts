import { EventEmitter } from 'node:events'
import type { RecordSublevel, Store, StoreOp } from '../store/database.js'

export type OctetEventType =
  | 'message.received'
  | 'message.status'
  | 'contact.request'
  | 'contact.updated'
  | 'identity.changed'
  | 'group.invite'
  | 'group.joined'
  | 'group.message'
  | 'group.member.added'
  | 'group.member.removed'

/** An event as stored and streamed: `id` increases by one per event, across restarts. */
export interface OctetEvent {
  id: number
  type: OctetEventType
  at: number
  data: Record<string, unknown>
}

export interface NewEvent {
  type: OctetEventType
  data: Record<string, unknown>
}

const pad = (n: number): string => String(n).padStart(16, '0')
/** Events read and deleted per database batch while pruning. */
const PRUNE_CHUNK = 1000

interface PendingCommit {
  ops: StoreOp[]
  newEvents: NewEvent[]
  at: number
  resolve: (events: OctetEvent[]) => void
  reject: (err: unknown) => void
}

/**
 * The durable, ordered event log behind SSE. State changes and their events
 * are written in one batch, and commits are applied in the order they were
 * made, so ids are handed out, stored and published in one order: a client
 * resuming from Last-Event-ID can never skip an event that committed late.
 *
 * Group commit: commits made while a write is under way are merged into the
 * next database batch, so a burst of sends or receipts costs one write, not
 * one each. Each commit still lands whole or not at all.
 */
export class EventLog {
  private readonly emitter = new EventEmitter()
  private readonly queue: PendingCommit[] = []
  private writing = false

  private constructor (
    private readonly store: Store,
    private readonly events: RecordSublevel<OctetEvent>,
    private lastId: number,
    /** the oldest id still stored; lastId + 1 when none is */
    private firstId: number
  ) {
    // every SSE client is one listener
    this.emitter.setMaxListeners(0)
  }

  static async open (store: Store): Promise<EventLog> {
    const events = store.records<OctetEvent>('events')
    let lastId = 0
    for await (const event of events.values({ reverse: true, limit: 1 })) lastId = event.id
    let firstId = lastId + 1
    for await (const event of events.values({ limit: 1 })) firstId = event.id
    return new EventLog(store, events, lastId, firstId)
  }

  get latestId (): number {
    return this.lastId
  }

  /** The oldest event still kept (older ones were pruned); latestId + 1 when the log is empty. */
  get oldestId (): number {
    return this.firstId
  }

  /**
   * Deletes events that committed before `olderThan` (ms) or that are not
   * among the newest `keep`. The newest event always stays: the next id is
   * taken from it after a restart, so ids never start again from 1. Ids have
   * no gaps, so the newest `keep` are simply those above latestId − keep.
   * Returns how many were deleted; `stopped` ends the work between batches.
   */
  async prune (olderThan: number, keep: number, stopped: () => boolean = () => false): Promise<number> {
    let deleted = 0
    while (!stopped()) {
      const keepFrom = Math.max(this.lastId - keep + 1, 1)
      const doomed: number[] = []
      for await (const event of this.events.values({ gte: pad(this.firstId), limit: PRUNE_CHUNK })) {
        // in commit order, so `at` only grows: the first one to keep ends the pruning
        if (event.id >= this.lastId || (event.at >= olderThan && event.id >= keepFrom)) break
        doomed.push(event.id)
      }
      if (doomed.length === 0) break
      await this.store.batch(doomed.map(id => ({ type: 'del', sublevel: this.events, key: pad(id) })))
      this.firstId = (doomed.at(-1) ?? this.firstId) + 1
      deleted += doomed.length
    }
    return deleted
  }

  /**
   * Writes `ops` and the events atomically, then tells live subscribers.
   * Commits are ordered by the call: one made after another lands after it.
   */
  async commit (ops: StoreOp[], newEvents: NewEvent[] = [], now = Date.now()): Promise<OctetEvent[]> {
    return await new Promise<OctetEvent[]>((resolve, reject) => {
      this.queue.push({ ops, newEvents, at: now, resolve, reject })
      if (!this.writing) void this.writeQueued()
    })
  }

  private async writeQueued (): Promise<void> {
    this.writing = true
    while (this.queue.length > 0) {
      const group = this.queue.splice(0, this.queue.length)
      let nextId = this.lastId
      const assigned = group.map(commit => commit.newEvents.map(e => ({ id: ++nextId, type: e.type, at: commit.at, data: e.data })))
      const ops: StoreOp[] = []
      group.forEach((commit, i) => {
        ops.push(...commit.ops)
        for (const event of assigned[i] ?? []) ops.push({ type: 'put', sublevel: this.events, key: pad(event.id), value: event })
      })
      try {
        await this.store.batch(ops)
      } catch (err) {
        // nothing of the group was written: its ids are not used, and later commits still go ahead
        for (const commit of group) commit.reject(err)
        continue
      }
      this.lastId = nextId
      group.forEach((commit, i) => {
        const events = assigned[i] ?? []
        for (const event of events) this.emitter.emit('event', event)
        commit.resolve(events)
      })
    }
    this.writing = false
  }

  /** Stored events with id > `afterId`, oldest first. */
  async * since (afterId: number, limit = Infinity): AsyncGenerator<OctetEvent> {
    let count = 0
    for await (const event of this.events.values({ gt: pad(afterId) })) {
      if (count++ >= limit) return
      yield event
    }
  }

  subscribe (listener: (event: OctetEvent) => void): () => void {
    this.emitter.on('event', listener)
    return () => { this.emitter.off('event', listener) }
  }
}
