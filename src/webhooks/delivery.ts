import { backoffDelay } from '../backoff.js'
import { errorMessage, systemErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Counters, EventLog, OctetEvent } from '../messaging/index.js'
import { SECOND } from '../units.js'
import { HEADER_EVENT_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_WEBHOOK_ID, READ_PAGE } from './constants.js'
import { Poster } from './post.js'
import { signature } from './signing.js'
import type { WebhookRecord, WebhookStore } from './store.js'

/** How deliveries are timed (defaults in constants.ts). */
export interface WebhookOptions {
  /** one POST, ms */
  timeout: number
  /** the first retry's wait, ms */
  retryMin: number
  /** the longest wait between retries, ms */
  retryMax: number
  /** failed attempts in a row after which the webhook is paused */
  pauseAfter: number
  /** how long a stop lets a POST in flight finish, ms */
  stopGrace: number
}

/** What a worker needs of the event log. */
export type EventSource = Pick<EventLog, 'since' | 'latestId'>

export interface DeliveryInit {
  events: EventSource
  store: WebhookStore
  options: WebhookOptions
  counters: Counters
  log: Logger
  userAgent: string
}

type Outcome = { ok: true } | { ok: false, error: string } | { ok: false, stopped: true }

/**
 * One webhook's delivery loop: events after its cursor, POSTed one at a time
 * in id order; the next only after a 2xx. A worker that keeps up takes the
 * events as they are published (`notify`), which follow on from what it read
 * last; any other (one that fell behind, a gap, more than a page waiting) reads
 * the log on disk from its cursor. Both give the same events, in the same
 * order: the log publishes only what is on disk, gapless and in id order.
 * The cursor is stored (through the commit pipeline) behind the deliveries,
 * not before each next POST (a third more events per second), and always
 * before a stop ends. So delivery is at least once: what is sent twice is
 * the POST in flight when the daemon stopped, or one whose answer was lost;
 * after a crash, also those delivered since the last cursor write landed
 * (the few of the last milliseconds). Failures are
 * retried with a doubling, jittered wait; after `pauseAfter` in a row the
 * webhook is paused until resume(). Events of types it did not ask for
 * advance the cursor without a POST. A gap (events pruned before it got
 * them) is recorded in `missed`, logged, and skipped.
 */
export class WebhookWorker {
  private stopping = false
  /** aborts the POST in flight: at the end of the stop grace, or at once on delete */
  private readonly abort = new AbortController()
  /** set by notify(): an event landed since the loop last looked */
  private newEvents = false
  /**
   * Events published since the loop last read, kept while they follow on, without a gap, from
   * `seen`; at most a page. The loop delivers them without reading the disk when they start
   * right after its cursor: a read of the disk less per event and per webhook (about 0.2 ms of
   * the delay a webhook adds; the POST itself is the rest).
   */
  private fresh: OctetEvent[] = []
  /** the newest id the loop has in hand: read last, or the cursor it started from */
  private seen: number
  /** set by a stop or a resume: any wait ends */
  private control = false
  private wake: (() => void) | undefined
  private running: Promise<void> | undefined
  /** the cursor write under way (saveBehind), and whether deliveries since want another */
  private saving: Promise<void> | undefined
  private saveAgain = false
  private readonly poster = new Poster()
  private readonly url: URL

  constructor (public record: WebhookRecord, private readonly init: DeliveryInit) {
    this.url = new URL(record.url)
    this.seen = record.cursor
  }

  /** Events the receiver has not acknowledged yet (every type, filtered or not). */
  get lag (): number {
    return Math.max(0, this.init.events.latestId - this.record.cursor)
  }

  start (): void {
    this.running ??= this.loop().catch((err: unknown) => {
      this.init.log.error({ err, webhook: this.record.id }, 'webhook delivery loop failed; it delivers nothing until the daemon restarts')
    })
  }

  /** An event landed in the log (published in id order, once on disk). */
  notify (event: OctetEvent): void {
    // an event that does not follow on (the loop is behind, or the page is full) is left on
    // disk, and so is every one after it until the loop reads again
    if (event.id === (this.fresh.at(-1)?.id ?? this.seen) + 1 && this.fresh.length < READ_PAGE) this.fresh.push(event)
    this.newEvents = true
    this.wake?.()
  }

  /** Active again, failures forgotten, and the next attempt made now. */
  async resume (): Promise<WebhookRecord> {
    const { pausedAt: _pausedAt, failingSince: _failingSince, ...rest } = this.record
    this.record = { ...rest, state: 'active', failures: 0 }
    await this.init.store.put(this.record)
    this.control = true
    this.wake?.()
    return this.record
  }

  /**
   * Ends the loop: a POST in flight gets `grace` ms to finish (its 2xx still moves the
   * cursor), then it is aborted and is sent again by the next run. Resolves once the loop
   * ended and wrote what it had to.
   */
  async stop (grace: number): Promise<void> {
    this.stopping = true
    this.control = true
    this.wake?.()
    if (this.running == null) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.running, new Promise<void>(resolve => { timer = setTimeout(resolve, grace) })])
    clearTimeout(timer)
    this.abort.abort()
    await this.running
  }

  private async loop (): Promise<void> {
    try {
      while (!this.stopping) {
        if (this.record.state === 'paused') {
          await this.sleep(Infinity, false)
          continue
        }
        // cleared before the events are taken: one that lands meanwhile sets it again, so the
        // idle wait below cannot miss it
        this.newEvents = false
        const page = await this.nextPage()
        if (page.length === 0) {
          await this.sleep(Infinity, true)
          continue
        }
        await this.deliverPage(page)
      }
    } finally {
      // what a remove() or a stop waits for: after this, nothing of this webhook is written or sent
      await this.saving
      this.poster.close()
    }
  }

  /** The events after the cursor: those published meanwhile if they start right after it, else read from the log. */
  private async nextPage (): Promise<OctetEvent[]> {
    const { cursor } = this.record
    if (this.fresh[0]?.id === cursor + 1) {
      const page = this.fresh
      this.fresh = []
      this.seen = page.at(-1)?.id ?? cursor
      return page
    }
    const page: OctetEvent[] = []
    for await (const event of this.init.events.since(cursor, READ_PAGE)) page.push(event)
    // events published during the read followed the old `seen` without a gap: those the read
    // has too go, and the rest follow on from the read, ready for the next turn
    this.seen = page.at(-1)?.id ?? cursor
    this.fresh = this.fresh.filter(event => event.id > this.seen)
    return page
  }

  /** Delivers a page of events in order; returns early on a stop, a pause or a gap written. */
  private async deliverPage (page: OctetEvent[]): Promise<void> {
    const { record } = this
    const first = page[0]
    if (first != null && first.id > record.cursor + 1) await this.skipPruned(first.id)
    let passedOver = false
    for (const event of page) {
      if (this.stopping || this.record.state === 'paused') break
      if (record.events.length > 0 && !(record.events as string[]).includes(event.type)) {
        this.record = { ...this.record, cursor: event.id }
        passedOver = true
        continue
      }
      if (!await this.deliverWithRetries(event)) {
        // the cursor moved past filtered events is written now; the event itself comes again
        if (passedOver) await this.save()
        return
      }
      passedOver = false
    }
    if (passedOver) await this.save()
  }

  private async skipPruned (firstKept: number): Promise<void> {
    const missed = { from: this.record.cursor + 1, to: firstKept - 1, at: Date.now() }
    this.init.log.warn({ webhook: this.record.id, ...missed }, 'webhook fell behind the event log: events were pruned before it got them; it goes on from the oldest kept (see `missed` in GET /v1/webhooks/:id)')
    this.init.counters.increment('webhooks.missed', missed.to - missed.from + 1)
    this.record = { ...this.record, cursor: firstKept - 1, missed }
    await this.save()
  }

  /** True once the receiver took the event (and the cursor is stored); false on a stop or a pause. */
  private async deliverWithRetries (event: OctetEvent): Promise<boolean> {
    const body = JSON.stringify(event)
    while (!this.stopping && this.record.state === 'active') {
      const outcome = await this.post(event.id, body)
      if (outcome.ok) {
        const { failingSince: _failingSince, ...rest } = this.record
        this.record = { ...rest, cursor: event.id, failures: 0 }
        this.init.counters.increment('webhooks.delivered')
        this.saveBehind()
        return true
      }
      if ('stopped' in outcome) return false
      await this.failed(outcome.error)
      if (this.record.state === 'active') await this.sleep(this.backoff(), false)
    }
    return false
  }

  private async failed (error: string): Promise<void> {
    const now = Date.now()
    const failures = this.record.failures + 1
    this.init.counters.increment('webhooks.failed')
    this.record = { ...this.record, failures, failingSince: this.record.failingSince ?? now, lastError: error, lastErrorAt: now }
    if (failures >= this.init.options.pauseAfter) {
      this.record = { ...this.record, state: 'paused', pausedAt: now }
      this.init.counters.increment('webhooks.paused')
      this.init.log.warn({ webhook: this.record.id, origin: new URL(this.record.url).origin, failures, lastError: error }, 'webhook paused after failing repeatedly; POST /v1/webhooks/:id/resume (octet webhooks resume) once the receiver is back')
    } else {
      this.init.log.debug({ webhook: this.record.id, failures, lastError: error }, 'webhook delivery failed; retrying')
    }
    await this.save()
  }

  /** The wait before the next attempt: doubling from retryMin to retryMax, jittered to half–all of it. */
  private backoff (): number {
    const { retryMin, retryMax } = this.init.options
    return backoffDelay(this.record.failures - 1, { baseMs: retryMin, maxMs: retryMax })
  }

  /** One POST: signed now, ended by the timeout or the end of a stop, redirects not followed. */
  private async post (eventId: number, body: string): Promise<Outcome> {
    const { timeout } = this.init.options
    const timestamp = Math.floor(Date.now() / SECOND)
    try {
      const { status, location } = await this.poster.post(this.url, {
        'content-type': 'application/json',
        'user-agent': this.init.userAgent,
        [HEADER_WEBHOOK_ID]: this.record.id,
        [HEADER_EVENT_ID]: String(eventId),
        [HEADER_TIMESTAMP]: String(timestamp),
        [HEADER_SIGNATURE]: signature(this.record.secret, timestamp, body)
      }, body, { timeoutMs: timeout, stop: this.abort.signal })
      if (status >= 200 && status < 300) return { ok: true }
      // a redirect could point anywhere (another host, an internal address): it is a failure
      return { ok: false, error: status >= 300 && status < 400 ? `HTTP ${status}: redirect${location != null ? ` to ${location.slice(0, 200)}` : ''} not followed` : `HTTP ${status}` }
    } catch (err) {
      if (this.abort.signal.aborted) return { ok: false, stopped: true }
      if (err instanceof Error && err.name === 'TimeoutError') return { ok: false, error: `no answer within ${timeout / SECOND} s` }
      return { ok: false, error: systemErrorCode(err) ?? errorMessage(err) }
    }
  }

  /**
   * Stores the cursor behind the deliveries: the next POST does not wait for the disk, and
   * while one write is under way the deliveries meanwhile make one more, of the latest state.
   */
  private saveBehind (): void {
    if (this.saving != null) {
      this.saveAgain = true
      return
    }
    this.saving = (async () => {
      do {
        this.saveAgain = false
        await this.save()
      } while (this.saveAgain)
      this.saving = undefined
    })()
  }

  /** Stores the record; a failed write (a full disk) is logged and the next one carries the state. */
  private async save (): Promise<void> {
    try {
      await this.init.store.put(this.record)
    } catch (err) {
      this.init.log.warn({ err, webhook: this.record.id }, 'could not store the webhook cursor; an event may be delivered again after a restart')
    }
  }

  /** Waits `ms`; a stop or resume ends the wait, and so does a new event when `onEvents`. */
  private async sleep (ms: number, onEvents: boolean): Promise<void> {
    if (this.control || (onEvents && this.newEvents)) {
      this.control = false
      return
    }
    await new Promise<void>(resolve => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined
      const self = this
      function done (): void {
        clearTimeout(timer)
        self.wake = undefined
        resolve()
      }
      this.wake = () => { if (this.control || (onEvents && this.newEvents)) done() }
    })
    this.control = false
  }
}
