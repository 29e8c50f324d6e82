import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import { AckStatus, decodeEnvelope, type Envelope } from '../wire/codec.js'
import { messageIdToHex } from '../wire/ids.js'
import { COLLECT_FIRST_DELAY, COLLECT_INTERVAL, COLLECT_TIMEOUT, NOTIFY_DEBOUNCE, NOTIFY_FETCH_BURST, NOTIFY_FETCH_RATE_PER_SECOND } from './constants.js'
import { RateLimiter } from '../rate-limit.js'
import type { Receiver } from './receiver.js'
import type { BundleSource, MailboxClient } from './clients.js'
import type { Counters } from './stats.js'

export interface MailboxCollectorInit {
  peerId: string
  client: MailboxClient
  bundles: BundleSource
  /** how many peers near our key to ask: the replicas senders use, and a margin for churn */
  replicas: number
  crypto: SignalCrypto
  receiver: Receiver
  counters: Counters
  log: Logger
  /** the periodic collect (COLLECT_INTERVAL); with watches it is the safety net, not the way mail arrives */
  interval?: number
  /** watch the mailboxes and collect when they say they stored for us (default true, when the client can) */
  notify?: boolean
}

export interface CollectReport {
  mailboxes: number
  fetched: number
  accepted: number
}

/**
 * Picks up what others left for us: asks the peers closest to our key for our
 * sealed envelopes, opens them, hands them to the receiver one sender at a
 * time in sequence order (the same envelope from several mailboxes is one
 * message), and deletes what it took. Runs soon after start and then
 * periodically; and keeps a watch at each of those peers, so that one that
 * stores for us while we are online says so and is fetched from at once.
 *
 * Rounds run one at a time. A full round (DHT walk, every mailbox) also
 * chooses the mailboxes to watch; a notified round fetches from the mailboxes
 * that notified only. Notifies are debounced and coalesced per mailbox (a
 * burst of a thousand stores is a fetch or two), and rate-limited under the
 * mailboxes' own limit on fetches.
 */
export class MailboxCollector {
  private timer: NodeJS.Timeout | undefined
  private flushTimer: NodeJS.Timeout | undefined
  private full: Promise<CollectReport> | undefined
  /** the tail of the chain of rounds: each waits for the one before */
  private rounds: Promise<unknown> = Promise.resolve()
  /** mailboxes that notified and are not fetched from yet */
  private readonly notified = new Set<string>()
  private readonly notifyLimiter = new RateLimiter(NOTIFY_FETCH_RATE_PER_SECOND, NOTIFY_FETCH_BURST)
  private readonly abort = new AbortController()
  private stopped = false
  private readonly interval: number
  private readonly watch: MailboxClient['watch']

  constructor (private readonly init: MailboxCollectorInit) {
    this.interval = init.interval ?? COLLECT_INTERVAL
    this.watch = init.notify === false ? undefined : init.client.watch?.bind(init.client)
  }

  start (): void {
    this.schedule(COLLECT_FIRST_DELAY)
  }

  /** Ends the schedule and the watches, aborts the round under way and waits for it. */
  async stop (): Promise<void> {
    this.stopped = true
    this.abort.abort()
    clearTimeout(this.timer)
    clearTimeout(this.flushTimer)
    this.notified.clear()
    this.watch?.([], () => {})
    await this.rounds
  }

  private schedule (delay: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      void this.collect().catch(() => {}).finally(() => { this.schedule(this.interval) })
    }, delay)
    this.timer.unref()
  }

  /** One full round; concurrent callers share it. */
  async collect (): Promise<CollectReport> {
    this.full ??= this.serially(async () => await this.collectOnce()).finally(() => { this.full = undefined })
    return await this.full
  }

  /** A watched mailbox stored something for us. */
  private readonly onNotify = (mailbox: string): void => {
    if (this.stopped) return
    this.init.counters.increment('mailbox.notified')
    this.notified.add(mailbox)
    this.flushSoon(NOTIFY_DEBOUNCE)
  }

  private flushSoon (delay: number): void {
    if (this.flushTimer != null || this.stopped) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flush()
    }, delay)
    this.flushTimer.unref()
  }

  /** Queues a round for the mailboxes that notified, as far as the rate allows; the rest waits for tokens. */
  private flush (): void {
    const due: string[] = []
    for (const mailbox of this.notified) {
      if (!this.notifyLimiter.tryTake(mailbox)) continue
      due.push(mailbox)
      this.notified.delete(mailbox)
    }
    if (due.length > 0) {
      this.init.counters.increment('mailbox.notify-rounds')
      void this.serially(async () => {
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(COLLECT_TIMEOUT)])
        return await this.take(due, signal)
      }).catch((err: unknown) => {
        if (this.stopped) return
        this.init.counters.increment('mailbox.notify-round-failed')
        this.init.log.debug({ err: errorMessage(err) }, 'collecting after a mailbox notify failed; the periodic collect will')
      })
    }
    if (this.notified.size > 0) this.flushSoon(1000 / NOTIFY_FETCH_RATE_PER_SECOND)
  }

  private async serially<T> (round: () => Promise<T>): Promise<T> {
    const run = this.rounds.then(async () => {
      if (this.stopped) throw new OctetError('UNAVAILABLE', 'the mailbox collector stopped')
      return await round()
    })
    this.rounds = run.catch(() => {})
    return await run
  }

  /**
   * Nothing but the Signal session vouches for a mailbox envelope's sender.
   * For a sender we have no identity key of, take the one its PeerId signed in
   * the DHT first, so a stranger cannot speak in someone else's name.
   */
  private async pinSender (sender: string, signal: AbortSignal): Promise<void> {
    const { crypto, bundles, log, counters } = this.init
    if (await crypto.identityStatus(sender) !== 'unknown') return
    try {
      await crypto.pinIdentity(sender, await bundles.fetchFromDht(sender, signal))
    } catch (err) {
      // no published bundle: the first message's own key is trusted on first use, as on a direct stream
      counters.increment('mailbox.sender-unpinned')
      log.info({ sender, err: errorMessage(err) }, 'no bundle of a mailbox sender in the DHT; trusting its key on first use')
    }
  }

  private async collectOnce (): Promise<CollectReport> {
    const { client, peerId, replicas } = this.init
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(COLLECT_TIMEOUT)])
    const mailboxes = await client.closestPeers(peerId, replicas, signal)
    // watch the mailboxes we ask (an empty answer is a routing table still filling: keep the watches we have)
    if (mailboxes.length > 0 && !this.stopped) this.watch?.(mailboxes, this.onNotify)
    return await this.take(mailboxes, signal)
  }

  /** Fetches from these mailboxes, hands over what they held, deletes it there. */
  private async take (mailboxes: string[], signal: AbortSignal): Promise<CollectReport> {
    const { client, peerId, crypto, counters, log } = this.init
    const fetched = await Promise.all(mailboxes.map(async mailbox => ({
      mailbox,
      items: await client.fetch(mailbox, signal).catch((err: unknown) => {
        log.debug({ mailbox, err: errorMessage(err) }, 'mailbox fetch failed')
        return []
      })
    })))

    // open everything, dedup across mailboxes by sender and message id
    const bySender = new Map<string, Map<string, Envelope>>()
    let total = 0
    for (const { items } of fetched) {
      for (const item of items) {
        total++
        let envelope: Envelope
        try {
          envelope = decodeEnvelope(crypto.unseal(item.sealed))
        } catch (err) {
          counters.increment(`mailbox.rejected.${isOctetError(err) ? err.code : 'MALFORMED_FRAME'}`)
          continue
        }
        if (envelope.recipient !== peerId) {
          counters.increment('mailbox.rejected.WRONG_RECIPIENT')
          continue
        }
        const envelopes = bySender.get(envelope.sender) ?? new Map<string, Envelope>()
        envelopes.set(messageIdToHex(envelope.id), envelope)
        bySender.set(envelope.sender, envelopes)
      }
    }

    let accepted = 0
    for (const [sender, envelopes] of bySender) {
      await this.pinSender(sender, signal)
      const ordered = [...envelopes.values()].sort((a, b) => a.seq - b.seq || a.timestamp - b.timestamp)
      const results = await this.init.receiver.receiveBatch(sender, ordered, 'mailbox')
      accepted += results.filter(r => r.status === AckStatus.ACCEPTED).length
    }
    counters.increment('mailbox.collected', accepted)

    // what we took (or refused for good) is ours now: the mailboxes may forget it
    await Promise.all(fetched.filter(f => f.items.length > 0).map(async ({ mailbox, items }) => {
      await client.delete(mailbox, items.map(i => i.id), signal).catch((err: unknown) => {
        log.debug({ mailbox, err: errorMessage(err) }, 'mailbox delete failed; it will expire')
      })
    }))
    if (total > 0) log.info({ mailboxes: mailboxes.length, fetched: total, accepted }, 'collected messages from mailboxes')
    return { mailboxes: mailboxes.length, fetched: total, accepted }
  }
}
