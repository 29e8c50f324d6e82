import type { SignalCrypto } from '../crypto/index.js'
import { OctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import { parsePeerId, type OctetLibp2p } from '../node/index.js'
import type { StoreOp, Store } from '../store/database.js'
import { isPeerIdString } from '../wire/ids.js'
import { EVENT_HOLD_MAX, MAILBOX_COLLECT_MARGIN } from './constants.js'
import { DmTransport } from './dm-protocol.js'
import { EventLog, type NewEvent } from './events.js'
import { Contacts, type ContactView, type SafetyNumbers } from './contacts.js'
import { History, type ConversationSummary, type HistoryQuery } from './history.js'
import { MessagingStore, type MessageRecord } from './records.js'
import { Outgoing, type PairwiseDelivery } from './outgoing.js'
import { EventOrder } from './ordering.js'
import { Receiver, type GroupEnvelopeHandler } from './receiver.js'
import { Retention } from './retention.js'
import { MailboxCollector, type CollectReport } from './mailbox-collector.js'
import type { BundleSource, MailboxClient } from './clients.js'
import { Sender } from './sender.js'
import { Counters } from './stats.js'
import { Refusals } from '../refusals.js'

export type { MessageRecord, ContactRecord, MessageStatus, ConversationRecord, PairwiseKind } from './records.js'
export type { GroupEnvelopeHandler } from './receiver.js'
export type { NewEvent } from './events.js'
export type { OctetEvent, OctetEventType, OctetEventDataMap, MessageStatusData, GroupEventType } from './events.js'
export type { BundleSource, MailboxClient } from './clients.js'
export type { CollectReport } from './mailbox-collector.js'
export type { ContactView } from './contacts.js'
export type { PairwiseDelivery } from './outgoing.js'
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

/**
 * Conversations, outbox, receipts and contacts: what the API and CLI call.
 *
 * It checks the peers it is given and hands the work to its parts, each of
 * which writes through the event log's commits (and so the commit pipeline)
 * and states its own rules: outgoing.ts puts messages, read receipts,
 * requeued messages and group deliveries in the outbox, each on disk before
 * the call returns; the sender and receiver deliver and take them;
 * contacts.ts keeps the contacts; history.ts reads.
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
  private readonly now: () => number
  private readonly collector: MailboxCollector | undefined
  private readonly retention: Retention
  private readonly contactList: Contacts
  private readonly historyReader: History
  private readonly outgoing: Outgoing

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
    this.outgoing = new Outgoing({ peerId: init.peerId, db: this.db, events: init.events, crypto: init.crypto, history: this.historyReader, log: init.log, now: this.now, kick: peer => { this.sender.kick(peer) } })
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

  /** Commits `ops` and `newEvents` with outbox entries that deliver each plaintext to its peer (outgoing.ts). */
  async commitPairwise (ops: StoreOp[], newEvents: NewEvent[], deliveries: PairwiseDelivery[]): Promise<void> {
    await this.outgoing.commitPairwise(ops, newEvents, deliveries.map(d => ({ ...d, peer: this.checkPeer(d.peer) })))
  }

  // ------------------------------------------------------------- messages (outgoing.ts)

  async send (request: SendRequest): Promise<{ message: MessageRecord, created: boolean }> {
    return await this.outgoing.send(this.checkPeer(request.to), request.text, request.idempotencyKey)
  }

  /** Marks an incoming message read and tells its sender (a READ receipt, through the outbox). */
  async markRead (id: string): Promise<MessageRecord> {
    return await this.outgoing.markRead(id)
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

  /** Forgets the Signal session with a peer and sends again what failed because the peer could not use it (outgoing.ts). */
  async resetSession (peerText: string): Promise<{ peerId: string, requeued: number }> {
    const peer = this.checkPeer(peerText)
    return { peerId: peer, requeued: await this.outgoing.resetSession(peer) }
  }

  private checkPeer (text: string): string {
    // a canonical PeerId (the common case, and cached) is used as is; anything else is parsed and normalised
    const peer = isPeerIdString(text) ? text : parsePeerId(text).toString()
    if (peer === this.init.peerId) throw new OctetError('BAD_REQUEST', 'that is this node\'s own PeerId')
    return peer
  }
}
