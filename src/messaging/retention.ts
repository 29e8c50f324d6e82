import { errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import { EVENT_RETENTION, EVENT_RETENTION_COUNT, IDEMPOTENCY_TTL, PRUNE_INTERVAL, SEEN_RETENTION } from './constants.js'
import type { EventLog } from './events.js'
import type { MessagingStore } from './records.js'
import type { Counters } from './stats.js'

export interface RetentionInit {
  events: EventLog
  db: MessagingStore
  counters: Counters
  log: Logger
  now: () => number
  /** default PRUNE_INTERVAL */
  interval?: number
}

export interface PruneReport {
  events: number
  seen: number
  idempotency: number
}

/**
 * Keeps the event log and the dedup tables (received envelopes, Idempotency-Keys)
 * from growing for ever: prunes them at start and then every PRUNE_INTERVAL, to
 * the retention in constants.ts. Counted in /v1/stats as
 * `retention.events.pruned`, `retention.seen.pruned`, `retention.idempotency.pruned`.
 * Writes deletions only, chunk by chunk (events through the commit pipeline,
 * dedup entries straight to the store): what one chunk deleted is on disk
 * before the next is read; stop() waits for the chunk under way.
 */
export class Retention {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> = Promise.resolve()
  private stopped = false

  constructor (private readonly init: RetentionInit) {}

  start (): void {
    if (this.timer != null) return
    // in the background: a daemon with a large table serves while it is read
    this.running = this.pruneOnce()
    this.timer = setInterval(() => { this.running = this.running.then(async () => await this.pruneOnce()) }, this.init.interval ?? PRUNE_INTERVAL)
    this.timer.unref()
  }

  /** Waits for a pruning under way to reach its next pause: the store may close after this. */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  async pruneOnce (): Promise<PruneReport> {
    const { events, db, counters, log } = this.init
    const now = this.init.now()
    const stopped = (): boolean => this.stopped
    const report: PruneReport = { events: 0, seen: 0, idempotency: 0 }
    try {
      report.events = await events.prune(now - EVENT_RETENTION, EVENT_RETENTION_COUNT, stopped)
      report.seen = await db.pruneSeen(now - SEEN_RETENTION, stopped)
      report.idempotency = await db.pruneIdempotency(now - IDEMPOTENCY_TTL, stopped)
    } catch (err) {
      // the next round tries again; nothing is lost by pruning late
      log.warn({ err: errorMessage(err) }, 'pruning old events and dedup entries failed')
    }
    counters.increment('retention.events.pruned', report.events)
    counters.increment('retention.seen.pruned', report.seen)
    counters.increment('retention.idempotency.pruned', report.idempotency)
    if (report.events + report.seen + report.idempotency > 0) log.info(report, 'pruned old events and dedup entries')
    return report
  }
}
