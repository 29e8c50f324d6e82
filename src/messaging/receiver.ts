import { fromString as fromBase64 } from 'uint8arrays/from-string'
import { toString as toBase64 } from 'uint8arrays/to-string'
import type { SignalCrypto } from '../crypto/index.js'
import { MessageType } from '../crypto/sessions.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { InFlight } from '../in-flight.js'
import type { Logger } from '../logger.js'
import type { StoreOp } from '../store/database.js'
import { AckStatus, Kind, ReceiptType, decodeBatch, decodeEnvelope, decodePlaintext, decodeReceipt, encodeEnvelope, type BatchItem, type Envelope, type EnvelopeKind } from '../wire/codec.js'
import { messageIdToHex, newMessageId } from '../wire/ids.js'
import { MAX_RECEIPT_IDS } from '../wire/limits.js'
import { INBOUND_BURST, INBOUND_RATE_PER_SECOND } from './constants.js'
import type { AckResult, ItemAck } from './dm-protocol.js'
import type { EventLog, NewEvent } from './events.js'
import type { Draft, EventOrder } from './ordering.js'
import { RateLimiter } from '../rate-limit.js'
import { trackSequence, type ContactRecord, type ConversationRecord, type MessageRecord, type MessagingStore, type PairwiseKind } from './records.js'
import type { Refusals } from '../refusals.js'
import type { Counters } from './stats.js'

export interface ReceiverInit {
  peerId: string
  db: MessagingStore
  crypto: SignalCrypto
  events: EventLog
  /** the order of message.received events per conversation (ordering.ts), locked by db.peerLock */
  order: EventOrder
  counters: Counters
  refusals: Refusals
  log: Logger
  now: () => number
  inboundRate?: { perSecond: number, burst: number }
  /** something was put in the outbox for `peer` (a delivery receipt) */
  onOutbox: (peer: string) => void
}

/**
 * Takes the decrypted plaintext of a GROUP_CONTROL or SENDER_KEY envelope
 * (the groups module registers one). It runs while the sender's envelopes
 * are being received, so it must not wait for anything that waits for them;
 * a throw refuses the envelope with the error's code. The same envelope can
 * come again (a retry after a failed commit): handlers are idempotent.
 */
export type GroupEnvelopeHandler = (sender: string, kind: PairwiseKind, plaintext: Uint8Array) => Promise<void>

/**
 * direct: from a DM stream, the sender proven by the connection; mailbox:
 * fetched from a mailbox peer, the sender proven only by the Signal session.
 */
export type EnvelopeSource = 'direct' | 'mailbox'

/** A decrypted envelope, or one item of a decrypted BATCH envelope: what the kind handlers see. */
interface Unsealed {
  /** hex */
  id: string
  sender: string
  kind: EnvelopeKind
  seq: number
  timestamp: number
  /** the Signal message type it (or its batch) came in */
  cipherType: number
}

/** What one batch of envelopes from one peer changes: written in one commit at the end. */
class Batch {
  readonly ops: StoreOp[] = []
  readonly events: NewEvent[] = []
  readonly seen = new Set<string>()
  /** `seen` already holds what the database knew for this batch's envelopes */
  seenLoaded = false
  /**
   * ids the sender gets an encrypted delivery receipt for: texts that came from
   * a mailbox (no ack reached the sender), and the latest first-contact
   * (PreKey) message of a direct burst — the sender's session only leaves its
   * first-message form, 1.6 KB bigger per message, once it decrypts a reply
   */
  readonly receipts: string[] = []
  sessionAck: string | undefined
  conversation: ConversationRecord | undefined
  contact: ContactRecord | undefined
  contactChanged = false
  /** the conversation's event order, changed by this batch's texts */
  order: Draft | undefined
}

/**
 * The inbound half of the messenger: every envelope, from a stream or (later)
 * a mailbox, goes through here, which authenticates, dedups, decrypts, stores
 * and emits — or says why not, counts it and logs it. A burst from one peer
 * is stored in one database batch, and acked only once it is on disk.
 *
 * Writes (one event log commit per batch, on disk before receiveBatch
 * returns the acks): messages, timeline, conversation, contact requests,
 * dedup entries, receipt status changes, held envelopes, delivery receipts
 * in the outbox; and with them, by the pipeline's rule, the Signal state
 * that decrypted them.
 */
export class Receiver {
  private readonly limiter: RateLimiter
  /** peers with envelopes held for an identity change; checked before the database */
  private heldPeers: Set<string> | undefined
  private groupHandler: GroupEnvelopeHandler | undefined
  private readonly batches = new InFlight()
  private stopped = false

  constructor (private readonly init: ReceiverInit) {
    const rate = init.inboundRate ?? { perSecond: INBOUND_RATE_PER_SECOND, burst: INBOUND_BURST }
    this.limiter = new RateLimiter(rate.perSecond, rate.burst, { now: init.now })
  }

  /** GROUP_CONTROL and SENDER_KEY envelopes go to `handler`; without one they are refused (UNSUPPORTED_KIND). */
  setGroupHandler (handler: GroupEnvelopeHandler | undefined): void {
    this.groupHandler = handler
  }

  /**
   * `authenticatedSender` is the PeerId proven by the Noise handshake of the
   * connection (direct), or the sender the envelopes claim (mailbox: one
   * sender's envelopes at a time), which the Signal session then proves.
   */
  async receiveBatch (authenticatedSender: string, envelopes: Envelope[], source: EnvelopeSource = 'direct'): Promise<AckResult[]> {
    // UNAVAILABLE: the sender keeps them in its outbox, the collector in the mailboxes
    if (this.stopped) throw new OctetError('UNAVAILABLE', 'the messenger is stopping')
    return await this.batches.track(this.receive(authenticatedSender, envelopes, source))
  }

  /** Takes no batch any more and resolves once those in flight are stored (or failed). */
  async stop (): Promise<void> {
    this.stopped = true
    await this.batches.idle()
  }

  private async receive (authenticatedSender: string, envelopes: Envelope[], source: EnvelopeSource): Promise<AckResult[]> {
    const results: Array<AckResult | undefined> = envelopes.map(envelope => {
      const id = messageIdToHex(envelope.id)
      // what we fetched from mailboxes ourselves is not a flood from the sender
      if (source === 'direct' && !this.limiter.tryTake(authenticatedSender, envelope.kind === Kind.BATCH ? envelope.seq : 1)) return this.refuse('RATE_LIMITED', authenticatedSender, id, AckStatus.RATE_LIMITED)
      if (envelope.sender !== authenticatedSender) return this.refuse('FORGED_SENDER', authenticatedSender, id)
      if (envelope.recipient !== this.init.peerId) return this.refuse('WRONG_RECIPIENT', authenticatedSender, id)
      return undefined
    })
    if (results.every(r => r != null)) return results as AckResult[]
    const { db, events, now } = this.init
    // one peer's envelopes one batch at a time: its conversation is read, changed and written back
    return await db.peerLock.run(authenticatedSender, async () => {
      // nothing decrypted could be kept: refuse the lot before it moves the Signal session (DISK_FULL:
      // the transport asks the sender to retry, the mailbox collector leaves them in the mailboxes)
      db.store.assertWritable()
      const batch = new Batch()
      // one read for the whole burst: which of these were seen before
      const seenKeys = envelopes.map(e => db.seenKey(e.sender, messageIdToHex(e.id)))
      const seenBefore = await db.seen.getMany(seenKeys)
      seenKeys.forEach((key, i) => { if (seenBefore[i] != null) batch.seen.add(key) })
      batch.seenLoaded = true
      for (const [i, envelope] of envelopes.entries()) {
        results[i] ??= await this.receiveOne(envelope, batch, source)
      }
      if (batch.sessionAck != null) batch.receipts.push(batch.sessionAck)
      // the sender may be offline too: receipts go through our outbox (and its mailboxes)
      const at = now()
      for (let i = 0; i < batch.receipts.length; i += MAX_RECEIPT_IDS) {
        batch.ops.push(db.putOp(db.outbox, db.newOutboxKey(authenticatedSender, at), {
          id: messageIdToHex(newMessageId()), peerId: authenticatedSender, payload: { kind: 'receipt', receipt: 'delivered', ids: batch.receipts.slice(i, i + MAX_RECEIPT_IDS) }, attempts: 0, nextAttemptAt: 0, createdAt: at
        }))
      }
      // the session state that decrypted them lands with the messages (the pipeline takes every
      // write-behind change made before a commit into its batch)
      const order = batch.order?.finish()
      await events.commit([...batch.ops, ...order?.ops ?? []], batch.events, now())
      order?.apply()
      db.remember({ conversation: batch.conversation, contact: batch.contactChanged ? batch.contact : undefined })
      if (batch.receipts.length > 0) this.init.onOutbox(authenticatedSender)
      return results as AckResult[]
    })
  }

  private async receiveOne (envelope: Envelope, batch: Batch, source: EnvelopeSource): Promise<AckResult> {
    const { db, crypto } = this.init
    const sender = envelope.sender
    const id = messageIdToHex(envelope.id)
    if (batch.contact == null) batch.contact = await db.contact(sender)
    if (batch.contact?.state === 'blocked') return this.refuse('BLOCKED', sender, id)
    const seenKey = db.seenKey(sender, id)
    // batch.seen: seen before this burst (read up front by receiveBatch) or earlier in it
    if (batch.seen.has(seenKey) || (batch.seenLoaded !== true && await db.seen.get(seenKey) != null) || (await this.isHeld(sender) && await db.held.get(seenKey) != null)) {
      this.init.counters.increment('dm.duplicates')
      return { status: AckStatus.DUPLICATE }
    }

    let plaintext: Uint8Array
    try {
      plaintext = await crypto.decrypt(sender, envelope.cipherType, envelope.ciphertext)
    } catch (err) {
      if (isOctetError(err, 'IDENTITY_CHANGED')) return this.hold(envelope, seenKey, batch)
      // an envelope id we never saw under a message key we already used: the sender's ratchet
      // went back (a restored backup) and sealed something else under an old key. Not a
      // duplicate — its content would be lost — but a session to start over (see the sender)
      if (isOctetError(err, 'REPLAYED_MESSAGE')) return this.refuse('REPLAYED', sender, id, AckStatus.REJECTED, err)
      return this.refuse(isOctetError(err) ? err.code : 'DECRYPT_FAILED', sender, id, AckStatus.REJECTED, err)
    }
    if (envelope.kind === Kind.BATCH) return await this.openBatch(envelope, plaintext, batch, source)
    const result = await this.accept({ id, sender, kind: envelope.kind, seq: envelope.seq, timestamp: envelope.timestamp, cipherType: envelope.cipherType }, seenKey, plaintext, batch, source)
    if (result.status === AckStatus.ACCEPTED) batch.seen.add(seenKey)
    return result
  }

  /**
   * The items of a decrypted BATCH envelope, each taken as if it had come in
   * an envelope of its own (dedup, kind, storage), with an ack of its own.
   */
  private async openBatch (envelope: Envelope, plaintext: Uint8Array, batch: Batch, source: EnvelopeSource): Promise<AckResult> {
    const { db, counters } = this.init
    const sender = envelope.sender
    let items: BatchItem[]
    try {
      items = decodeBatch(plaintext)
      // the count in the clear paid the rate limit: it must be the sealed one
      if (items.length !== envelope.seq) throw new OctetError('MALFORMED_FRAME', `batch announced ${envelope.seq} items and holds ${items.length}`)
    } catch (err) {
      return this.refuse(isOctetError(err) ? err.code : 'MALFORMED_FRAME', sender, messageIdToHex(envelope.id), AckStatus.REJECTED, err)
    }
    counters.increment('dm.batches')
    const seenKeys = items.map(item => db.seenKey(sender, messageIdToHex(item.id)))
    const unknown = seenKeys.filter(key => !batch.seen.has(key))
    const stored = await db.seen.getMany(unknown)
    const known = new Set(unknown.filter((_, i) => stored[i] != null))
    const results: ItemAck[] = []
    for (const [i, item] of items.entries()) {
      const seenKey = seenKeys[i] as string
      if (batch.seen.has(seenKey) || known.has(seenKey)) {
        counters.increment('dm.duplicates')
        results.push({ id: item.id, status: AckStatus.DUPLICATE })
        continue
      }
      const result = await this.accept({ id: messageIdToHex(item.id), sender, kind: item.kind, seq: item.seq, timestamp: item.timestamp, cipherType: envelope.cipherType }, seenKey, item.plaintext, batch, source)
      if (result.status === AckStatus.ACCEPTED) batch.seen.add(seenKey)
      results.push({ id: item.id, ...result })
    }
    return { status: AckStatus.ACCEPTED, items: results }
  }

  /** A decrypted envelope (or batch item), taken as its kind says. */
  private async accept (item: Unsealed, seenKey: string, plaintext: Uint8Array, batch: Batch, source: EnvelopeSource): Promise<AckResult> {
    const { db } = this.init
    try {
      switch (item.kind) {
        case Kind.TEXT:
          await this.storeText(item, seenKey, plaintext, batch)
          if (source === 'mailbox') batch.receipts.push(item.id)
          else if (item.cipherType === MessageType.PreKey) batch.sessionAck = item.id
          break
        case Kind.RECEIPT:
          await this.applyReceipt(item, seenKey, plaintext, batch)
          break
        case Kind.GROUP_CONTROL:
        case Kind.SENDER_KEY:
          if (this.groupHandler == null) return this.refuse('UNSUPPORTED_KIND', item.sender, item.id)
          await this.groupHandler(item.sender, item.kind === Kind.SENDER_KEY ? 'sender-key' : 'group-control', plaintext)
          batch.ops.push(db.putOp(db.seen, seenKey, this.init.now()))
          break
        default:
          return this.refuse('UNSUPPORTED_KIND', item.sender, item.id)
      }
    } catch (err) {
      // a handler that could not store is no reason to refuse for good: the whole batch is retried
      if (isOctetError(err, 'DISK_FULL')) throw err
      return this.refuse(isOctetError(err) ? err.code : 'MALFORMED_FRAME', item.sender, item.id, AckStatus.REJECTED, err)
    }
    return { status: AckStatus.ACCEPTED }
  }

  private async storeText (item: Unsealed, seenKey: string, plaintextBytes: Uint8Array, batch: Batch): Promise<void> {
    const { db, now } = this.init
    const plaintext = decodePlaintext(plaintextBytes)
    if (plaintext.seq !== item.seq) {
      // the sequence number is inside the ciphertext too: a relay cannot reorder what it cannot read
      throw new OctetError('MALFORMED_FRAME', 'sequence number does not match the sealed one')
    }
    const sender = item.sender
    const at = now()
    const message: MessageRecord = {
      id: item.id,
      direction: 'in',
      peerId: sender,
      author: sender,
      seq: item.seq,
      text: plaintext.text,
      sentAt: item.timestamp,
      receivedAt: at,
      status: 'delivered',
      updatedAt: at
    }
    const before = batch.conversation ?? await db.conversation(sender)
    // a conversation from before ordering existed: every event up to its highest seq went out
    batch.order ??= await this.init.order.draft(sender, () => before.highestSeq)
    const conversation = trackSequence(before, item.seq)
    conversation.lastMessageAt = at
    conversation.unread += 1
    batch.conversation = conversation
    batch.ops.push(
      db.putMessage(message),
      db.putOp(db.timeline, db.timelineKey(message), item.id),
      db.putOp(db.conversations, sender, conversation),
      db.putOp(db.seen, seenKey, at)
    )
    if (batch.contact == null) {
      // a stranger's messages are kept as a contact request until accepted or blocked
      batch.contact = { peerId: sender, state: 'pending', createdAt: at, updatedAt: at }
      batch.contactChanged = true
      batch.ops.push(db.putOp(db.contacts, sender, batch.contact))
      batch.events.push({ type: 'contact.request', data: { peerId: sender } })
    }
    // stored and acked now; its event may wait for earlier ones of the conversation (ordering.ts)
    batch.events.push(...await batch.order.admit(item.seq, { type: 'message.received', data: { message } }, at))
  }

  private async applyReceipt (item: Unsealed, seenKey: string, plaintextBytes: Uint8Array, batch: Batch): Promise<void> {
    const { db, now } = this.init
    const receipt = decodeReceipt(plaintextBytes)
    const at = now()
    batch.ops.push(db.putOp(db.seen, seenKey, at))
    const status = receipt.type === ReceiptType.READ ? 'read' : 'delivered'
    const ids = new Set(receipt.ids.map(messageIdToHex))
    for (const id of ids) {
      const message = await db.message(id)
      // only the recipient of our message may say it arrived or was read; and never backwards
      if (message == null || message.direction !== 'out' || message.peerId !== item.sender) continue
      if (message.status === 'read' || (status === 'delivered' && message.status === 'delivered')) continue
      const updated: MessageRecord = { ...message, status, updatedAt: at }
      delete updated.reason
      batch.ops.push(db.putStatus(updated))
      batch.events.push({ type: 'message.status', data: { id, peerId: message.peerId, status } })
    }
    // delivered through a mailbox: stop retrying them directly
    for (const { key, entry } of await db.outboxFor(item.sender)) {
      if (ids.has(entry.id)) batch.ops.push(db.delOp(db.outbox, key))
    }
  }

  /**
   * The sender's identity key changed: keep the sealed envelope, tell the
   * user, and decrypt it only once they accept the new key.
   */
  private hold (envelope: Envelope, seenKey: string, batch: Batch): AckResult {
    const { db, now, counters, log } = this.init
    counters.increment('dm.held.IDENTITY_CHANGED')
    log.warn({ peer: envelope.sender }, 'identity key of a peer changed; its messages are held until the change is accepted')
    batch.ops.push(db.putOp(db.held, seenKey, { peerId: envelope.sender, envelope: toBase64(encodeEnvelope(envelope), 'base64'), receivedAt: now() }))
    batch.events.push({ type: 'identity.changed', data: { peerId: envelope.sender } })
    batch.seen.add(seenKey)
    this.heldPeers?.add(envelope.sender)
    return { status: AckStatus.ACCEPTED, reason: 'held: identity changed' }
  }

  private async isHeld (peer: string): Promise<boolean> {
    if (this.heldPeers == null) {
      const peers = new Set<string>()
      for await (const value of this.init.db.held.values()) peers.add(value.peerId)
      this.heldPeers = peers
    }
    return this.heldPeers.has(peer)
  }

  /** After the user accepted a peer's new identity key: decrypt what was held, in the order it was sent. */
  async releaseHeld (peer: string): Promise<number> {
    const { db, events, now } = this.init
    return await this.batches.track(db.peerLock.run(peer, async () => {
      const held: Array<{ key: string, envelope: Envelope }> = []
      for await (const [key, value] of db.held.iterator({ gt: `${peer}!`, lt: `${peer}!\xff` })) {
        held.push({ key, envelope: decodeEnvelope(fromBase64(value.envelope, 'base64')) })
      }
      held.sort((a, b) => a.envelope.timestamp - b.envelope.timestamp || a.envelope.seq - b.envelope.seq)
      const batch = new Batch()
      for (const { key } of held) batch.ops.push(db.delOp(db.held, key))
      this.heldPeers?.delete(peer)
      // a new identity key is a new installation, which numbers its messages from 1 again
      const before = await db.conversation(peer)
      batch.order = await this.init.order.draft(peer, () => before.highestSeq)
      batch.events.push(...await batch.order.restart())
      for (const { envelope } of held) await this.receiveOne(envelope, batch, 'direct')
      const order = batch.order?.finish()
      await events.commit([...batch.ops, ...order?.ops ?? []], batch.events, now())
      order?.apply()
      db.remember({ conversation: batch.conversation, contact: batch.contactChanged ? batch.contact : undefined })
      return held.length
    }))
  }

  /** Counts and logs a refused envelope or batch item (`id` in hex), and says why in its ack. */
  private refuse (code: string, peer: string, id: string, status: AckResult['status'] = AckStatus.REJECTED, err?: unknown): AckResult {
    this.init.refusals.refuse({ counter: `dm.rejected.${code}`, peer, fields: { peer, code, id, err: err != null ? errorMessage(err) : undefined }, message: 'refused an inbound envelope' })
    return { status, reason: code }
  }
}
