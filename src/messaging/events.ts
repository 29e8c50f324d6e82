import { EventEmitter } from 'node:events'
import type { RecordSublevel, Store, StoreOp } from '../store/database.js'

export type OctetEventType =
  | 'message.received'
  | 'message.status'
  | 'contact.request'
  | 'contact.updated'
  | 'identity.changed'

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

/**
 * The durable, ordered event log behind SSE. State changes and their events
 * are written in one batch, and batches are serialised so that ids are
 * handed out, stored and published in the same order: a client resuming from
 * Last-Event-ID can never skip an event that committed late.
 */
export class EventLog {
  private readonly emitter = new EventEmitter()
  private tail: Promise<unknown> = Promise.resolve()

  private constructor (
    private readonly store: Store,
    private readonly events: RecordSublevel<OctetEvent>,
    private lastId: number
  ) {
    // every SSE client is one listener
    this.emitter.setMaxListeners(0)
  }

  static async open (store: Store): Promise<EventLog> {
    const events = store.records<OctetEvent>('events')
    let lastId = 0
    for await (const event of events.values({ reverse: true, limit: 1 })) lastId = event.id
    return new EventLog(store, events, lastId)
  }

  get latestId (): number {
    return this.lastId
  }

  /** Writes `ops` and the events atomically, then tells live subscribers. */
  async commit (ops: StoreOp[], newEvents: NewEvent[] = [], now = Date.now()): Promise<OctetEvent[]> {
    const run = this.tail.then(async () => {
      const events = newEvents.map((e, i) => ({ id: this.lastId + i + 1, type: e.type, at: now, data: e.data }))
      const eventOps: StoreOp[] = events.map(event => ({ type: 'put', sublevel: this.events, key: pad(event.id), value: event }))
      await this.store.batch([...ops, ...eventOps])
      this.lastId += events.length
      for (const event of events) this.emitter.emit('event', event)
      return events
    })
    // a failed batch must not wedge every later commit
    this.tail = run.catch(() => {})
    return await run
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
