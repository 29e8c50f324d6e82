import type { GroupMessageRecord } from '../groups/store.js'
import type { CommitPipeline, Staged } from '../store/commit.js'
import type { RecordSublevel, StoreOp } from '../store/database.js'
import type { ContactRecord, MessageRecord, MessageStatus } from './records.js'

/** A message of ours changed status (sent, stored, delivered, read, failed …). */
export interface MessageStatusData {
  id: string
  peerId: string
  status: MessageStatus
  /** why it failed, or why it waits */
  reason?: string
  /** how many mailbox peers hold a copy (status `stored`) */
  mailboxes?: number
}

/**
 * What the events of incoming messages (direct, and group) may add: they
 * come out per conversation, or per sender in a group, in the sender's seq
 * order (src/messaging/ordering.ts).
 */
export interface OrderMarks {
  /**
   * The event waited for earlier messages of its sender (EVENT_HOLD_MAX) and
   * went out without them: seqs `from` to `to` (inclusive) are missing
   * right before it. Any of them that comes later carries `late`.
   */
  gap?: { from: number, to: number }
  /** The message fills a gap that an event released before named: it comes after later ones. */
  late?: true
}

/** Each event type and the data it carries: what SSE, `/v1/events` and webhooks deliver as `data`. */
export interface OctetEventDataMap {
  'message.received': { message: MessageRecord } & OrderMarks
  /** a message we sent, as it was queued (its status then changes by message.status) */
  'message.sent': { message: MessageRecord }
  'message.status': MessageStatusData
  'contact.request': { peerId: string }
  'contact.updated': { contact: ContactRecord }
  'identity.changed': { peerId: string }
  'group.invite': { groupId: string, name: string, invitedBy: string, version: number }
  'group.joined': { groupId: string, name: string, version: number }
  /** a message of a member, ours included (`message.author` is our PeerId then) */
  'group.message': { groupId: string, message: GroupMessageRecord } & OrderMarks
  'group.member.added': { groupId: string, peerId: string, version: number }
  'group.member.removed': { groupId: string, peerId: string, version: number }
}

export type OctetEventType = keyof OctetEventDataMap
/** Every event type, once. A Record, so that a type added to the map and not here fails the type check. */
const EVENT_TYPE_SET: Record<OctetEventType, true> = {
  'message.received': true,
  'message.sent': true,
  'message.status': true,
  'contact.request': true,
  'contact.updated': true,
  'identity.changed': true,
  'group.invite': true,
  'group.joined': true,
  'group.message': true,
  'group.member.added': true,
  'group.member.removed': true
}
export const EVENT_TYPES = Object.keys(EVENT_TYPE_SET) as readonly OctetEventType[]
/** The events of incoming messages: released in their sender's order (ordering.ts). */
export type OrderedEventType = 'message.received' | 'group.message'
/** The types of events about one group: each carries its `groupId`. */
export type GroupEventType = 'group.invite' | 'group.joined' | 'group.message' | 'group.member.added' | 'group.member.removed'

/** An event to commit: its type and the data of that type. */
export type NewEvent<K extends OctetEventType = OctetEventType> = { [T in K]: { type: T, data: OctetEventDataMap[T] } }[K]

/** An event as stored and streamed: `id` increases by one per event, across restarts. */
export type OctetEvent<K extends OctetEventType = OctetEventType> = { [T in K]: { id: number, type: T, at: number, data: OctetEventDataMap[T] } }[K]

const pad = (n: number): string => String(n).padStart(16, '0')
/** Events read and deleted per database batch while pruning. */
const PRUNE_CHUNK = 1000

/**
 * The durable, ordered event log behind SSE: a participant of the commit
 * pipeline. A commit's state changes and its events are written in one
 * batch; ids are handed out when the batch is put together, in commit order,
 * and events are published only once their batch is on disk. So ids are
 * gapless and stored and published in one order: a client resuming from
 * Last-Event-ID can never skip an event that committed late.
 *
 * Writes: `commit` (state and events; durable when it resolves) and
 * `prune` (old events; durable batch by batch), both through the pipeline.
 */
export class EventLog {
  private readonly listeners = new Set<(event: OctetEvent) => void>()
  private readonly typed = new Map<OctetEventType, Set<(event: OctetEvent) => void>>()
  /** the last id handed out to a batch being written; lastId when none is */
  private assignedId: number

  private constructor (
    private readonly pipeline: CommitPipeline,
    private readonly events: RecordSublevel<OctetEvent>,
    /** the newest id on disk */
    private lastId: number,
    /** the oldest id still stored; lastId + 1 when none is */
    private firstId: number
  ) {
    this.assignedId = lastId
  }

  static async open (pipeline: CommitPipeline): Promise<EventLog> {
    const events = pipeline.store.records<OctetEvent>('events')
    let lastId = 0
    for await (const event of events.values({ reverse: true, limit: 1 })) lastId = event.id
    let firstId = lastId + 1
    for await (const event of events.values({ limit: 1 })) firstId = event.id
    return new EventLog(pipeline, events, lastId, firstId)
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
      await this.pipeline.commit(doomed.map(id => ({ type: 'del', sublevel: this.events, key: pad(id) })))
      this.firstId = (doomed.at(-1) ?? this.firstId) + 1
      deleted += doomed.length
    }
    return deleted
  }

  /**
   * Writes `ops` and the events atomically, after every commit made before
   * (see CommitPipeline), then tells subscribers. Resolves with the events as
   * stored once they are on disk.
   */
  async commit (ops: StoreOp[], newEvents: NewEvent[] = [], now = Date.now()): Promise<OctetEvent[]> {
    return await this.pipeline.commit(ops, () => this.stage(newEvents, now))
  }

  /** Called as the batch is put together, in commit order: ids now, publication once it landed. */
  private stage (newEvents: NewEvent[], at: number): Staged<OctetEvent[]> {
    const events = newEvents.map(e => ({ id: ++this.assignedId, type: e.type, at, data: e.data }) as OctetEvent)
    return {
      ops: events.map(event => ({ type: 'put', sublevel: this.events, key: pad(event.id), value: event })),
      landed: () => {
        this.lastId = events.at(-1)?.id ?? this.lastId
        for (const event of events) this.publish(event)
        return events
      },
      // nothing of the batch was written: its ids are handed out again
      failed: () => { this.assignedId = this.lastId }
    }
  }

  private publish (event: OctetEvent): void {
    for (const listener of this.listeners) listener(event)
    for (const listener of this.typed.get(event.type) ?? []) listener(event)
  }

  /** Stored events with id > `afterId`, oldest first. */
  async * since (afterId: number, limit = Infinity): AsyncGenerator<OctetEvent> {
    let count = 0
    for await (const event of this.events.values({ gt: pad(afterId) })) {
      if (count++ >= limit) return
      yield event
    }
  }

  /** Every event, once it is on disk, in id order. Returns the unsubscribe function. */
  subscribe (listener: (event: OctetEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Events of one type, once on disk, in id order. Returns the unsubscribe function. */
  on<K extends OctetEventType> (type: K, listener: (event: OctetEvent<K>) => void): () => void {
    let listeners = this.typed.get(type)
    if (listeners == null) this.typed.set(type, listeners = new Set())
    const untyped = listener as (event: OctetEvent) => void
    listeners.add(untyped)
    return () => { listeners.delete(untyped) }
  }
}
