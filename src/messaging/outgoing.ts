import { toString as toBase64 } from 'uint8arrays/to-string'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import type { Logger } from '../logger.js'
import type { StoreOp } from '../store/database.js'
import { messageIdToHex, newMessageId } from '../wire/ids.js'
import { MAX_TEXT_BYTES } from '../wire/limits.js'
import { IDEMPOTENCY_TTL } from './constants.js'
import type { EventLog, NewEvent } from './events.js'
import type { History } from './history.js'
import type { ContactRecord, MessageRecord, MessagingStore, OutboxEntry, PairwiseKind } from './records.js'
import { failedForLostSession } from './sender.js'

/** A plaintext for one peer, sealed with its pairwise session when the outbox delivers it. */
export interface PairwiseDelivery {
  peer: string
  kind: PairwiseKind
  body: Uint8Array
}

export interface OutgoingInit {
  peerId: string
  db: MessagingStore
  events: EventLog
  crypto: SignalCrypto
  history: History
  log: Logger
  now: () => number
  /** something was put in the outbox for `peer`: the sender looks now */
  kick: (peer: string) => void
}

/**
 * Everything that puts work in the outbox: a message we write, a read receipt,
 * messages requeued after a session reset, and group deliveries. Each commits
 * the outbox entry with the records and events it belongs to (write-ahead: on
 * disk before the call returns), then wakes the sender. Peers come canonical
 * from the Messenger, which checks them.
 */
export class Outgoing {
  /** one message per Idempotency-Key, also when the same key comes twice at once */
  private readonly idempotencyLock = new KeyedLock()

  constructor (private readonly init: OutgoingInit) {}

  /**
   * Commits `ops` and `newEvents` together with outbox entries that deliver
   * each plaintext to its peer over the pairwise Signal session (retried with
   * backoff, through mailboxes when the peer is offline, like any message).
   * Signal state changed before (a group message's sender key step) lands
   * with it or before (CommitPipeline): what the caller sends after this
   * returns is covered by it.
   * Nothing is locked: the caller serializes its own state.
   */
  async commitPairwise (ops: StoreOp[], newEvents: NewEvent[], deliveries: PairwiseDelivery[]): Promise<void> {
    const { db } = this.init
    const at = this.init.now()
    const all = [...ops]
    for (const delivery of deliveries) {
      const entry: OutboxEntry = {
        id: messageIdToHex(newMessageId()),
        peerId: delivery.peer,
        payload: { kind: 'group', type: delivery.kind, body: toBase64(delivery.body, 'base64') },
        attempts: 0,
        nextAttemptAt: 0,
        createdAt: at
      }
      all.push(db.putOp(db.outbox, db.newOutboxKey(delivery.peer, at), entry))
    }
    await this.init.events.commit(all, newEvents, at)
    for (const peer of new Set(deliveries.map(d => d.peer))) this.init.kick(peer)
  }

  async send (peer: string, text: string, idempotencyKey?: string): Promise<{ message: MessageRecord, created: boolean }> {
    const size = Buffer.byteLength(text, 'utf8')
    if (size === 0) throw new OctetError('BAD_REQUEST', 'text is empty')
    if (size > MAX_TEXT_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `text is ${size} bytes; the limit is ${MAX_TEXT_BYTES}`)
    const key = idempotencyKey
    if (key == null) return { message: await this.enqueue(peer, text), created: true }
    return await this.idempotencyLock.run(`idem:${key}`, async () => {
      const { db } = this.init
      const known = await db.idempotency.get(key)
      if (known != null && this.init.now() - known.createdAt < IDEMPOTENCY_TTL) {
        const message = await db.message(known.messageId)
        if (message != null) {
          if (message.peerId !== peer || message.text !== text) {
            throw new OctetError('CONFLICT', 'this Idempotency-Key was used for a different message')
          }
          return { message, created: false }
        }
      }
      return { message: await this.enqueue(peer, text, key), created: true }
    })
  }

  private async enqueue (peer: string, text: string, idempotencyKey?: string): Promise<MessageRecord> {
    const { db } = this.init
    // under the lock: the sequence number and the commit's place in the log; the write itself
    // is awaited outside it, so concurrent sends to one peer share a database batch
    const { message, committed } = await db.peerLock.run(peer, async () => {
      const at = this.init.now()
      const conversation = await db.conversation(peer)
      const nextConversation = { ...conversation, nextSeq: conversation.nextSeq + 1, lastMessageAt: at }
      const message: MessageRecord = {
        id: messageIdToHex(newMessageId()),
        direction: 'out',
        peerId: peer,
        author: this.init.peerId,
        seq: conversation.nextSeq,
        text,
        sentAt: at,
        status: 'queued',
        updatedAt: at
      }
      const ops: StoreOp[] = [
        db.putMessage(message),
        db.putOp(db.timeline, db.timelineKey(message), message.id),
        db.putOp(db.conversations, peer, nextConversation),
        db.putOp(db.outbox, db.newOutboxKey(peer, at), { id: message.id, peerId: peer, payload: { kind: 'text', messageId: message.id }, attempts: 0, nextAttemptAt: 0, createdAt: at })
      ]
      if (idempotencyKey != null) ops.push(db.putOp(db.idempotency, idempotencyKey, { messageId: message.id, createdAt: at }))
      const newEvents: NewEvent[] = [
        { type: 'message.sent', data: { message } },
        { type: 'message.status', data: { id: message.id, peerId: peer, status: 'queued' } }
      ]
      // writing to someone is accepting them as a contact
      const contact = await db.contact(peer)
      let accepted: ContactRecord | undefined
      if (contact == null || contact.state === 'pending') {
        accepted = { ...contact, peerId: peer, state: 'accepted', createdAt: contact?.createdAt ?? at, updatedAt: at }
        ops.push(db.putOp(db.contacts, peer, accepted))
        // said like every contact change, so pages and bridges learn of the new contact too
        newEvents.unshift({ type: 'contact.updated', data: { contact: accepted } })
      }
      const committed = this.init.events.commit(ops, newEvents, at)
      db.remember({ conversation: nextConversation, contact: accepted })
      return { message, committed }
    })
    try {
      await committed
    } catch (err) {
      // the cache ran ahead of a write that failed: read the peer's records from disk again
      db.forget(peer)
      throw err
    }
    this.init.kick(peer)
    return message
  }

  /** Marks an incoming message read and tells its sender (a READ receipt, through the outbox). */
  async markRead (id: string): Promise<MessageRecord> {
    const { db, history } = this.init
    const message = await history.message(id)
    if (message.direction !== 'in') throw new OctetError('CONFLICT', 'only received messages can be marked read')
    if (message.status === 'read') return message
    const updated = await db.peerLock.run(message.peerId, async () => {
      const at = this.init.now()
      const current = await history.message(id)
      if (current.status === 'read') return current
      const updated: MessageRecord = { ...current, status: 'read', updatedAt: at }
      const conversation = await db.conversation(message.peerId)
      const nextConversation = { ...conversation, unread: Math.max(0, conversation.unread - 1) }
      await this.init.events.commit([
        db.putStatus(updated),
        db.putOp(db.conversations, message.peerId, nextConversation),
        db.putOp(db.outbox, db.newOutboxKey(message.peerId, at), {
          id: messageIdToHex(newMessageId()),
          peerId: message.peerId,
          payload: { kind: 'receipt', receipt: 'read', ids: [id] },
          attempts: 0,
          nextAttemptAt: 0,
          createdAt: at
        })
      ], [{ type: 'message.status', data: { id, peerId: message.peerId, status: 'read' } }], at)
      db.remember({ conversation: nextConversation })
      return updated
    })
    this.init.kick(message.peerId)
    return updated
  }

  /**
   * Forgets the Signal session with a peer and sends again, in order, every
   * message to it that failed because the peer could not use our session
   * (refused with DECRYPT_FAILED, NO_SESSION or REPLAYED). The next send
   * starts a session from a fresh bundle (a changed identity key is caught
   * there); the messages keep their ids, so one the peer did store comes
   * back as a duplicate and is marked delivered, never shown twice.
   */
  async resetSession (peer: string): Promise<number> {
    const { db } = this.init
    await this.init.crypto.resetSession(peer)
    const requeued = await db.peerLock.run(peer, async () => {
      const ids: string[] = []
      for await (const id of db.timeline.values({ gt: `${peer}!`, lt: `${peer}!\xff` })) ids.push(id)
      const failed = (await db.messagesById(ids))
        .filter((m): m is MessageRecord => m != null && m.direction === 'out' && m.status === 'failed' && failedForLostSession(m.reason))
        .sort((a, b) => a.seq - b.seq)
      const at = this.init.now()
      const ops: StoreOp[] = []
      const newEvents: NewEvent[] = []
      for (const message of failed) {
        const { reason: _reason, ...rest } = message
        ops.push(
          db.putStatus({ ...rest, status: 'queued', updatedAt: at }),
          db.putOp(db.outbox, db.newOutboxKey(peer, at), { id: message.id, peerId: peer, payload: { kind: 'text', messageId: message.id }, attempts: 0, nextAttemptAt: 0, createdAt: at })
        )
        newEvents.push({ type: 'message.status', data: { id: message.id, peerId: peer, status: 'queued' } })
      }
      await this.init.events.commit(ops, newEvents, at)
      return failed.length
    })
    this.init.log.info({ peer, requeued }, 'session reset; failed messages queued again')
    this.init.kick(peer)
    return requeued
  }
}
