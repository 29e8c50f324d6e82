import { errorMessage } from '../errors.js'
import { InFlight } from '../in-flight.js'
import type { Logger } from '../logger.js'
import type { RecordSublevel, Store, StoreOp } from '../store/database.js'
import { MAX_HELD_EVENTS_PER_STREAM } from './constants.js'
import type { EventLog, NewEvent, OrderMarks, OrderedEventType } from './events.js'
import type { Counters } from './stats.js'

/**
 * The one ordering rule for the events of incoming messages, direct and
 * group alike. A stream is what has one sender's order: a conversation, or
 * one sender in a group; its messages carry seq 1, 2, … The message itself
 * is stored (and acknowledged) as soon as it arrives; only its event waits:
 *
 * - in order (the seq after the last one released): released now, with the
 *   events held behind it that now follow without a gap, in seq order;
 * - early (an earlier seq is missing): held, on disk with the message in
 *   the same commit, until the gap fills, or `holdMs` passes;
 * - held too long: released, in seq order with everything held below it,
 *   each event naming the seqs missing right before it (`gap`);
 * - late (its seq is at or below the last one released: the gap before a
 *   later event was named already): released at once, marked `late`.
 *
 * Held events are re-armed when the daemon starts, and released when due:
 * none is lost, and each is released exactly once (its release deletes it
 * in the commit that writes the event).
 */

/** An event waiting for the seqs below it, as stored. */
export interface HeldEvent {
  stream: string
  seq: number
  event: OrderedEvent
  heldAt: number
  dueAt: number
}

/** The event of an incoming message: what is ordered. */
export type OrderedEvent = NewEvent<OrderedEventType>

export interface EventOrderInit {
  /** keeps this order's streams apart from another's in the shared sublevels, and names its counters (`<name>.events.held` …): 'dm', 'group' */
  name: string
  store: Store
  events: EventLog
  /**
   * Runs `work` under the lock that orders every change of the stream's
   * messages (the same one their arrival takes): a timed release must not
   * interleave with an arrival
   */
  lock: <T>(stream: string, work: () => Promise<T>) => Promise<T>
  holdMs: number
  /**
   * The store ops that come with events going out, committed with them
   * (group history lists a message when its event goes out: one order for both)
   */
  released?: (events: OrderedEvent[]) => Promise<StoreOp[]>
  counters: Counters
  log: Logger
  now?: () => number
}

const pad = (n: number): string => String(n).padStart(12, '0')

/** A stream's position after restart(): its next message, whatever its seq, is the first. */
const FRESH = -1

/**
 * A held event as kept in memory: its due time, and the event itself only
 * until the commit that holds it landed (then it is read back from disk
 * when released), so that what a stream holds costs memory by the count,
 * not by the size of the texts.
 */
interface HeldSlot {
  seq: number
  dueAt: number
  event?: OrderedEvent
}

/** One stream's ordering state: what a commit changes, applied once it landed. */
interface StreamState {
  /** every seq up to this one has had its event released (or was named in a gap); FRESH after restart() */
  released: number
  held: Map<number, HeldSlot>
}

/**
 * Per stream, the events of its messages in seq order (see above). Callers
 * take a Draft under the stream's lock, admit the stream's new messages,
 * commit the draft's ops and events with the messages, then apply the draft.
 */
export class EventOrder {
  private readonly positions: RecordSublevel<number>
  private readonly heldEvents: RecordSublevel<HeldEvent>
  private readonly states = new Map<string, StreamState>()
  private readonly releases = new InFlight()
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private running = false

  constructor (private readonly init: EventOrderInit) {
    this.positions = init.store.records('event-order')
    this.heldEvents = init.store.records('event-held')
    this.now = init.now ?? Date.now
  }

  /** Loads what was held when the daemon stopped, and releases it when due (at once if overdue). */
  async start (): Promise<void> {
    if (this.running) return
    const prefix = `${this.init.name}!`
    for await (const held of this.heldEvents.values({ gt: prefix, lt: `${prefix}\xff` })) {
      const state = await this.state(held.stream)
      state.held.set(held.seq, { seq: held.seq, dueAt: held.dueAt })
    }
    this.running = true
    this.arm()
  }

  /** Clears the timer and waits for a release under way. Held events stay on disk for the next start. */
  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = Infinity
    await this.releases.idle()
  }

  /** How many events wait for a gap to fill, in all streams. */
  get heldCount (): number {
    let count = 0
    for (const state of this.states.values()) count += state.held.size
    return count
  }

  /**
   * The stream's state to change in a commit; call under the stream's lock.
   * `initial` is where a stream with no stored position starts: the last seq
   * whose event went out before ordering existed (0 for a new stream).
   */
  async draft (stream: string, initial: () => number): Promise<Draft> {
    return new Draft(this, stream, await this.state(stream, initial))
  }

  /**
   * Releases now what `streams` hold (with the gaps named), whatever its due
   * time: the caller gave up waiting (a group catch-up found nothing). Call
   * under the streams' lock. Returns how many events went out.
   */
  async releaseNow (streams: (stream: string) => boolean): Promise<number> {
    let released = 0
    for (const [stream, state] of this.states) {
      if (!streams(stream) || state.held.size === 0) continue
      released += await this.releaseHeld(stream, Infinity)
    }
    return released
  }

  private async state (stream: string, initial: () => number = () => 0): Promise<StreamState> {
    let state = this.states.get(stream)
    if (state == null) {
      const released = await this.positions.get(this.positionKey(stream))
      // another call may have loaded it meanwhile: the first one stays
      state = this.states.get(stream) ?? { released: released ?? initial(), held: new Map() }
      this.states.set(stream, state)
    }
    return state
  }

  positionKey (stream: string): string {
    return `${this.init.name}!${stream}`
  }

  heldKey (stream: string, seq: number): string {
    return `${this.init.name}!${stream}!${pad(seq)}`
  }

  putPosition (stream: string, released: number): StoreOp {
    return { type: 'put', sublevel: this.positions, key: this.positionKey(stream), value: released }
  }

  putHeld (held: HeldEvent): StoreOp {
    return { type: 'put', sublevel: this.heldEvents, key: this.heldKey(held.stream, held.seq), value: held }
  }

  delHeld (stream: string, seq: number): StoreOp {
    return { type: 'del', sublevel: this.heldEvents, key: this.heldKey(stream, seq) }
  }

  get holdMs (): number {
    return this.init.holdMs
  }

  count (name: string, by: number): void {
    if (by > 0) this.init.counters.increment(`${this.init.name}.events.${name}`, by)
  }

  /** A held event as stored (undefined if it is not: nothing to release). */
  async readHeld (stream: string, seq: number): Promise<OrderedEvent | undefined> {
    return (await this.heldEvents.get(this.heldKey(stream, seq)))?.event
  }

  /** A draft's commit landed: its state is the stream's now, and what it holds is on disk. */
  applied (stream: string, state: StreamState): void {
    for (const slot of state.held.values()) delete slot.event
    this.states.set(stream, state)
    this.arm()
  }

  /** The timer, at the earliest due time of any held event. */
  private arm (): void {
    if (!this.running) return
    let due = Infinity
    for (const state of this.states.values()) for (const held of state.held.values()) due = Math.min(due, held.dueAt)
    if (due >= this.timerAt) return
    clearTimeout(this.timer)
    this.timerAt = due
    if (due === Infinity) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      void this.releases.track(this.releaseDue())
    }, Math.max(0, due - this.now()))
  }

  private async releaseDue (): Promise<void> {
    const now = this.now()
    for (const [stream, state] of this.states) {
      if (!this.running) return
      if (![...state.held.values()].some(held => held.dueAt <= now)) continue
      try {
        await this.init.lock(stream, async () => await this.releaseHeld(stream, now))
      } catch (err) {
        // nothing of it was written (DISK_FULL …): it is still held, and tried again on the next round
        this.init.log.warn({ stream, err: errorMessage(err) }, 'could not release held events; trying again')
        this.retryLater()
        return
      }
    }
    this.arm()
  }

  private retryLater (): void {
    if (!this.running) return
    clearTimeout(this.timer)
    this.timerAt = this.now() + this.init.holdMs
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      void this.releases.track(this.releaseDue())
    }, this.init.holdMs)
  }

  /** Releases the stream's events held up to the highest one due by `now` (lock held). */
  private async releaseHeld (stream: string, now: number): Promise<number> {
    const draft = await this.draft(stream, () => 0)
    const events = await draft.releaseDue(now)
    if (events.length === 0) return 0
    const { ops, apply } = draft.finish()
    await this.init.events.commit([...ops, ...await this.releasedOps(events)], events)
    apply()
    return events.length
  }

  /** What goes with `events` going out (the `released` hook): commit it with them. */
  async releasedOps (events: OrderedEvent[]): Promise<StoreOp[]> {
    return events.length === 0 || this.init.released == null ? [] : await this.init.released(events)
  }
}

/**
 * One stream's changes in one commit: admit messages in, get the events to
 * commit now; finish() gives the store ops to commit with them and the
 * apply() to call once the commit landed (a failed one changes nothing).
 */
export class Draft {
  private readonly state: StreamState
  private readonly ops: StoreOp[] = []
  private changed = false
  private readonly stats = { held: 0, gaps: 0, late: 0 }

  constructor (private readonly order: EventOrder, readonly stream: string, committed: StreamState) {
    this.state = { released: committed.released, held: new Map(committed.held) }
  }

  /** The message with `seq` is stored in this commit: the events to commit with it now (none when it is held). */
  async admit (seq: number, event: OrderedEvent, at: number): Promise<OrderedEvent[]> {
    const { state } = this
    if (state.released === FRESH) this.advance(seq - 1)
    if (seq <= state.released) {
      this.stats.late++
      return [mark(event, { late: true })]
    }
    const out: OrderedEvent[] = []
    if (seq === state.released + 1) {
      out.push(event)
      this.advance(seq)
      await this.drain(out)
      return out
    }
    if (state.held.has(seq)) return out
    const held: HeldEvent = { stream: this.stream, seq, event, heldAt: at, dueAt: at + this.order.holdMs }
    state.held.set(seq, { seq, dueAt: held.dueAt, event })
    this.ops.push(this.order.putHeld(held))
    this.stats.held++
    // a stream that holds too many gives up on its lowest gap rather than keep more
    if (state.held.size > MAX_HELD_EVENTS_PER_STREAM) await this.releaseThrough(Math.min(...state.held.keys()), out)
    return out
  }

  /**
   * The sender starts numbering again (a new installation: its identity key
   * changed): what was held goes out now, the gaps named, and its next
   * message starts the stream afresh. Returns the events to commit.
   */
  async restart (): Promise<OrderedEvent[]> {
    const out = await this.releaseDue(Infinity)
    this.state.released = FRESH
    this.changed = true
    return out
  }

  /** The events held up to the highest seq due by `now` (all of them with Infinity), in seq order. */
  async releaseDue (now: number): Promise<OrderedEvent[]> {
    let through = -1
    for (const held of this.state.held.values()) if (held.dueAt <= now && held.seq > through) through = held.seq
    const out: OrderedEvent[] = []
    if (through >= 0) await this.releaseThrough(through, out)
    return out
  }

  finish (): { ops: StoreOp[], apply: () => void } {
    const ops = [...this.ops]
    // a stream's first held event stores the position too: after a restart it starts from there, not from `initial`
    if (this.changed || ops.length > 0) ops.push(this.order.putPosition(this.stream, this.state.released))
    return {
      ops,
      apply: () => {
        this.order.applied(this.stream, this.state)
        this.order.count('held', this.stats.held)
        this.order.count('released-with-gap', this.stats.gaps)
        this.order.count('late', this.stats.late)
      }
    }
  }

  /** Every held event up to `seq`, in seq order, each naming the gap before it; then what follows without one. */
  private async releaseThrough (seq: number, out: OrderedEvent[]): Promise<void> {
    const { state } = this
    for (const s of [...state.held.keys()].filter(s => s <= seq).sort((a, b) => a - b)) {
      const event = await this.take(s)
      if (event != null && s > state.released + 1) {
        out.push(mark(event, { gap: { from: state.released + 1, to: s - 1 } }))
        this.stats.gaps++
      } else if (event != null) {
        out.push(event)
      }
      this.advance(s)
    }
    await this.drain(out)
  }

  /** The held events that now follow the last one released without a gap. */
  private async drain (out: OrderedEvent[]): Promise<void> {
    for (let seq = this.state.released + 1; this.state.held.has(seq); seq++) {
      const event = await this.take(seq)
      if (event != null) out.push(event)
      this.advance(seq)
    }
  }

  /** Takes a held event out (from memory, or from disk once its commit landed) and deletes it in this commit. */
  private async take (seq: number): Promise<OrderedEvent | undefined> {
    const slot = this.state.held.get(seq)
    this.state.held.delete(seq)
    this.ops.push(this.order.delHeld(this.stream, seq))
    return slot?.event ?? await this.order.readHeld(this.stream, seq)
  }

  private advance (seq: number): void {
    this.state.released = seq
    this.changed = true
  }
}

function mark (event: OrderedEvent, marks: OrderMarks): OrderedEvent {
  return { type: event.type, data: { ...event.data, ...marks } } as OrderedEvent
}
