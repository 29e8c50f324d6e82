import type { Logger } from './logger.js'
import { SECOND } from './units.js'

/**
 * Repeats of one refusal are logged at most once per this interval: the
 * first one in full, the rest as a count when the interval ends.
 */
export const REFUSAL_LOG_INTERVAL = 10 * SECOND
/** Distinct peers remembered per refusal and interval, for the count in the summary line. */
const MAX_PEERS_PER_SUMMARY = 1_000

/** Where refusals are counted (the daemon's /v1/stats counters). */
export interface RefusalCounter {
  increment: (name: string, by?: number) => void
}

export type RefusalLevel = 'warn' | 'info' | 'debug'

export interface Refusal {
  /** the /v1/stats counter, e.g. `dm.rejected.FORGED_SENDER`: also what repeats are grouped by */
  counter: string
  /** the line written for the first refusal of an interval */
  message: string
  level?: RefusalLevel
  /** details of the first refusal (a peer, a code, an error) */
  fields?: Record<string, unknown>
  /** counted as distinct peers in the summary line, never logged there; leave out where who asked must not be logged */
  peer?: string
  /** a refusal of several items at once (a batch) */
  by?: number
}

interface Window {
  startedAt: number
  level: RefusalLevel
  message: string
  repeats: number
  peers: Set<string>
}

/**
 * The one way a refusal of input from a peer is counted and logged, in
 * every protocol (DM, mailbox, prekeys, groups, the DHT): every refusal is
 * counted, and a flood of one kind is a few log lines with counts instead
 * of a line each (one peer may send thousands a second; at ~300 bytes a
 * line that fills a disk). Per counter and interval: the first refusal is
 * logged with its details, later ones are summed and written as one line
 * `{ counter, repeats, peers }` when the interval ends, and at stop().
 */
export class Refusals {
  private readonly windows = new Map<string, Window>()
  /** every counter a refusal went to (a few dozen names at most: protocols × reasons) */
  private readonly counted = new Set<string>()
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly counters: RefusalCounter,
    private readonly log: Logger,
    private readonly interval = REFUSAL_LOG_INTERVAL,
    private readonly now: () => number = Date.now
  ) {}

  refuse ({ counter, message, level = 'warn', fields = {}, peer, by = 1 }: Refusal): void {
    this.counters.increment(counter, by)
    this.counted.add(counter)
    const now = this.now()
    const open = this.windows.get(counter)
    if (open != null && now - open.startedAt < this.interval) {
      open.repeats += by
      if (peer != null && open.peers.size < MAX_PEERS_PER_SUMMARY) open.peers.add(peer)
      return
    }
    if (open != null) this.summarize(counter, open)
    this.windows.set(counter, { startedAt: now, level, message, repeats: 0, peers: new Set() })
    this.log[level]({ ...fields, counter }, message)
    this.schedule()
  }

  /** Whether `counter` counts refusals (GET /metrics shows those apart from the other counters). */
  isRefusal (counter: string): boolean {
    return this.counted.has(counter)
  }

  /** Writes the counts of repeats not logged yet (the daemon calls it when it stops). */
  flush (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    for (const [counter, window] of this.windows) this.summarize(counter, window)
    this.windows.clear()
  }

  /** Ends the windows that are over; runs while any is open. */
  private schedule (): void {
    if (this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      const now = this.now()
      for (const [counter, window] of this.windows) {
        if (now - window.startedAt < this.interval) continue
        this.summarize(counter, window)
        this.windows.delete(counter)
      }
      if (this.windows.size > 0) this.schedule()
    }, this.interval)
    this.timer.unref()
  }

  private summarize (counter: string, window: Window): void {
    if (window.repeats === 0) return
    this.log[window.level]({
      counter,
      repeats: window.repeats,
      ...(window.peers.size > 0 ? { peers: window.peers.size } : {}),
      seconds: Math.round((this.now() - window.startedAt) / 100) / 10
    }, `${window.message}: ${window.repeats} more like it (counted in /v1/stats, not logged one by one)`)
    window.repeats = 0
  }
}
