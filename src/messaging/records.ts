import { KeyedLock } from '../lock.js'
import type { RecordSublevel, Store, StoreOp } from '../store/database.js'
import { MAX_TRACKED_GAPS } from './constants.js'
import { OutboxIndex, type KeyedEntry } from './outbox-index.js'

/**
 * queued: in our outbox; sent: written to the peer's stream; stored: sealed at
 * `mailboxes` mailbox peers while the peer is offline; delivered: the peer
 * acknowledged it; read: the peer's user read it; failed: see `reason`.
 */
export type MessageStatus = 'queued' | 'sent' | 'stored' | 'delivered' | 'read' | 'failed'
export type Direction = 'out' | 'in'

/** One message as stored; the API shows it as is. */
export interface MessageRecord {
  id: string
  direction: Direction
  /** the other side of the conversation */
  peerId: string
  /** who wrote it: our own PeerId when outgoing, the peer's when incoming */
  author: string
  /** the sender's per-conversation sequence number (1, 2, …) */
  seq: number
  text: string
  /** sender's clock, ms */
  sentAt: number
  /** our clock, ms, when it arrived (incoming only) */
  receivedAt?: number
  status: MessageStatus
  /** why it failed or is held */
  reason?: string
  /** outgoing, peer offline: how many mailbox peers accepted a sealed copy */
  mailboxes?: number
  updatedAt: number
}

/** The part of a message that changes after it was written: kept apart, so a status change does not rewrite the text. */
export type MessageStatusRecord = Pick<MessageRecord, 'status' | 'updatedAt' | 'reason' | 'mailboxes'>

export interface ConversationRecord {
  peerId: string
  /** next sequence number we give an outgoing message */
  nextSeq: number
  /** highest sequence number received from the peer */
  highestSeq: number
  /** sequence numbers below highestSeq not received (yet): gaps stay visible */
  missing: number[]
  lastMessageAt: number
  unread: number
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

export type ContactState = 'accepted' | 'pending' | 'blocked'

export interface ContactRecord {
  peerId: string
  name?: string
  /** pending: wrote to us first and waits for accept or block */
  state: ContactState
  createdAt: number
  updatedAt: number
}

/** What a group module sends pairwise: membership changes and invites, and sender keys. */
export type PairwiseKind = 'group-control' | 'sender-key'

export type OutboxPayload =
  | { kind: 'text', messageId: string }
  | { kind: 'receipt', receipt: 'read' | 'delivered', ids: string[] }
  /** a GROUP_CONTROL or SENDER_KEY envelope; `body` is its plaintext, base64 */
  | { kind: 'group', type: PairwiseKind, body: string }

/** Something to deliver to a peer; removed once the peer acknowledged it. */
export interface OutboxEntry {
  /** envelope id (the message id for texts) */
  id: string
  peerId: string
  payload: OutboxPayload
  attempts: number
  nextAttemptAt: number
  createdAt: number
  lastError?: string
  /** sealed copies were left at this many mailbox peers (deposited once; direct retries go on) */
  mailboxes?: number
}

export interface IdempotencyRecord {
  messageId: string
  createdAt: number
}

/** An envelope that arrived while the sender's identity key was in question; replayed on accept. */
export interface HeldEnvelope {
  peerId: string
  /** the encoded envelope, base64 */
  envelope: string
  receivedAt: number
}

const pad = (n: number, width = 16): string => String(n).padStart(width, '0')

function withStatus (message: MessageRecord | undefined, status: MessageStatusRecord | undefined): MessageRecord | undefined {
  if (message == null || status == null) return message
  const merged: MessageRecord = { ...message, status: status.status, updatedAt: status.updatedAt }
  delete merged.reason
  delete merged.mailboxes
  if (status.reason != null) merged.reason = status.reason
  if (status.mailboxes != null) merged.mailboxes = status.mailboxes
  return merged
}

/** Dedup entries read per step while pruning. */
const SEEN_PRUNE_CHUNK = 1000

/** Messages kept in memory after they were written: two send windows. */
const RECENT_MESSAGES = 1024

/**
 * Typed access to the messaging sublevels. Keys are built here and nowhere
 * else; callers get records and batch operations.
 */
export class MessagingStore {
  /** id → the message as first written (its status then); read through message()/messagesById() */
  readonly messages: RecordSublevel<MessageRecord>
  /** id → its status since, when it changed (overrides the one in `messages`) */
  readonly statuses: RecordSublevel<MessageStatusRecord>
  /** `<peer>!<sentAt>!<seq>!<direction>` → message id: a conversation in order */
  readonly timeline: RecordSublevel<string>
  readonly conversations: RecordSublevel<ConversationRecord>
  readonly contacts: RecordSublevel<ContactRecord>
  /** `<peer>!<createdAt>!<counter>` → entry: per peer, in the order messages were accepted */
  readonly outbox: RecordSublevel<OutboxEntry>
  /** `<sender>!<id>` → receivedAt: dedup of incoming envelopes */
  readonly seen: RecordSublevel<number>
  readonly idempotency: RecordSublevel<IdempotencyRecord>
  readonly held: RecordSublevel<HeldEnvelope>
  /**
   * Held by whoever reads, changes and writes back a conversation or contact
   * (sending, receiving, marking read): key `peer`. One lock for all of them,
   * or a send and a receive would each write back their own copy.
   */
  readonly peerLock = new KeyedLock()
  private outboxCounter = 0
  // read on every message, written only under peerLock after a commit: safe to cache
  private readonly conversationCache = new Map<string, ConversationRecord>()
  private readonly contactCache = new Map<string, ContactRecord | undefined>()
  private readonly outboxIndex = new OutboxIndex(key => key.slice(0, key.indexOf('!')))
  /**
   * Messages written lately, as committed: the sender reads each outgoing
   * message back right after `send` wrote it, and a read through LevelDB's
   * thread pool cost more than the encryption. Kept coherent by the same
   * commit hook as the outbox (every write goes through Store.batch).
   */
  private readonly recentMessages = new Map<string, MessageRecord>()
  private readonly outboxLoaded: Promise<void>

  constructor (readonly store: Store) {
    this.messages = store.records('messages')
    this.statuses = store.records('message-status')
    this.timeline = store.records('timeline')
    this.conversations = store.records('conversations')
    this.contacts = store.records('contacts')
    this.outbox = store.records('outbox')
    this.seen = store.records('seen')
    this.idempotency = store.records('idempotency')
    this.held = store.records('held')
    this.outboxLoaded = this.loadOutbox()
    // a failed load surfaces to every outboxFor caller; this only keeps it from being unhandled
    this.outboxLoaded.catch(() => {})
  }

  /**
   * Reads the outbox into its mirror. Batches committed meanwhile are kept
   * and applied after the snapshot, so a delete is never undone by it.
   */
  private async loadOutbox (): Promise<void> {
    const committed: StoreOp[] = []
    let apply = (ops: StoreOp[]): void => { committed.push(...ops) }
    this.store.onCommitted(ops => {
      this.rememberMessages(ops)
      apply(ops.filter(op => op.sublevel === this.outbox))
    })
    const snapshot: KeyedEntry[] = []
    for await (const [key, entry] of this.outbox.iterator()) snapshot.push({ key, entry })
    this.outboxIndex.load(snapshot)
    this.outboxIndex.apply(committed)
    apply = ops => { this.outboxIndex.apply(ops) }
  }

  timelineKey (m: Pick<MessageRecord, 'peerId' | 'sentAt' | 'seq' | 'direction'>): string {
    return `${m.peerId}!${pad(m.sentAt)}!${pad(m.seq, 12)}!${m.direction}`
  }

  newOutboxKey (peer: string, now: number): string {
    this.outboxCounter = (this.outboxCounter + 1) % 1_000_000
    return `${peer}!${pad(now)}!${pad(this.outboxCounter, 6)}`
  }

  seenKey (sender: string, id: string): string {
    return `${sender}!${id}`
  }

  /**
   * Deletes dedup entries of envelopes received before `olderThan` (ms). Keys
   * are sender and id, not time, so this reads the whole table, a chunk at a
   * time; it runs rarely (messaging/retention.ts). Returns how many went.
   */
  async pruneSeen (olderThan: number, stopped: () => boolean = () => false): Promise<number> {
    return await this.pruneOlder(this.seen, receivedAt => receivedAt, olderThan, stopped)
  }

  /** Idempotency keys past their TTL answer nothing any more (see Messenger.send): they go too. */
  async pruneIdempotency (olderThan: number, stopped: () => boolean = () => false): Promise<number> {
    return await this.pruneOlder(this.idempotency, record => record.createdAt, olderThan, stopped)
  }

  /** Deletes the entries of `sublevel` whose time is before `olderThan`, a chunk at a time. */
  private async pruneOlder<V> (sublevel: RecordSublevel<V>, timeOf: (value: V) => number, olderThan: number, stopped: () => boolean): Promise<number> {
    let deleted = 0
    let after: string | undefined
    while (!stopped()) {
      const doomed: string[] = []
      let read = 0
      for await (const [key, value] of sublevel.iterator(after == null ? { limit: SEEN_PRUNE_CHUNK } : { gt: after, limit: SEEN_PRUNE_CHUNK })) {
        read++
        after = key
        if (timeOf(value) < olderThan) doomed.push(key)
      }
      if (doomed.length > 0) await this.store.batch(doomed.map(key => this.delOp(sublevel, key)))
      deleted += doomed.length
      if (read < SEEN_PRUNE_CHUNK) break
    }
    return deleted
  }

  putOp<V> (sublevel: RecordSublevel<V>, key: string, value: V): StoreOp {
    return { type: 'put', sublevel, key, value }
  }

  delOp<V> (sublevel: RecordSublevel<V>, key: string): StoreOp {
    return { type: 'del', sublevel, key }
  }

  async batch (ops: StoreOp[]): Promise<void> {
    await this.store.batch(ops)
  }

  async conversation (peer: string): Promise<ConversationRecord> {
    const cached = this.conversationCache.get(peer)
    if (cached != null) return cached
    return await this.conversations.get(peer) ?? { peerId: peer, nextSeq: 1, highestSeq: 0, missing: [], lastMessageAt: 0, unread: 0 }
  }

  async contact (peer: string): Promise<ContactRecord | undefined> {
    if (this.contactCache.has(peer)) return this.contactCache.get(peer)
    const contact = await this.contacts.get(peer)
    this.contactCache.set(peer, contact)
    return contact
  }

  /** Drops a peer's cached records, e.g. after a write that failed. */
  forget (peer: string): void {
    this.conversationCache.delete(peer)
    this.contactCache.delete(peer)
  }

  /** Call under peerLock with records whose commit is queued or done. */
  remember (records: { conversation?: ConversationRecord, contact?: ContactRecord }): void {
    if (records.conversation != null) this.conversationCache.set(records.conversation.peerId, records.conversation)
    if (records.contact != null) this.contactCache.set(records.contact.peerId, records.contact)
  }

  /** A new message, whole. */
  putMessage (message: MessageRecord): StoreOp {
    return this.putOp(this.messages, message.id, message)
  }

  /** A changed status of a message written before: only the status fields are written. */
  putStatus (message: MessageRecord): StoreOp {
    const status: MessageStatusRecord = { status: message.status, updatedAt: message.updatedAt }
    if (message.reason != null) status.reason = message.reason
    if (message.mailboxes != null) status.mailboxes = message.mailboxes
    return this.putOp(this.statuses, message.id, status)
  }

  async message (id: string): Promise<MessageRecord | undefined> {
    return (await this.messagesById([id]))[0]
  }

  /** The messages with these ids (undefined where there is none), from memory when written lately. */
  async messagesById (ids: string[]): Promise<Array<MessageRecord | undefined>> {
    const found = ids.map(id => this.recentMessages.get(id))
    const missing = ids.filter((_, i) => found[i] == null)
    if (missing.length === 0) return found
    const [bodies, statuses] = await Promise.all([this.messages.getMany(missing), this.statuses.getMany(missing)])
    let next = 0
    return found.map(record => {
      if (record != null) return record
      const i = next++
      return withStatus(bodies[i], statuses[i])
    })
  }

  private rememberMessages (ops: StoreOp[]): void {
    for (const op of ops) {
      if (op.sublevel === this.messages) {
        this.recentMessages.delete(op.key)
        if (op.type === 'put') this.recentMessages.set(op.key, op.value as MessageRecord)
      } else if (op.sublevel === this.statuses) {
        // a status of a message not in memory is read from disk when asked for
        const cached = this.recentMessages.get(op.key)
        this.recentMessages.delete(op.key)
        if (op.type === 'put' && cached != null) this.recentMessages.set(op.key, withStatus(cached, op.value as MessageStatusRecord) as MessageRecord)
      }
    }
    // oldest first out: a Map iterates in insertion order
    for (const key of this.recentMessages.keys()) {
      if (this.recentMessages.size <= RECENT_MESSAGES) break
      this.recentMessages.delete(key)
    }
  }

  /** Outbox entries of one peer, oldest first, with their keys (shared: copy an entry to change it). */
  async outboxFor (peer: string): Promise<KeyedEntry[]> {
    await this.outboxLoaded
    return this.outboxIndex.entriesOf(peer)
  }

  /** How many entries the outbox holds, for how many peers. */
  async outboxDepth (): Promise<{ peers: number, entries: number }> {
    await this.outboxLoaded
    return this.outboxIndex.depth()
  }

  /** Every peer with something in the outbox. */
  async peersWithOutbox (): Promise<string[]> {
    await this.outboxLoaded
    return this.outboxIndex.peers()
  }
}
