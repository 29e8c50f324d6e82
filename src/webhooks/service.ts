import { randomBytes } from 'node:crypto'
import { OctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Counters, EventLog, OctetEventType } from '../messaging/index.js'
import { EVENT_RETENTION, EVENT_RETENTION_COUNT } from '../messaging/constants.js'
import type { CommitPipeline } from '../store/commit.js'
import { DAY } from '../units.js'
import { DELIVERY_TIMEOUT, GENERATED_SECRET_BYTES, MAX_WEBHOOKS, PAUSE_AFTER_FAILURES, RETRY_MAX_DELAY, RETRY_MIN_DELAY, STOP_GRACE } from './constants.js'
import { WebhookWorker, type WebhookOptions } from './delivery.js'
import { WebhookStore, type MissedEvents, type WebhookRecord, type WebhookState } from './store.js'


const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  timeout: DELIVERY_TIMEOUT,
  retryMin: RETRY_MIN_DELAY,
  retryMax: RETRY_MAX_DELAY,
  pauseAfter: PAUSE_AFTER_FAILURES,
  stopGrace: STOP_GRACE
}

/** A webhook as the API shows it: never its secret. */
export interface WebhookView {
  id: string
  url: string
  events: OctetEventType[]
  createdAt: number
  state: WebhookState
  failures: number
  lastError?: string
  lastErrorAt?: number
  pausedAt?: number
  /** the last event id the receiver acknowledged (or the filter passed over) */
  lastDeliveredId: number
  /** events in the log after lastDeliveredId */
  lag: number
  missed?: MissedEvents
}

export interface NewWebhook {
  url: string
  events?: OctetEventType[]
  secret?: string
  /** deliver the events after this id; default: those from now on */
  after?: number
}

export interface WebhookServiceInit {
  pipeline: CommitPipeline
  events: EventLog
  counters: Counters
  log: Logger
  userAgent: string
  options?: Partial<WebhookOptions>
}

/**
 * Webhooks: pushes each event of the log to the URLs registered, signed,
 * at least once and in id order per webhook (see WebhookWorker). Each
 * webhook's cursor is stored with it (WebhookStore), so a restart goes on
 * where the receiver's last 2xx left it.
 *
 * Writes: webhooks and cursors, through the commit pipeline; stop() lets
 * a POST in flight finish for `stopGrace`, aborts it after, and resolves
 * once every cursor is written.
 */
export class WebhookService {
  private readonly store: WebhookStore
  private readonly options: WebhookOptions
  private readonly workers = new Map<string, WebhookWorker>()
  private unsubscribe: (() => void) | undefined
  private started = false

  constructor (private readonly init: WebhookServiceInit) {
    this.store = new WebhookStore(init.pipeline)
    this.options = { ...DEFAULT_WEBHOOK_OPTIONS, ...init.options }
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    for (const record of await this.store.all()) this.run(record)
    this.unsubscribe = this.init.events.subscribe(event => {
      for (const worker of this.workers.values()) worker.notify(event)
    })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.unsubscribe?.()
    await Promise.all([...this.workers.values()].map(async worker => { await worker.stop(this.options.stopGrace) }))
    this.workers.clear()
  }

  private run (record: WebhookRecord): void {
    const { events, counters, log, userAgent } = this.init
    const worker = new WebhookWorker(record, { events, store: this.store, options: this.options, counters, log, userAgent })
    this.workers.set(record.id, worker)
    worker.start()
  }

  /** Registers a webhook; the answer carries its secret, which is never shown again. */
  async create (given: NewWebhook): Promise<{ webhook: WebhookView, secret: string }> {
    this.assertRunning()
    const url = checkUrl(given.url)
    if (this.workers.size >= MAX_WEBHOOKS) throw new OctetError('CONFLICT', `this daemon already has ${MAX_WEBHOOKS} webhooks, its limit; remove one first`)
    const { events } = this.init
    const after = given.after ?? events.latestId
    if (after > events.latestId) throw new OctetError('BAD_REQUEST', `after: ${after} is beyond the newest event (${events.latestId})`)
    if (after + 1 < events.oldestId) {
      throw new OctetError('EVENTS_PRUNED', `events ${after + 1} to ${events.oldestId - 1} are no longer kept (events are kept ${EVENT_RETENTION / DAY} days, at most ${EVENT_RETENTION_COUNT}); start with after ≥ ${events.oldestId - 1}, or without after for new events only`)
    }
    const secret = given.secret ?? randomBytes(GENERATED_SECRET_BYTES).toString('base64url')
    const record: WebhookRecord = {
      id: randomBytes(8).toString('hex'),
      url,
      events: [...new Set(given.events ?? [])],
      secret,
      createdAt: Date.now(),
      cursor: after,
      state: 'active',
      failures: 0
    }
    await this.store.put(record)
    this.run(record)
    // the origin only: a URL's path or query may carry a credential of the receiver's
    this.init.log.info({ webhook: record.id, origin: new URL(url).origin, events: record.events }, 'webhook added')
    return { webhook: this.view(record.id), secret }
  }

  list (): WebhookView[] {
    return [...this.workers.keys()].map(id => this.view(id))
  }

  get (id: string): WebhookView {
    return this.view(id)
  }

  async remove (id: string): Promise<void> {
    const worker = this.worker(id)
    this.workers.delete(id)
    // at once: nothing more is sent to a URL its owner took back
    await worker.stop(0)
    await this.store.delete(id)
    this.init.log.info({ webhook: id }, 'webhook removed')
  }

  async resume (id: string): Promise<WebhookView> {
    this.assertRunning()
    await this.worker(id).resume()
    return this.view(id)
  }

  /** Each webhook's state and lag, for GET /metrics. */
  stats (): Array<{ id: string, state: WebhookState, lag: number }> {
    return [...this.workers.values()].map(w => ({ id: w.record.id, state: w.record.state, lag: w.lag }))
  }

  private worker (id: string): WebhookWorker {
    const worker = this.workers.get(id)
    if (worker == null) throw new OctetError('NOT_FOUND', `no webhook ${id}; see GET /v1/webhooks`)
    return worker
  }

  private view (id: string): WebhookView {
    const worker = this.worker(id)
    const { secret: _secret, cursor, failingSince: _failingSince, ...shown } = worker.record
    return { ...shown, lastDeliveredId: cursor, lag: worker.lag }
  }

  private assertRunning (): void {
    if (!this.started) throw new OctetError('UNAVAILABLE', 'the webhook service is not running')
  }
}

/** An absolute http: or https: URL without credentials, as fetch will take it. */
function checkUrl (text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new OctetError('BAD_REQUEST', `url: "${text.slice(0, 100)}" is not an absolute URL; give one such as https://bridge.example/octet`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OctetError('BAD_REQUEST', `url: only http: and https: URLs can receive webhooks, not ${url.protocol}`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new OctetError('BAD_REQUEST', 'url: credentials in the URL are not sent; verify deliveries by their signature (X-Octet-Signature) instead')
  }
  return url.href
}
