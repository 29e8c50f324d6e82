import { fromString as fromBase64 } from 'uint8arrays/from-string'
import { toString as toBase64 } from 'uint8arrays/to-string'
import type { BytesSublevel, RecordSublevel, Store, StoreOp } from '../store/database.js'
import { OctetError } from '../errors.js'
import { HISTORY_KEPT_PER_GROUP, KEPT_VERSIONS } from './constants.js'
import { groupMessageId } from './ids.js'
import { decodeMembership, encodeMembership, type MembershipDoc } from './membership.js'

/**
 * invited: an admin invited us (accept or decline); accepted: we accepted and
 * wait for the admin's signed change that adds us; joined: a member;
 * declined, left, removed: no longer (kept so the API can say so).
 */
export type GroupState = 'invited' | 'accepted' | 'joined' | 'declined' | 'left' | 'removed'

/** What we hold of one sender's messages in a group. */
export interface SenderTrack {
  /** every seq up to this one is stored (or was never meant for us) */
  contiguous: number
  /** seqs above contiguous + 1 that arrived (early, or stored after giving up on the gap): there is a gap below each */
  ahead: number[]
}

export interface GroupRecord {
  id: string
  state: GroupState
  /** the current membership version, encoded (base64) */
  membership: string
  /** the seq our next message gets */
  nextSeq: number
  /** sentAt of our last message: the next one is never earlier, so a sender's order is its seq order */
  lastSentAt: number
  /** the key epoch whose sender key of ours the other members have been sent */
  distributedEpoch: number
  /** member → the membership version from which we know it as a member (catch-up serves it what came since) */
  memberSince: Record<string, number>
  senders: Record<string, SenderTrack>
  /** as an admin: peers invited and not answered yet */
  invites: Record<string, { at: number }>
  /** who invited us */
  invitedBy?: string
  /** counter of the catch-up log (group-log keys) */
  logCounter: number
  createdAt: number
  updatedAt: number
}

/** What changes with every message sent or received: written apart, so a message does not rewrite the whole group record. */
export type GroupProgress = Pick<GroupRecord, 'nextSeq' | 'lastSentAt' | 'logCounter' | 'senders' | 'updatedAt'>

export interface GroupMessageRecord {
  groupId: string
  /** 32 hex digits, the same at every member: see groupMessageId (context.ts) */
  id: string
  direction: 'in' | 'out'
  /** who wrote it (our own PeerId when direction is out) */
  author: string
  /** the author's sequence number in this group */
  seq: number
  text: string
  /** sender's clock, ms */
  sentAt: number
  /** our clock, ms (incoming) */
  receivedAt?: number
  epoch: number
}

/** An Idempotency-Key of a message we sent: a retried send with it answers that message. */
export interface GroupIdempotencyRecord {
  /** the message's key in `messages` */
  messageKey: string
  createdAt: number
}

/**
 * A group message as stored: with its place in the order this node took
 * messages in (1, 2, … per group), which the timeline is keyed by and paging
 * cursors are found by. The API and events show the record without it.
 */
interface StoredGroupMessage extends GroupMessageRecord {
  /** its place in the timeline; absent while its event waits for an earlier message (not listed yet) */
  arrival?: number
}

/** A page of a group's messages: like a conversation's, `before`/`after` are message ids. */
export interface GroupPageQuery {
  before?: string
  after?: string
  limit: number
}

/**
 * A group message as published (its ciphertext), kept to serve catch-up. The
 * encoded message itself is in `group-log-data` under the same key, as bytes.
 */
export interface LogEntry {
  sender: string
  seq: number
  /** our membership version when it was stored: served only to members from before it */
  version: number
  /** entries written before the bytes had a sublevel of their own carry them here, base64 */
  data?: string
}

/** A kept entry and where it is. */
export interface LoggedMessage extends LogEntry {
  key: string
}

/** Idempotency entries read per step when pruning. */
const PRUNE_CHUNK = 1000

const pad = (n: number, width = 16): string => String(n).padStart(width, '0')

/**
 * Typed access to the group sublevels; keys are built here and nowhere else.
 * Records are cached write-through: callers update the cache (`remember`)
 * once the batch that writes them has been committed.
 */
export class GroupStore {
  readonly groups: RecordSublevel<GroupRecord>
  /** group id → its progress since the record was last written whole (overrides the record's) */
  readonly progress: RecordSublevel<GroupProgress>
  /** `<group>!<version>` → encoded Membership (base64): the last KEPT_VERSIONS versions */
  readonly versions: RecordSublevel<string>
  /** `<group>!<id>` → message, with its arrival index */
  readonly messages: RecordSublevel<StoredGroupMessage>
  /**
   * `<group>!<arrival>` → message id: a group's messages in the order this
   * node stored (and showed) them, not by the senders' clocks, so a page
   * never changes behind a reader and a late message lands at the end
   */
  readonly timeline: RecordSublevel<string>
  /** `<group>!<counter>` → who sent what: the last HISTORY_KEPT_PER_GROUP messages */
  readonly log: RecordSublevel<LogEntry>
  /** `<group>!<counter>` → the encoded message (its ciphertext) of the log entry with that key */
  readonly logData: BytesSublevel
  /** `<group>!<Idempotency-Key>` → the message sent with it (pruned after IDEMPOTENCY_TTL) */
  readonly idempotency: RecordSublevel<GroupIdempotencyRecord>
  private readonly cache = new Map<string, GroupRecord>()
  private readonly docs = new Map<string, { encoded: string, doc: MembershipDoc }>()
  /** per group: the last arrival index handed out (read from the timeline on first use) */
  private readonly arrivals = new Map<string, number>()
  private readonly store: Store

  constructor (store: Store) {
    this.groups = store.records('groups')
    this.progress = store.records('group-progress')
    this.versions = store.records('group-versions')
    this.messages = store.records('group-messages')
    this.timeline = store.records('group-timeline')
    this.log = store.records('group-log')
    this.logData = store.bytes('group-log-data')
    this.idempotency = store.records('group-idempotency')
    this.store = store
  }

  async group (id: string): Promise<GroupRecord | undefined> {
    const cached = this.cache.get(id)
    if (cached != null) return cached
    const [record, progress] = await Promise.all([this.groups.get(id), this.progress.get(id)])
    if (record == null) return undefined
    const merged = progress == null ? record : { ...record, ...progress }
    this.cache.set(id, merged)
    return merged
  }

  async all (): Promise<GroupRecord[]> {
    const ids: string[] = []
    for await (const id of this.groups.keys()) ids.push(id)
    const records = await Promise.all(ids.map(async id => await this.group(id)))
    return records.filter((r): r is GroupRecord => r != null)
  }

  remember (record: GroupRecord): void {
    this.cache.set(record.id, record)
  }

  forget (id: string): void {
    this.cache.delete(id)
  }

  /** The record's current membership version, decoded (and cached). */
  doc (record: GroupRecord): MembershipDoc {
    const cached = this.docs.get(record.id)
    if (cached?.encoded === record.membership) return cached.doc
    const doc = decodeMembership(fromBase64(record.membership, 'base64'))
    this.docs.set(record.id, { encoded: record.membership, doc })
    return doc
  }

  static encodeDoc (doc: MembershipDoc): string {
    return toBase64(encodeMembership(doc), 'base64')
  }

  /** The whole record (and no separate progress, which it includes). */
  putGroup (record: GroupRecord): StoreOp[] {
    return [
      { type: 'put', sublevel: this.groups, key: record.id, value: record },
      { type: 'del', sublevel: this.progress, key: record.id }
    ]
  }

  /** Only what a message changed (seq, log counter, sender positions). */
  putProgress (record: GroupRecord): StoreOp {
    const progress: GroupProgress = { nextSeq: record.nextSeq, lastSentAt: record.lastSentAt, logCounter: record.logCounter, senders: record.senders, updatedAt: record.updatedAt }
    return { type: 'put', sublevel: this.progress, key: record.id, value: progress }
  }

  /** Keeps `doc` among the recent versions (and drops the one KEPT_VERSIONS older). */
  putVersion (doc: MembershipDoc): StoreOp[] {
    const ops: StoreOp[] = [{ type: 'put', sublevel: this.versions, key: `${doc.groupId}!${pad(doc.version)}`, value: GroupStore.encodeDoc(doc) }]
    if (doc.version > KEPT_VERSIONS) ops.push({ type: 'del', sublevel: this.versions, key: `${doc.groupId}!${pad(doc.version - KEPT_VERSIONS)}` })
    return ops
  }

  /** Versions `from`…`to` that we still hold, oldest first. */
  async versionRange (groupId: string, from: number, to: number): Promise<MembershipDoc[]> {
    const docs: MembershipDoc[] = []
    for await (const value of this.versions.values({ gte: `${groupId}!${pad(Math.max(1, from))}`, lte: `${groupId}!${pad(to)}` })) {
      docs.push(decodeMembership(fromBase64(value, 'base64')))
    }
    return docs
  }

  private messageKey (groupId: string, id: string): string {
    return `${groupId}!${id}`
  }

  async hasMessage (groupId: string, author: string, seq: number): Promise<boolean> {
    return await this.messages.get(this.messageKey(groupId, groupMessageId(groupId, author, seq))) != null
  }

  /**
   * A message as it arrives: stored, and not listed yet (its event may wait
   * for an earlier one of its author; listMessage lists it when it goes out).
   */
  putMessage (message: GroupMessageRecord): StoreOp {
    return { type: 'put', sublevel: this.messages, key: this.messageKey(message.groupId, message.id), value: message }
  }

  /**
   * A message and its place at the end of the group's timeline: the history
   * lists messages in the order their events went out, so a client sees one
   * order in both. Call under the group's lock, in that order. An index
   * handed out to a batch that then fails is skipped: only the order counts.
   */
  async listMessage (message: GroupMessageRecord): Promise<StoreOp[]> {
    const arrival = await this.nextArrival(message.groupId)
    const stored: StoredGroupMessage = { ...message, arrival }
    return [
      { type: 'put', sublevel: this.messages, key: this.messageKey(message.groupId, message.id), value: stored },
      { type: 'put', sublevel: this.timeline, key: `${message.groupId}!${pad(arrival)}`, value: message.id }
    ]
  }

  private async nextArrival (groupId: string): Promise<number> {
    if (!this.arrivals.has(groupId)) {
      let last = 0
      for await (const key of this.timeline.keys({ gt: `${groupId}!`, lt: `${groupId}!\xff`, reverse: true, limit: 1 })) last = Number(key.slice(groupId.length + 1))
      // another caller may have loaded it meanwhile and handed out more
      if (!this.arrivals.has(groupId)) this.arrivals.set(groupId, last)
    }
    const next = (this.arrivals.get(groupId) ?? 0) + 1
    this.arrivals.set(groupId, next)
    return next
  }

  /** Keeps a ciphertext for catch-up (and drops the one HISTORY_KEPT_PER_GROUP older). Advances `record.logCounter`. */
  putLog (record: GroupRecord, sender: string, seq: number, encoded: Uint8Array, version: number): StoreOp[] {
    record.logCounter += 1
    const key = `${record.id}!${pad(record.logCounter)}`
    const entry: LogEntry = { sender, seq, version }
    const ops: StoreOp[] = [
      { type: 'put', sublevel: this.log, key, value: entry },
      { type: 'put', sublevel: this.logData, key, value: encoded }
    ]
    if (record.logCounter > HISTORY_KEPT_PER_GROUP) {
      const old = `${record.id}!${pad(record.logCounter - HISTORY_KEPT_PER_GROUP)}`
      ops.push({ type: 'del', sublevel: this.log, key: old }, { type: 'del', sublevel: this.logData, key: old })
    }
    return ops
  }

  idempotencyKey (groupId: string, key: string): string {
    return `${groupId}!${key}`
  }

  /** The message sent with this Idempotency-Key, if the key is still remembered. */
  async idempotent (groupId: string, key: string): Promise<{ record: GroupIdempotencyRecord, message: GroupMessageRecord | undefined } | undefined> {
    const record = await this.idempotency.get(this.idempotencyKey(groupId, key))
    return record == null ? undefined : { record, message: await this.messages.get(record.messageKey) }
  }

  putIdempotency (message: GroupMessageRecord, key: string, createdAt: number): StoreOp {
    const value: GroupIdempotencyRecord = { messageKey: this.messageKey(message.groupId, message.id), createdAt }
    return { type: 'put', sublevel: this.idempotency, key: this.idempotencyKey(message.groupId, key), value }
  }

  /** Deletes Idempotency-Keys remembered since before `olderThan`, a chunk at a time; returns how many went. */
  async pruneIdempotency (olderThan: number, stopped: () => boolean = () => false): Promise<number> {
    let deleted = 0
    let after: string | undefined
    while (!stopped()) {
      const doomed: StoreOp[] = []
      let read = 0
      for await (const [key, value] of this.idempotency.iterator(after == null ? { limit: PRUNE_CHUNK } : { gt: after, limit: PRUNE_CHUNK })) {
        read++
        after = key
        if (value.createdAt < olderThan) doomed.push({ type: 'del', sublevel: this.idempotency, key })
      }
      if (doomed.length > 0) await this.store.batch(doomed)
      deleted += doomed.length
      if (read < PRUNE_CHUNK) break
    }
    return deleted
  }

  /**
   * A page of a group's messages in arrival order: the newest `limit` before
   * `before` (or of all), or the oldest `limit` after `after`; oldest first.
   */
  async page (groupId: string, query: GroupPageQuery): Promise<GroupMessageRecord[]> {
    const range: { gt: string, lt: string } = { gt: `${groupId}!`, lt: `${groupId}!\xff` }
    if (query.after != null) range.gt = `${groupId}!${pad(await this.cursor(groupId, query.after))}`
    if (query.before != null) range.lt = `${groupId}!${pad(await this.cursor(groupId, query.before))}`
    const reverse = query.after == null
    const ids: string[] = []
    for await (const id of this.timeline.values({ ...range, reverse, limit: query.limit })) ids.push(id)
    if (reverse) ids.reverse()
    const stored = await this.messages.getMany(ids.map(id => this.messageKey(groupId, id)))
    return stored.flatMap(m => {
      if (m == null) return []
      const { arrival: _arrival, ...message } = m
      return [message]
    })
  }

  /** The arrival index of a message named as a cursor. */
  private async cursor (groupId: string, id: string): Promise<number> {
    const stored = /^[0-9a-f]{32}$/.test(id) ? await this.messages.get(this.messageKey(groupId, id)) : undefined
    if (stored?.arrival == null) throw new OctetError('NOT_FOUND', `no message ${id} in group ${groupId}`)
    return stored.arrival
  }

  /** The kept messages of a group (who sent what), oldest first; loggedBytes() reads their bytes. */
  async * logEntries (groupId: string): AsyncGenerator<LoggedMessage> {
    for await (const [key, entry] of this.log.iterator({ gt: `${groupId}!`, lt: `${groupId}!\xff` })) yield { ...entry, key }
  }

  /** The encoded messages of `entries`, in order (an entry whose bytes are gone is left out). */
  async loggedBytes (entries: LoggedMessage[]): Promise<Uint8Array[]> {
    const stored = await this.logData.getMany(entries.map(e => e.key))
    return entries.flatMap((entry, i) => {
      const bytes = stored[i] ?? (entry.data != null ? fromBase64(entry.data, 'base64') : undefined)
      return bytes == null ? [] : [bytes]
    })
  }
}
