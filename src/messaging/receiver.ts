import { fromString as fromBase64 } from 'uint8arrays/from-string'
import { toString as toBase64 } from 'uint8arrays/to-string'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import type { Logger } from '../logger.js'
import type { StoreOp } from '../store/database.js'
import { AckStatus, Kind, ReceiptType, decodeEnvelope, decodePlaintext, decodeReceipt, encodeEnvelope, messageIdToHex, type Envelope } from '../wire/codec.js'
import { INBOUND_BURST, INBOUND_RATE_PER_SECOND, MAX_TRACKED_GAPS } from './constants.js'
import type { AckResult } from './dm-protocol.js'
import type { EventLog, NewEvent } from './events.js'
import { RateLimiter } from './rate-limit.js'
import type { ConversationRecord, MessageRecord, MessagingStore } from './records.js'
import type { Counters } from './stats.js'

export interface ReceiverInit {
  peerId: string
  db: MessagingStore
  crypto: SignalCrypto
  events: EventLog
  counters: Counters
  log: Logger
  now: () => number
  inboundRate?: { perSecond: number, burst: number }
}

/**
 * The inbound half of the messenger: every envelope, from a stream or (later)
 * a mailbox, goes through `receive`, which authenticates, dedups, decrypts,
 * stores and emits — or says why not, counts it and logs it.
 */
export class Receiver {
  private readonly lock = new KeyedLock()
  private readonly limiter: RateLimiter

  constructor (private readonly init: ReceiverInit) {
    const rate = init.inboundRate ?? { perSecond: INBOUND_RATE_PER_SECOND, burst: INBOUND_BURST }
    this.limiter = new RateLimiter(rate.perSecond, rate.burst, init.now)
  }

  /** `authenticatedSender` is the PeerId proven by the Noise handshake of the connection. */
  async receive (authenticatedSender: string, envelope: Envelope): Promise<AckResult> {
    if (!this.limiter.tryTake(authenticatedSender)) {
      return this.refuse('RATE_LIMITED', authenticatedSender, envelope, AckStatus.RATE_LIMITED)
    }
    if (envelope.sender !== authenticatedSender) {
      return this.refuse('FORGED_SENDER', authenticatedSender, envelope)
    }
    if (envelope.recipient !== this.init.peerId) {
      return this.refuse('WRONG_RECIPIENT', authenticatedSender, envelope)
    }
    // one envelope of a peer at a time: conversation state is read, changed and written back
    return await this.lock.run(authenticatedSender, async () => await this.receiveInOrder(envelope))
  }

  private async receiveInOrder (envelope: Envelope): Promise<AckResult> {
    const { db, crypto } = this.init
    const sender = envelope.sender
    const id = messageIdToHex(envelope.id)
    const contact = await db.contacts.get(sender)
    if (contact?.state === 'blocked') {
      return this.refuse('BLOCKED', sender, envelope)
    }
    const seenKey = db.seenKey(sender, id)
    if (await db.seen.get(seenKey) != null || await db.held.get(seenKey) != null) {
      this.init.counters.increment('dm.duplicates')
      return { status: AckStatus.DUPLICATE }
    }

    let plaintext: Uint8Array
    try {
      plaintext = await crypto.decrypt(sender, envelope.cipherType, envelope.ciphertext)
    } catch (err) {
      if (isOctetError(err, 'IDENTITY_CHANGED')) return await this.hold(envelope, seenKey)
      if (isOctetError(err, 'REPLAYED_MESSAGE')) {
        this.init.counters.increment('dm.duplicates')
        return { status: AckStatus.DUPLICATE }
      }
      return this.refuse(isOctetError(err) ? err.code : 'DECRYPT_FAILED', sender, envelope, AckStatus.REJECTED, err)
    }

    try {
      switch (envelope.kind) {
        case Kind.TEXT:
          await this.storeText(envelope, id, seenKey, plaintext)
          break
        case Kind.RECEIPT:
          await this.applyReceipt(envelope, seenKey, plaintext)
          break
        default:
          return this.refuse('UNSUPPORTED_KIND', sender, envelope)
      }
    } catch (err) {
      return this.refuse(isOctetError(err) ? err.code : 'MALFORMED_FRAME', sender, envelope, AckStatus.REJECTED, err)
    }
    return { status: AckStatus.ACCEPTED }
  }

  private async storeText (envelope: Envelope, id: string, seenKey: string, plaintextBytes: Uint8Array): Promise<void> {
    const { db, events, now } = this.init
    const plaintext = decodePlaintext(plaintextBytes)
    if (plaintext.seq !== envelope.seq) {
      // the sequence number is inside the ciphertext too: a relay cannot reorder what it cannot read
      throw new OctetError('MALFORMED_FRAME', 'sequence number does not match the sealed one')
    }
    const sender = envelope.sender
    const at = now()
    const message: MessageRecord = {
      id,
      direction: 'in',
      peer: sender,
      seq: envelope.seq,
      text: plaintext.text,
      sentAt: envelope.timestamp,
      receivedAt: at,
      status: 'delivered',
      updatedAt: at
    }
    const conversation = trackSequence(await db.conversation(sender), envelope.seq)
    conversation.lastMessageAt = at
    conversation.unread += 1
    const ops: StoreOp[] = [
      db.putOp(db.messages, id, message),
      db.putOp(db.timeline, db.timelineKey(message), id),
      db.putOp(db.conversations, sender, conversation),
      db.putOp(db.seen, seenKey, at)
    ]
    const newEvents: NewEvent[] = [{ type: 'message.received', data: { message } }]
    if (await db.contacts.get(sender) == null) {
      // a stranger's messages are kept as a contact request until accepted or blocked
      ops.push(db.putOp(db.contacts, sender, { peerId: sender, state: 'pending', createdAt: at, updatedAt: at }))
      newEvents.unshift({ type: 'contact.request', data: { peerId: sender } })
    }
    await events.commit(ops, newEvents, at)
  }

  private async applyReceipt (envelope: Envelope, seenKey: string, plaintextBytes: Uint8Array): Promise<void> {
    const { db, events, now } = this.init
    const receipt = decodeReceipt(plaintextBytes)
    const at = now()
    const ops: StoreOp[] = [db.putOp(db.seen, seenKey, at)]
    const newEvents: NewEvent[] = []
    if (receipt.type === ReceiptType.READ) {
      for (const idBytes of receipt.ids) {
        const id = messageIdToHex(idBytes)
        const message = await db.messages.get(id)
        // only the recipient of our message may say it was read
        if (message == null || message.direction !== 'out' || message.peer !== envelope.sender || message.status === 'read') continue
        const updated: MessageRecord = { ...message, status: 'read', updatedAt: at }
        delete updated.reason
        ops.push(db.putOp(db.messages, id, updated))
        newEvents.push({ type: 'message.status', data: { id, peer: message.peer, status: 'read' } })
      }
    }
    await events.commit(ops, newEvents, at)
  }

  /**
   * The sender's identity key changed: keep the sealed envelope, tell the
   * user, and decrypt it only once they accept the new key.
   */
  private async hold (envelope: Envelope, seenKey: string): Promise<AckResult> {
    const { db, events, now, counters, log } = this.init
    const at = now()
    counters.increment('dm.held.IDENTITY_CHANGED')
    log.warn({ peer: envelope.sender }, 'identity key of a peer changed; its messages are held until the change is accepted')
    await events.commit(
      [db.putOp(db.held, seenKey, { peer: envelope.sender, envelope: toBase64(encodeEnvelope(envelope), 'base64'), receivedAt: at })],
      [{ type: 'identity.changed', data: { peerId: envelope.sender } }],
      at
    )
    return { status: AckStatus.ACCEPTED, reason: 'held: identity changed' }
  }

  /** After the user accepted a peer's new identity key: decrypt what was held, in arrival order. */
  async releaseHeld (peer: string): Promise<number> {
    const { db } = this.init
    const held: Array<{ key: string, envelope: Envelope }> = []
    for await (const [key, value] of db.held.iterator({ gt: `${peer}!`, lt: `${peer}!\xff` })) {
      held.push({ key, envelope: decodeEnvelope(fromBase64(value.envelope, 'base64')) })
    }
    held.sort((a, b) => a.envelope.timestamp - b.envelope.timestamp || a.envelope.seq - b.envelope.seq)
    return await this.lock.run(peer, async () => {
      for (const { key, envelope } of held) {
        await db.batch([db.delOp(db.held, key)])
        await this.receiveInOrder(envelope)
      }
      return held.length
    })
  }

  private refuse (code: string, peer: string, envelope: Envelope, status: AckResult['status'] = AckStatus.REJECTED, err?: unknown): AckResult {
    this.init.counters.increment(`dm.rejected.${code}`)
    this.init.log.warn({ peer, code, id: messageIdToHex(envelope.id), err: err != null ? errorMessage(err) : undefined }, 'refused an inbound envelope')
    return { status, reason: code }
  }
}

/** Updates the highest sequence number seen and the gaps below it. */
export function trackSequence (conversation: ConversationRecord, seq: number): ConversationRecord {
  const updated = { ...conversation, missing: [...conversation.missing] }
  if (seq > updated.highestSeq) {
    for (let s = updated.highestSeq + 1; s < seq && updated.missing.length < MAX_TRACKED_GAPS; s++) updated.missing.push(s)
    updated.highestSeq = seq
  } else {
    updated.missing = updated.missing.filter(s => s !== seq)
  }
  return updated
}
