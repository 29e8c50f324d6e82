import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { StoreOp } from '../store/database.js'
import { encodeEnvelope } from '../wire/codec.js'
import type { MailboxClient } from './clients.js'
import type { EventLog, NewEvent } from './events.js'
import type { MessagingStore } from './records.js'
import type { Sealer } from './sealing.js'
import type { Counters } from './stats.js'

/*
 * The outbound half of offline delivery (mailbox-collector.ts is the
 * inbound one): when a peer cannot be reached, each outbox entry not yet
 * deposited is sealed to the recipient's identity key and stored at the
 * mailbox peers closest to it. The sender calls it and goes on retrying
 * directly. A mailbox copy leaves only once the session state that sealed
 * its envelope is on disk (crypto.flushWrites), as the sender's rule says.
 *
 * Writes (one event log commit per deposit, on disk when it returns): the
 * outbox entries' mailbox counts, and `stored` statuses with their events.
 */

export interface MailboxDepositInit {
  db: MessagingStore
  events: EventLog
  crypto: SignalCrypto
  sealer: Sealer
  counters: Counters
  log: Logger
  now: () => number
  mailbox: { client: MailboxClient, replicas: number }
  /** the sender's: aborts lookups and stores when it stops (a deposit cut short is not reported) */
  signal: AbortSignal
}

export class MailboxDeposit {
  constructor (private readonly init: MailboxDepositInit) {}

  /**
   * The peer cannot be reached: leave a sealed copy of everything not yet
   * deposited with the mailbox peers closest to it in the DHT. Direct retries
   * go on; whichever copy arrives first wins, the receiver drops the other.
   */
  async deposit (peer: string): Promise<void> {
    const { db, events, crypto, sealer, now, log, counters, mailbox, signal } = this.init
    try {
      const pending = (await db.outboxFor(peer)).filter(({ entry }) => entry.mailboxes == null)
      if (pending.length === 0) return
      await sealer.ensureSession(peer, true)
      const holders = await mailbox.client.closestPeers(peer, mailbox.replicas, signal)
      if (holders.length === 0) throw new OctetError('PEER_NOT_FOUND', 'no mailbox peers near the recipient in the DHT')
      const ops: StoreOp[] = []
      const newEvents: NewEvent[] = []
      for (const { key, entry } of pending) {
        const built = await sealer.buildEnvelope(entry)
        if (built == null) continue
        await crypto.flushWrites()
        const sealed = await crypto.sealFor(peer, encodeEnvelope(built.envelope))
        const results = await Promise.all(holders.map(async holder => await mailbox.client.store(holder, peer, sealed, signal)
          .catch((err: unknown) => ({ accepted: false, reason: errorMessage(err) }))))
        const accepted = results.filter(r => r.accepted).length
        counters.increment('mailbox.deposited', accepted)
        if (accepted === 0) {
          log.info({ peer, reasons: results.map(r => r.reason) }, 'no mailbox accepted an envelope')
          continue
        }
        ops.push(db.putOp(db.outbox, key, { ...entry, mailboxes: accepted }))
        const message = built.message
        if (message != null && (message.status === 'queued' || message.status === 'sent')) {
          ops.push(db.putStatus({ ...message, status: 'stored', mailboxes: accepted, updatedAt: now() }))
          newEvents.push({ type: 'message.status', data: { id: message.id, peerId: peer, status: 'stored', mailboxes: accepted } })
        }
      }
      await events.commit(ops, newEvents)
    } catch (err) {
      if (signal.aborted) return
      counters.increment(`mailbox.deposit-failed.${isOctetError(err) ? err.code : 'ERROR'}`)
      log.info({ peer, err: errorMessage(err) }, 'could not leave messages in mailboxes yet; will try again')
    }
  }
}
