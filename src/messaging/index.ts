import { toString as toBase64 } from 'uint8arrays/to-string'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import type { Logger } from '../logger.js'
import { parsePeerId, type OctetLibp2p } from '../node/index.js'
import type { StoreOp, Store } from '../store/database.js'
import { isPeerIdString, messageIdToHex, newMessageId } from '../wire/ids.js'
import { MAX_TEXT_BYTES } from '../wire/limits.js'
import { EVENT_HOLD_MAX, IDEMPOTENCY_TTL, MAILBOX_COLLECT_MARGIN } from './constants.js'
import { DmTransport } from './dm-protocol.js'
import { EventLog, type NewEvent } from './events.js'
import { Contacts, type ContactView, type SafetyNumbers } from './contacts.js'
import { History, type ConversationSummary, type HistoryQuery } from './history.js'
import { MessagingStore, type ContactRecord, type MessageRecord, type OutboxEntry, type PairwiseKind } from './records.js'
import { EventOrder } from './ordering.js'
import { Receiver, type GroupEnvelopeHandler } from './receiver.js'
import { Retention } from './retention.js'
import { MailboxCollector, type CollectReport } from './mailbox-collector.js'
import type { BundleSource, MailboxClient } from './clients.js'
import { Sender, failedForLostSession } from './sender.js'
import { Counters } from './stats.js'
import { Refusals } from '../refusals.js'

export type { MessageRecord, ContactRecord, MessageStatus, ConversationRecord, PairwiseKind } from './records.js'
export type { GroupEnvelopeHandler } from './receiver.js'
export type { NewEvent } from './events.js'
export type { OctetEvent, OctetEventType, OctetEventDataMap, MessageStatusData, GroupEventType } from './events.js'
export type { BundleSource, MailboxClient } from './clients.js'
export type { CollectReport } from './mailbox-collector.js'
export type { ContactView } from './contacts.js'
export type { ConversationSummary, HistoryQuery } from './history.js'
export { EventLog, EVENT_TYPES } from './events.js'
export { EventOrder, type EventOrderInit, type OrderedEvent } from './ordering.js'
export { Counters } from './stats.js'

export interface MessengerInit {
  peerId: string
  store: Store
  crypto: SignalCrypto
  bundles: BundleSource
  libp2p: OctetLibp2p
  /** the event log on the daemon's commit pipeline: every write of the messenger goes through it */
  events: EventLog
  counters: Counters
  /** counts and logs refusals of peers' input (one line per kind and interval); by default into `counters` and `log` */
  refusals?: Refusals
  log: Logger
  now?: () => number
  /** inbound envelopes per peer; defaults in constants.ts */
  inboundRate?: { perSecond: number, burst: number }
  /** how long a message.received event waits for an earlier one of its conversation (EVENT_HOLD_MAX) */
  eventHoldMs?: number
  /**
   * offline delivery through mailbox peers: `replicas` copies per message;
   * `collect`: the periodic collect's interval, and whether to watch the
   * mailboxes for notifies (defaults in constants.ts; tests and benchmarks change them)
   */
  mailbox?: { client: MailboxClient, replicas: number, collect?: { interval?: number, notify?: boolean } }
}

export interface SendRequest {
  to: string
  text: string
  idempotencyKey?: string
}

/** A plaintext for one peer, sealed with its pairwise session when the outbox delivers it. */
export interface PairwiseDelivery {
  peer: string
  kind: PairwiseKind
  body: Uint8Array
}


/**
 * Conversations, outbox, receipts and contacts: what the API and CLI call.
 *
 * Writes, all through the event log's commits (and so the commit pipeline):
 * a sent message with its outbox entry, conversation and event (write-ahead:
 * on disk before `send` returns); read marks with their receipt's outbox
 * entry, contacts, requeued messages and group deliveries (`commitPairwise`),
 * each on disk before the call returns. The sender and receiver below state
 * their own, and so do the contacts (contacts.ts); history.ts reads.
 */
export class Messenger {
  readonly events: EventLog
  readonly counters: Counters
  /** how refusals of peers' input are counted and logged: the groups module uses it too */
  readonly refusals: Refusals
  private readonly db: MessagingStore
  private readonly transport: DmTransport
  private readonly sender: Sender
  private readonly receiver: Receiver
  /** message.received events per conversation in the sender's order */
  private readonly order: EventOrder
  private readonly lock = new KeyedLock()
  private readonly now: () => number
  private readonly collector: MailboxCollector | undefined
  private readonly retention: Retention
  private readonly contactList: Contacts
  private readonly historyReader: History

  constructor (private readonly init: MessengerInit) {
    this.now = init.now ?? Date.now
    this.events = init.events
    this.counters = init.counters
    this.db = new MessagingStore(init.store)
    this.contactList = new Contacts({ db: this.db, events: init.events, crypto: init.crypto, now: this.now })
    this.historyReader = new History(this.db)
    const log = init.log.child({ module: 'messaging' })
    this.refusals = init.refusals ?? new Refusals(init.counters, init.log)
    this.order = new EventOrder({
      name: 'dm', store: init.store, events: init.events, holdMs: init.eventHoldMs ?? EVENT_HOLD_MAX, counters: init.counters, log, now: this.now,
      lock: async (peer, work) => await this.db.peerLock.run(peer, work)
    })
    this.receiver = new Receiver({
      peerId: init.peerId, db: this.db, crypto: init.crypto, events: init.events, order: this.order, counters: init.counters, refusals: this.refusals, log, now: this.now, inboundRate: init.inboundRate,
      onOutbox: peer => { this.sender.kick(peer) }
    })
    this.transport = new DmTransport({ libp2p: init.libp2p, log, refusals: this.refusals, onEnvelopes: async (peer, envelopes) => {
        const acks = await this.receiver.receiveBatch(peer, envelopes)
        // it wrote to us: it is reachable, so what waits for it in backoff goes now
        this.sender.peerReachable(peer)
        return acks
      }
    })
    this.sender = new Sender({ peerId: init.peerId, db: this.db, crypto: init.crypto, bundles: init.bundles, transport: this.transport, events: init.events, counters: init.counters, log, now: this.now, mailbox: init.mailbox })
    this.retention = new Retention({ events: init.events, db: this.db, counters: init.counters, log, now: this.now })
    if (init.mailbox != null) {
      this.collector = new MailboxCollector({
        peerId: init.peerId,
        client: init.mailbox.client,
        bundles: init.bundles,
        replicas: init.mailbox.replicas + MAILBOX_COLLECT_MARGIN,
        crypto: init.crypto,
        receiver: this.receiver,
        counters: init.counters,
        log,
        ...init.mailbox.collect
      })
    }
  }

  async start (): Promise<void> {
    // what was held when we stopped is released when due, whatever else comes in meanwhile
    await this.order.start()
    await this.transport.start()
    await this.sender.start()
    this.collector?.start()
    this.retention.start()
  }

  /**
   * Stops in order and resolves once nothing of the messenger runs any more:
   * pruning, collecting, then sending (the transport closes meanwhile, which
   * ends passes waiting for acks), then receiving; last, the Signal state
   * written behind is flushed. The store may close after this.
   */
  async stop (): Promise<void> {
    await this.retention.stop()
    await this.collector?.stop()
    const sending = this.sender.stop()
    try {
      await this.transport.stop()
    } finally {
      await sending
    }
    await this.receiver.stop()
    await this.order.stop()
    await this.init.crypto.flushWrites()
  }

  /** How many message.received events wait for an earlier message of their conversation (GET /metrics). */
  get heldEvents (): number {
    return this.order.heldCount
  }

  /** How many envelopes wait in the outbox, for how many peers (GET /metrics). */
  async outboxDepth (): Promise<{ peers: number, entries: number }> {
    return await this.db.outboxDepth()
  }

  /** Fetches what mailbox peers hold for us now (it also happens on start and periodically). */
  async collectMailboxes (): Promise<CollectReport> {
    if (this.collector == null) throw new OctetError('UNAVAILABLE', 'this node runs without mailboxes')
    return await this.collector.collect()
  }

  // ------------------------------------------------------------- groups

  /** Where GROUP_CONTROL and SENDER_KEY envelopes go; register before start(). */
  setGroupHandler (handler: GroupEnvelopeHandler | undefined): void {
    this.receiver.setGroupHandler(handler)
  }

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
    const { db } = this
    const at = this.now()
    const all = [...ops]
    for (const delivery of deliveries) {
      const peer = this.checkPeer(delivery.peer)
      const entry: OutboxEntry = {
        id: messageIdToHex(newMessageId()),
        peerId: peer,
        payload: { kind: 'group', type: delivery.kind, body: toBase64(delivery.body, 'base64') },
        attempts: 0,
        nextAttemptAt: 0,
        createdAt: at
      }
      all.push(db.putOp(db.outbox, db.newOutboxKey(peer, at), entry))
    }
    await this.events.commit(all, newEvents, at)
    for (const peer of new Set(deliveries.map(d => d.peer))) this.sender.kick(peer)
  }

  // ------------------------------------------------------------- messages

  async send (request: SendRequest): Promise<{ message: MessageRecord, created: boolean }> {
    const peer = this.checkPeer(request.to)
    const size = Buffer.byteLength(request.text, 'utf8')
    if (size === 0) throw new OctetError('BAD_REQUEST', 'text is empty')
    if (size > MAX_TEXT_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `text is ${size} bytes; the limit is ${MAX_TEXT_BYTES}`)
    const key = request.idempotencyKey
    if (key == null) return { message: await this.enqueue(peer, request.text), created: true }
    // the same key twice at once must still make one message
    return await this.lock.run(`idem:${key}`, async () => {
      const known = await this.db.idempotency.get(key)
      if (known != null && this.now() - known.createdAt < IDEMPOTENCY_TTL) {
        const message = await this.db.message(known.messageId)
        if (message != null) {
          if (message.peerId !== peer || message.text !== request.text) {
            throw new OctetError('CONFLICT', 'this Idempotency-Key was used for a different message')
          }
          return { message, created: false }
        }
      }
      return { message: await this.enqueue(peer, request.text, key), created: true }
    })
  }

  private async enqueue (peer: string, text: string, idempotencyKey?: string): Promise<MessageRecord> {
    const { db } = this
    // under the lock: the sequence number and the commit's place in the log; the write itself
    // is awaited outside it, so concurrent sends to one peer share a database batch
    const { message, committed } = await db.peerLock.run(peer, async () => {
      const at = this.now()
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
      }
      const committed = this.events.commit(ops, newEvents, at)
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
    this.sender.kick(peer)
    return message
  }


  /** Marks an incoming message read and tells its sender (a READ receipt, through the outbox). */
  async markRead (id: string): Promise<MessageRecord> {
    const message = await this.message(id)
    if (message.direction !== 'in') throw new OctetError('CONFLICT', 'only received messages can be marked read')
    if (message.status === 'read') return message
    const { db } = this
    const updated = await db.peerLock.run(message.peerId, async () => {
      const at = this.now()
      const current = await this.message(id)
      if (current.status === 'read') return current
      const updated: MessageRecord = { ...current, status: 'read', updatedAt: at }
      const conversation = await db.conversation(message.peerId)
      const nextConversation = { ...conversation, unread: Math.max(0, conversation.unread - 1) }
      await this.events.commit([
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
    this.sender.kick(message.peerId)
    return updated
  }

  // ------------------------------------------------------------- reading (history.ts)

  async message (id: string): Promise<MessageRecord> {
    return await this.historyReader.message(id)
  }

  async conversations (): Promise<ConversationSummary[]> {
    return await this.historyReader.conversations()
  }

  /** A conversation's messages in order; `before`/`after` are message ids (cursors). */
  async history (peerText: string, query: HistoryQuery): Promise<MessageRecord[]> {
    return await this.historyReader.page(this.checkPeer(peerText), query)
  }

  // ------------------------------------------------------------- contacts (contacts.ts)

  async contacts (): Promise<ContactView[]> {
    return await this.contactList.list()
  }

  async contact (peerText: string): Promise<ContactView> {
    return await this.contactList.get(this.checkPeer(peerText))
  }

  /** Adds (or renames) a contact; adding is accepting. `created` when it was not a contact before. */
  async addContact (peerText: string, name?: string): Promise<{ contact: ContactView, created: boolean }> {
    return await this.contactList.add(this.checkPeer(peerText), name)
  }

  async setContactState (peerText: string, state: 'accepted' | 'blocked'): Promise<ContactView> {
    return await this.contactList.setState(this.checkPeer(peerText), state)
  }

  async safetyNumber (peerText: string): Promise<SafetyNumbers> {
    return await this.contactList.safetyNumber(this.checkPeer(peerText))
  }

  /** The user compared safety numbers and trusts the peer's new identity key. */
  async acceptIdentity (peerText: string): Promise<ContactView> {
    const peer = this.checkPeer(peerText)
    if (!await this.init.crypto.acceptIdentityChange(peer)) {
      throw new OctetError('CONFLICT', `no identity change of ${peer} is waiting`)
    }
    const released = await this.receiver.releaseHeld(peer)
    await this.sender.release(peer)
    this.init.log.info({ peer, released }, 'identity change accepted')
    return (await this.addContact(peer)).contact
  }

  /**
   * Forgets the Signal session with a peer and sends again, in order, every
   * message to it that failed because the peer could not use our session
   * (refused with DECRYPT_FAILED, NO_SESSION or REPLAYED). The next send
   * starts a session from a fresh bundle (a changed identity key is caught
   * there); the messages keep their ids, so one the peer did store comes
   * back as a duplicate and is marked delivered, never shown twice.
   */
  async resetSession (peerText: string): Promise<{ peerId: string, requeued: number }> {
    const peer = this.checkPeer(peerText)
    const { db } = this
    await this.init.crypto.resetSession(peer)
    const requeued = await db.peerLock.run(peer, async () => {
      const ids: string[] = []
      for await (const id of db.timeline.values({ gt: `${peer}!`, lt: `${peer}!\xff` })) ids.push(id)
      const failed = (await db.messagesById(ids))
        .filter((m): m is MessageRecord => m != null && m.direction === 'out' && m.status === 'failed' && failedForLostSession(m.reason))
        .sort((a, b) => a.seq - b.seq)
      const at = this.now()
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
      await this.events.commit(ops, newEvents, at)
      return failed.length
    })
    this.init.log.info({ peer, requeued }, 'session reset; failed messages queued again')
    this.sender.kick(peer)
    return { peerId: peer, requeued }
  }

  private checkPeer (text: string): string {
    // a canonical PeerId (the common case, and cached) is used as is; anything else is parsed and normalised
    const peer = isPeerIdString(text) ? text : parsePeerId(text).toString()
    if (peer === this.init.peerId) throw new OctetError('BAD_REQUEST', 'that is this node\'s own PeerId')
    return peer
  }
}
