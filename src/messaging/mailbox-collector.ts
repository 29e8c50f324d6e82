import type { SignalCrypto } from '../crypto/index.js'
import { errorMessage, isOctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import { AckStatus, decodeEnvelope, messageIdToHex, type Envelope } from '../wire/codec.js'
import { COLLECT_FIRST_DELAY, COLLECT_INTERVAL, COLLECT_TIMEOUT } from './constants.js'
import type { Receiver } from './receiver.js'
import type { BundleSource, MailboxClient } from './sender.js'
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
}

export interface CollectReport {
  mailboxes: number
  fetched: number
  accepted: number
}

/**
 * Picks up what others left for us while we were away: asks the peers
 * closest to our key for our sealed envelopes, opens them, hands them to the
 * receiver one sender at a time in sequence order (the same envelope from
 * several mailboxes is one message), and deletes what it took. Runs soon after
 * start and then periodically.
 */
export class MailboxCollector {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<CollectReport> | undefined
  private readonly abort = new AbortController()
  private stopped = false

  constructor (private readonly init: MailboxCollectorInit) {}

  start (): void {
    this.schedule(COLLECT_FIRST_DELAY)
  }

  stop (): void {
    this.stopped = true
    this.abort.abort()
    clearTimeout(this.timer)
  }

  private schedule (delay: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      void this.collect().catch(() => {}).finally(() => { this.schedule(COLLECT_INTERVAL) })
    }, delay)
    this.timer.unref()
  }

  /** One round; concurrent callers share it. */
  async collect (): Promise<CollectReport> {
    this.running ??= this.collectOnce().finally(() => { this.running = undefined })
    return await this.running
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
    const { client, peerId, replicas, crypto, counters, log } = this.init
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(COLLECT_TIMEOUT)])
    const mailboxes = await client.closestPeers(peerId, replicas, signal)
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
