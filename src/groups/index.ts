/**
 * Group conversations: a gossipsub topic per group, messages encrypted with
 * Sender Keys, and a member list signed by the group's admins.
 *
 * Membership (membership.ts): a chain of signed versions. A change is made
 * by an admin, sent pairwise (GROUP_CONTROL envelopes through the outbox, so
 * it is retried and can wait in mailboxes) to every member of the old and the
 * new version, and checked link by link by each of them.
 *
 * Keys: each member has a sender key per key epoch, named
 * `<groupId>/<epoch>` for libsignal (a distribution id of its own), and sends
 * it pairwise (SENDER_KEY envelopes) to every other member. Adding a member
 * keeps the epoch: each member sends the newcomer its current key, which opens
 * only what it encrypts from then on. Removing a member starts a new epoch
 * (the new version's number): every remaining member makes a new key and
 * sends it to the remaining members only, so the removed one cannot read
 * anything sent afterwards.
 *
 * Messages (codec.ts): a GroupMessage on the topic, from a current member,
 * decrypting under the sender's key — whose signature is what proves the
 * author (gossipsub signs nothing, see src/node/pubsub.ts) — with the seq and
 * time sealed inside equal to the outer ones. Otherwise it is rejected in
 * gossipsub validation (its propagation source loses score), counted and
 * logged. Only a proven message is forwarded to the mesh: one already here
 * (dedup by (sender, seq)) or waiting in memory for its sender key (until
 * that arrives) is not, as nothing proves it yet.
 *
 * Catch-up (history.ts): every member keeps the ciphertexts it saw (the last
 * HISTORY_KEPT_PER_GROUP per group) and serves them to members. A member asks
 * one or two others on start and when a sender's seq skips.
 *
 * Invites — the flow chosen: a separate invite control message.
 *   1. An admin sends INVITE (the current membership version) to the peer and
 *      remembers the invite. The invitee checks that version stands on its own
 *      (signed by one of its admins) and came from one of its admins; the
 *      group shows as `invited`, with a `group.invite` event.
 *   2. The invitee accepts (ACCEPT to the inviting admin; state `accepted`) or
 *      declines (DECLINE; state `declined`).
 *   3. On ACCEPT for a pending invite, the admin signs a new version with the
 *      invitee as a member and sends it to everyone; the invitee, seeing itself
 *      in a version signed and sent by an admin, becomes `joined`, subscribes
 *      and sends its sender key; the members send theirs to it.
 * A joining member cannot check the chain before the version it joins at: it
 * trusts the admins it accepted the invite of. Members check every link.
 * Concurrent changes by two admins: the first one a member applies wins; the
 * other is refused (GROUP_STALE) there.
 */
import { randomBytes, createHash } from 'node:crypto'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import type { Logger } from '../logger.js'
import type { Messenger, NewEvent, PairwiseDelivery, PairwiseKind } from '../messaging/index.js'
import { RateLimiter } from '../rate-limit.js'
import { RELAYED_CONNECTIONS_OK, dialProtocolFindingPeer, parsePeerId, type OctetLibp2p, type Pubsub, type PubsubMessage, type Verdict } from '../node/index.js'
import type { Refusal } from '../refusals.js'
import type { Store, StoreOp } from '../store/database.js'
import {
  ControlType,
  HistoryStatus,
  decodeControl,
  decodeGroupMessage,
  decodeGroupPlaintext,
  decodeSenderKey,
  encodeControl,
  encodeGroupMessage,
  encodeGroupPlaintext,
  encodeSenderKey,
  type GroupMessage,
  type HistoryRequest,
  type SenderKey
} from './codec.js'
import {
  CATCH_UP_PEERS,
  CATCH_UP_RETRY_DELAYS,
  DEFAULT_PAGE_SIZE,
  EARLY_HOLD_MAX,
  GAP_CATCH_UP_DELAY,
  HISTORY_BURST,
  HISTORY_DIAL_TIMEOUT,
  HISTORY_PROTOCOL,
  HISTORY_RATE_PER_SECOND,
  MAX_GROUP_NAME_LENGTH,
  MAX_GROUP_TEXT_BYTES,
  MAX_HISTORY_MESSAGES,
  MAX_INBOUND_HISTORY_STREAMS,
  MAX_MEMBERS,
  MAX_PAGE_SIZE,
  MAX_PENDING_PER_GROUP,
  MAX_TRACKED_AHEAD,
  MEMBERSHIP_CHAIN_LENGTH,
  START_CATCH_UP_DELAY,
  TOPIC_PREFIX
} from './constants.js'
import { callHistory, serveHistory, type HistoryBackend } from './history.js'
import {
  applyChain,
  createChange,
  createGenesis,
  isEd25519PeerId,
  isGroupId,
  validateChange,
  validateStandalone,
  type MembershipDiff,
  type MembershipDoc
} from './membership.js'
import { GroupStore, type GroupMessageRecord, type GroupRecord, type GroupState, type SenderTrack } from './store.js'

export { HISTORY_PROTOCOL } from './constants.js'
export type { GroupMessageRecord, GroupState } from './store.js'
export type { MembershipDoc } from './membership.js'

export interface GroupServiceInit {
  peerId: string
  /** the node's libp2p key: signs the membership versions we author */
  privateKey: PrivateKey
  store: Store
  crypto: SignalCrypto
  /** pairwise delivery (outbox), the event log and the counters */
  messenger: Messenger
  pubsub: Pubsub
  /** serves and calls /octet/group-history/1.0.0 */
  libp2p: OctetLibp2p
  log: Logger
  now?: () => number
}

/** A group as the API shows it. */
export interface GroupView {
  id: string
  name: string
  state: GroupState
  version: number
  keyEpoch: number
  members: string[]
  admins: string[]
  isAdmin: boolean
  /** as an admin: peers invited that have not answered */
  invites: string[]
  invitedBy?: string
  topic: string
  createdAt: number
  updatedAt: number
}

export interface CatchUpReport {
  /** members that answered */
  asked: number
  /** messages they sent */
  received: number
  /** of which new to us and stored */
  stored: number
}

type IngestResult = 'stored' | 'duplicate' | 'pending' | 'ignored' | { code: string, err?: unknown }

interface PendingMessage {
  message: GroupMessage
  bytes: Uint8Array
  source?: string
}

/** The gossipsub topic of a group: a hash of its id, so the topic names no group. */
export function groupTopic (groupId: string): string {
  return TOPIC_PREFIX + createHash('sha256').update(Buffer.from(groupId, 'hex')).digest('hex')
}

/** The name under which libsignal keeps the sender keys of one key epoch of a group. */
export function senderKeyName (groupId: string, epoch: number): string {
  return `${groupId}/${epoch}`
}

const ACTIVE_STATES: ReadonlySet<GroupState> = new Set(['invited', 'accepted', 'joined'])

export class GroupService {
  private readonly db: GroupStore
  private readonly lock = new KeyedLock()
  private readonly pending = new Map<string, PendingMessage[]>()
  private readonly gapTimers = new Map<string, { timer: NodeJS.Timeout, prefer: Set<string> }>()
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly background = new Set<Promise<unknown>>()
  private readonly inbound = new Set<Stream>()
  private readonly limiter = new RateLimiter(HISTORY_RATE_PER_SECOND, HISTORY_BURST)
  private readonly log: Logger
  private readonly now: () => number
  private readonly self: string
  private controller = new AbortController()
  private running = false

  constructor (private readonly init: GroupServiceInit) {
    this.db = new GroupStore(init.store)
    this.log = init.log.child({ module: 'groups' })
    this.now = init.now ?? Date.now
    this.self = init.peerId
    // registered at once: pairwise envelopes may arrive as soon as the messenger starts
    init.messenger.setGroupHandler(async (sender, kind, plaintext) => { await this.onPairwise(sender, kind, plaintext) })
  }

  /** Serves catch-up, subscribes to every group we are in and catches up on each. Idempotent. */
  async start (): Promise<void> {
    if (this.running) return
    this.controller = new AbortController()
    await this.init.libp2p.handle(HISTORY_PROTOCOL, (stream, connection) => { this.onHistoryStream(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_HISTORY_STREAMS,
      ...RELAYED_CONNECTIONS_OK
    })
    this.running = true
    for (const record of await this.db.all()) {
      if (record.state !== 'joined') continue
      this.subscribe(record.id)
      this.catchUpOnStart(record.id, 0)
    }
  }

  /** Idempotent. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    for (const { timer } of this.gapTimers.values()) clearTimeout(timer)
    this.gapTimers.clear()
    for (const timer of this.releaseTimers.values()) clearTimeout(timer)
    this.releaseTimers.clear()
    this.controller.abort(new OctetError('UNAVAILABLE', 'the group service stopped'))
    await this.init.libp2p.unhandle(HISTORY_PROTOCOL).catch(() => {})
    for (const stream of this.inbound) stream.abort(new Error('shutting down'))
    for (const record of await this.db.all()) this.init.pubsub.unsubscribe(groupTopic(record.id))
    await Promise.allSettled([...this.background])
  }

  // ================================================================ API

  async create (name: string): Promise<GroupView> {
    const trimmed = checkName(name)
    const groupId = randomBytes(16).toString('hex')
    const at = this.now()
    const doc = await createGenesis({ groupId, name: trimmed, key: this.init.privateKey, author: this.self, now: at })
    // our first sender key; nobody else to send it to yet
    await this.init.crypto.createSenderKeyDistribution(senderKeyName(groupId, doc.keyEpoch))
    const record: GroupRecord = {
      id: groupId,
      state: 'joined',
      membership: GroupStore.encodeDoc(doc),
      nextSeq: 1,
      lastSentAt: 0,
      distributedEpoch: doc.keyEpoch,
      memberSince: { [this.self]: 1 },
      senders: {},
      invites: {},
      logCounter: 0,
      createdAt: at,
      updatedAt: at
    }
    await this.lock.run(groupId, async () => {
      await this.init.messenger.events.commit([...this.db.putGroup(record), ...this.db.putVersion(doc)], [{ type: 'group.joined', data: { groupId, name: trimmed, version: 1 } }], at)
      this.db.remember(record)
      this.subscribe(groupId)
    })
    this.count('group.created')
    return this.view(record)
  }

  async list (): Promise<GroupView[]> {
    const records = await this.db.all()
    return records.map(r => this.view(r)).sort((a, b) => b.updatedAt - a.updatedAt)
  }

  async get (groupId: string): Promise<GroupView> {
    return this.view(await this.requireGroup(groupId))
  }

  /** As an admin: invite `peer`; it gets the current version and may accept. */
  async invite (groupId: string, peerText: string): Promise<GroupView> {
    const peer = checkPeer(peerText)
    if (peer === this.self) throw new OctetError('BAD_REQUEST', 'you cannot invite yourself')
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      const doc = this.requireAdmin(record)
      if (doc.members.includes(peer)) throw new OctetError('CONFLICT', `${peer} is already a member`)
      if (doc.members.length + Object.keys(record.invites).length >= MAX_MEMBERS) throw new OctetError('CONFLICT', `a group has at most ${MAX_MEMBERS} members`)
      const at = this.now()
      const updated: GroupRecord = { ...record, invites: { ...record.invites, [peer]: { at } }, updatedAt: at }
      await this.init.messenger.commitPairwise(this.db.putGroup(updated), [], [
        { peer, kind: 'group-control', body: encodeControl({ type: ControlType.INVITE, groupId, chain: [doc] }) }
      ])
      this.db.remember(updated)
      this.count('group.invites.sent')
      return this.view(updated)
    })
  }

  /** As an invitee: accept; the inviting admin then adds us with a signed change. */
  async accept (groupId: string): Promise<GroupView> {
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      if (record.state === 'accepted' || record.state === 'joined') return this.view(record)
      if (record.state !== 'invited' || record.invitedBy == null) throw new OctetError('CONFLICT', `there is no invite to group ${groupId} waiting (state ${record.state})`)
      const updated: GroupRecord = { ...record, state: 'accepted', updatedAt: this.now() }
      await this.init.messenger.commitPairwise(this.db.putGroup(updated), [], [
        { peer: record.invitedBy, kind: 'group-control', body: encodeControl({ type: ControlType.ACCEPT, groupId, chain: [] }) }
      ])
      this.db.remember(updated)
      return this.view(updated)
    })
  }

  async decline (groupId: string): Promise<GroupView> {
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      if (record.state !== 'invited' || record.invitedBy == null) throw new OctetError('CONFLICT', `there is no invite to group ${groupId} waiting (state ${record.state})`)
      return await this.declineLocked(record, 'declined')
    })
  }

  /** Leaves a group (or withdraws an accepted invite). An admin signs its own removal; others ask the admins. */
  async leave (groupId: string): Promise<GroupView> {
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      if (record.state === 'invited' || record.state === 'accepted') return await this.declineLocked(record, 'left')
      if (record.state !== 'joined') throw new OctetError('CONFLICT', `not a member of group ${groupId} (state ${record.state})`)
      const doc = this.db.doc(record)
      if (doc.admins.includes(this.self)) {
        const updated = await this.change(record, withoutMember(doc, this.self), 'left')
        return this.view(updated)
      }
      const at = this.now()
      const updated: GroupRecord = { ...record, state: 'left', updatedAt: at }
      const body = encodeControl({ type: ControlType.LEAVE, groupId, chain: [] })
      await this.init.messenger.commitPairwise(this.db.putGroup(updated), [], doc.admins.map(peer => ({ peer, kind: 'group-control' as const, body })))
      this.db.remember(updated)
      this.unsubscribe(groupId)
      return this.view(updated)
    })
  }

  /** As an admin: remove a member; the remaining members move to new sender keys. */
  async removeMember (groupId: string, peerText: string): Promise<GroupView> {
    const peer = checkPeer(peerText)
    if (peer === this.self) return await this.leave(groupId)
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      const doc = this.requireAdmin(record)
      if (!doc.members.includes(peer)) {
        if (record.invites[peer] == null) throw new OctetError('NOT_FOUND', `${peer} is not a member of group ${groupId}`)
        // an invite not answered yet: withdraw it (an ACCEPT that comes later finds none)
        const { [peer]: _withdrawn, ...invites } = record.invites
        const updated: GroupRecord = { ...record, invites, updatedAt: this.now() }
        await this.init.messenger.events.commit(this.db.putGroup(updated))
        this.db.remember(updated)
        return this.view(updated)
      }
      return this.view(await this.change(record, withoutMember(doc, peer)))
    })
  }

  /**
   * Encrypts `text` with our sender key, keeps it (for us and for catch-up)
   * and publishes it on the group's topic; `recipients` is how many peers
   * gossipsub sent it to (0 is fine: members catch up from us).
   */
  async send (groupId: string, text: string): Promise<{ message: GroupMessageRecord, recipients: number }> {
    const size = Buffer.byteLength(text, 'utf8')
    if (size === 0) throw new OctetError('BAD_REQUEST', 'text is empty')
    if (size > MAX_GROUP_TEXT_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `text is ${size} bytes; the limit is ${MAX_GROUP_TEXT_BYTES}`)
    return await this.lock.run(groupId, async () => {
      const record = await this.requireGroup(groupId)
      if (record.state !== 'joined') throw new OctetError('CONFLICT', `not a member of group ${groupId} (state ${record.state})`)
      const doc = this.db.doc(record)
      const at = this.now()
      const updated: GroupRecord = { ...record }
      let deliveries: PairwiseDelivery[] = []
      if (updated.distributedEpoch !== doc.keyEpoch) {
        // a key change that did not get out (a crash in between): send our key before the message
        deliveries = await this.keyDeliveries(updated, doc, others(doc, this.self))
        updated.distributedEpoch = doc.keyEpoch
      }
      const seq = updated.nextSeq
      const sentAt = Math.max(at, updated.lastSentAt)
      const ciphertext = await this.init.crypto.groupEncrypt(senderKeyName(groupId, doc.keyEpoch), encodeGroupPlaintext({ text, seq, sentAt }))
      const bytes = encodeGroupMessage({ groupId, sender: this.self, seq, sentAt, epoch: doc.keyEpoch, ciphertext })
      const message: GroupMessageRecord = { groupId, id: `${this.self}:${seq}`, direction: 'out', sender: this.self, seq, text, sentAt, epoch: doc.keyEpoch }
      updated.nextSeq = seq + 1
      updated.lastSentAt = sentAt
      updated.updatedAt = at
      const ops = [...this.db.putMessage(message), ...this.db.putLog(updated, this.self, seq, bytes, doc.version)]
      // a message changes only the progress part of the record, unless our key went out with it
      if (updated.distributedEpoch !== record.distributedEpoch) ops.push(...this.db.putGroup(updated))
      else ops.push(this.db.putProgress(updated))
      await this.init.messenger.commitPairwise(ops, [], deliveries)
      this.db.remember(updated)
      let recipients = 0
      try {
        // in the lock: a sender's messages leave in seq order, so receivers see no false gaps
        recipients = await this.init.pubsub.publish(groupTopic(groupId), bytes)
      } catch (err) {
        this.count('group.publish-failed')
        this.log.warn({ groupId, err: errorMessage(err) }, 'could not publish a group message; members will catch up from us')
      }
      this.count('group.sent')
      return { message, recipients }
    })
  }

  /** The newest `limit` messages of a group (ours too), oldest first. */
  async messages (groupId: string, limit = DEFAULT_PAGE_SIZE): Promise<GroupMessageRecord[]> {
    await this.requireGroup(groupId)
    return await this.db.page(groupId, Math.min(Math.max(1, limit), MAX_PAGE_SIZE))
  }

  /** The membership versions we keep of a group (the last KEPT_VERSIONS), oldest first. */
  async versions (groupId: string): Promise<MembershipDoc[]> {
    const record = await this.requireGroup(groupId)
    const current = this.db.doc(record)
    const kept = await this.db.versionRange(groupId, 1, current.version)
    return kept.length > 0 ? kept : [current]
  }

  /** Asks up to CATCH_UP_PEERS members for what we miss (also done on start and on gaps). */
  async catchUp (groupId: string, prefer: string[] = []): Promise<CatchUpReport> {
    const report: CatchUpReport = { asked: 0, received: 0, stored: 0 }
    const record = await this.db.group(groupId)
    if (record?.state !== 'joined') return report
    const doc = this.db.doc(record)
    const connected = doc.members.filter(m => m !== this.self && this.init.libp2p.getConnections(parsePeerId(m)).length > 0)
    const candidates = [...new Set([...prefer, ...shuffle(connected), ...shuffle(others(doc, this.self))])]
      .filter(m => m !== this.self && doc.members.includes(m))
    for (const peer of candidates) {
      if (report.asked >= CATCH_UP_PEERS || !this.running) break
      try {
        const messages = await this.askHistory(peer, await this.historyRequest(groupId))
        report.asked += 1
        report.received += messages.length
        report.stored += await this.ingestHistory(groupId, messages, peer)
      } catch (err) {
        this.count(`group.catch-up.failed.${isOctetError(err) ? err.code : 'ERROR'}`)
        this.log.debug({ groupId, peer, err: errorMessage(err) }, 'a member did not answer a catch-up request')
      }
    }
    if (report.stored > 0) this.log.info({ groupId, ...report }, 'caught up on group messages')
    // members answered and what is still missing is not to be had: do not hold the rest back
    if (report.asked > 0) await this.releaseEarly(groupId)
    else this.scheduleRelease(groupId)
    return report
  }

  // ================================================================ pairwise input

  private async onPairwise (sender: string, kind: PairwiseKind, plaintext: Uint8Array): Promise<void> {
    try {
      if (kind === 'sender-key') await this.onSenderKey(sender, decodeSenderKey(plaintext))
      else await this.onControl(sender, plaintext)
    } catch (err) {
      const code = isOctetError(err) ? err.code : 'INTERNAL'
      this.refuse({ counter: `group.rejected.${code}`, peer: sender, fields: { peer: sender, kind, code, err: errorMessage(err) }, message: 'refused a group envelope' })
      throw err
    }
  }

  private async onSenderKey (sender: string, key: SenderKey): Promise<void> {
    await this.lock.run(key.groupId, async () => {
      const record = await this.db.group(key.groupId)
      if (record == null) throw new OctetError('NOT_A_MEMBER', `a sender key for group ${key.groupId}, which we are not in`)
      if (!ACTIVE_STATES.has(record.state)) {
        this.count('group.ignored.sender-key')
        return
      }
      await this.init.crypto.processSenderKeyDistribution(sender, senderKeyName(key.groupId, key.epoch), key.distribution)
      this.count('group.sender-keys.received')
      if (record.senders[sender] == null) {
        // what it sent before this key is not for us (we were not a member, or cannot open it)
        const updated: GroupRecord = { ...record, senders: { ...record.senders, [sender]: { contiguous: key.nextSeq - 1, ahead: [] } }, updatedAt: this.now() }
        await this.init.messenger.events.commit(this.db.putGroup(updated))
        this.db.remember(updated)
      }
      await this.retryPending(key.groupId, sender)
    })
  }

  private async onControl (sender: string, plaintext: Uint8Array): Promise<void> {
    const control = decodeControl(plaintext)
    const groupId = control.groupId
    await this.lock.run(groupId, async () => {
      switch (control.type) {
        case ControlType.MEMBERSHIP:
          await this.onMembership(sender, groupId, control.chain)
          break
        case ControlType.INVITE:
          await this.onInvite(sender, groupId, control.chain[0] as MembershipDoc)
          break
        default:
          await this.onRequest(sender, groupId, control.type)
      }
    })
  }

  /** A new version (with the ones before it). Members check the chain; a joiner, the version alone. */
  private async onMembership (sender: string, groupId: string, chain: MembershipDoc[]): Promise<void> {
    const record = await this.db.group(groupId)
    if (record == null) throw new OctetError('NOT_A_MEMBER', `a membership change of group ${groupId}, which we are not in`)
    const newest = chain.at(-1) as MembershipDoc
    if (record.state === 'joined') {
      const applied = await applyChain(this.db.doc(record), chain)
      if (applied.length === 0) {
        this.count('group.membership.duplicate')
        return
      }
      await this.adopt(record, applied, false)
      return
    }
    if (record.state === 'invited' || record.state === 'accepted') {
      await this.checkFromAdmin(sender, newest)
      const current = this.db.doc(record)
      if (newest.version < current.version) throw new OctetError('GROUP_STALE', `membership: version ${newest.version} is older than version ${current.version}`)
      if (newest.members.includes(this.self) && record.state === 'accepted') {
        await this.join(record, newest)
        return
      }
      const updated: GroupRecord = { ...record, membership: GroupStore.encodeDoc(newest), updatedAt: this.now() }
      await this.init.messenger.events.commit(this.db.putGroup(updated))
      this.db.remember(updated)
      return
    }
    // left, removed or declined: nothing to follow any more
    this.count('group.ignored.membership')
  }

  private async onInvite (sender: string, groupId: string, doc: MembershipDoc): Promise<void> {
    await this.checkFromAdmin(sender, doc, false)
    if (doc.members.includes(this.self)) throw new OctetError('GROUP_INVALID', `an invite to group ${groupId}, which lists us as a member already`)
    const record = await this.db.group(groupId)
    if (record?.state === 'joined') {
      this.count('group.ignored.invite')
      return
    }
    const at = this.now()
    const membership = GroupStore.encodeDoc(doc)
    if (record != null && (record.state === 'invited' || record.state === 'accepted') && record.invitedBy === sender && record.membership === membership) return
    // a peer that was in the group before keeps counting its own seqs where it left off
    const updated: GroupRecord = record == null
      ? { id: groupId, state: 'invited', membership, nextSeq: 1, lastSentAt: 0, distributedEpoch: 0, memberSince: {}, senders: {}, invites: {}, invitedBy: sender, logCounter: 0, createdAt: at, updatedAt: at }
      : { ...record, state: record.state === 'accepted' ? 'accepted' : 'invited', membership, invitedBy: sender, distributedEpoch: 0, invites: {}, senders: record.state === 'accepted' ? record.senders : {}, updatedAt: at }
    await this.init.messenger.events.commit(this.db.putGroup(updated), [{ type: 'group.invite', data: { groupId, name: doc.name, inviter: sender, version: doc.version } }], at)
    this.db.remember(updated)
    this.count('group.invites.received')
  }

  /** ACCEPT, DECLINE, LEAVE: to an admin. */
  private async onRequest (sender: string, groupId: string, type: ControlType): Promise<void> {
    const record = await this.db.group(groupId)
    if (record?.state !== 'joined') throw new OctetError('NOT_A_MEMBER', `a request about group ${groupId}, which we are not in`)
    const doc = this.db.doc(record)
    if (!doc.admins.includes(this.self)) {
      this.count('group.ignored.not-admin')
      return
    }
    const { [sender]: invite, ...otherInvites } = record.invites
    switch (type) {
      case ControlType.ACCEPT:
        if (doc.members.includes(sender)) break
        if (invite == null) throw new OctetError('NOT_A_MEMBER', `${sender} accepted an invite to group ${groupId} that it does not have`)
        await this.change(record, { members: [...doc.members, sender], admins: doc.admins })
        return
      case ControlType.DECLINE:
        break
      case ControlType.LEAVE:
        if (!doc.members.includes(sender)) return
        await this.change(record, withoutMember(doc, sender))
        return
      default:
        throw new OctetError('MALFORMED_FRAME', `group control type ${type} is not a request`)
    }
    if (invite != null) {
      const updated: GroupRecord = { ...record, invites: otherInvites, updatedAt: this.now() }
      await this.init.messenger.events.commit(this.db.putGroup(updated))
      this.db.remember(updated)
    }
  }

  /** A version seen without its chain must be signed by one of its admins and come from one. */
  private async checkFromAdmin (sender: string, doc: MembershipDoc, fromAuthor = true): Promise<void> {
    await validateStandalone(doc)
    if (!doc.admins.includes(sender) || (fromAuthor && doc.author !== sender)) {
      throw new OctetError('GROUP_FORGED', `membership: version ${doc.version} of group ${doc.groupId} came from ${sender}, not from one of its admins`)
    }
  }

  // ================================================================ membership changes (lock held)

  /** Signs the next version as an admin and applies it like any other; `finalState` when it removes us. */
  private async change (record: GroupRecord, next: { members: string[], admins: string[] }, finalState: 'removed' | 'left' = 'removed'): Promise<GroupRecord> {
    const prev = this.db.doc(record)
    const doc = await createChange(prev, next, { key: this.init.privateKey, author: this.self, now: this.now() })
    const diff = await validateChange(prev, doc)
    this.count('group.membership.changed')
    return await this.adopt(record, [{ doc, diff }], true, finalState)
  }

  /**
   * Takes new versions (already validated) as ours: records, events, and the
   * sender keys they call for. With `announce`, we made the change: it goes
   * to every member of the old and the new version.
   */
  private async adopt (record: GroupRecord, applied: Array<{ doc: MembershipDoc, diff: MembershipDiff }>, announce: boolean, finalState: 'removed' | 'left' = 'removed'): Promise<GroupRecord> {
    const groupId = record.id
    const before = this.db.doc(record)
    const final = (applied.at(-1) as { doc: MembershipDoc }).doc
    const memberSince = { ...record.memberSince }
    const invites = { ...record.invites }
    const ops: StoreOp[] = []
    const newEvents: NewEvent[] = []
    const added = new Set<string>()
    for (const { doc, diff } of applied) {
      ops.push(...this.db.putVersion(doc))
      for (const peer of diff.added) {
        memberSince[peer] = doc.version
        added.add(peer)
        delete invites[peer]
        newEvents.push({ type: 'group.member.added', data: { groupId, peerId: peer, version: doc.version } })
      }
      for (const peer of diff.removed) {
        delete memberSince[peer]
        added.delete(peer)
        newEvents.push({ type: 'group.member.removed', data: { groupId, peerId: peer, version: doc.version } })
      }
    }
    const updated: GroupRecord = { ...record, membership: GroupStore.encodeDoc(final), memberSince, invites, updatedAt: this.now() }
    const deliveries: PairwiseDelivery[] = []
    if (announce) {
      const chain = await this.chainTo(final)
      const body = encodeControl({ type: ControlType.MEMBERSHIP, groupId, chain })
      for (const peer of new Set([...before.members, ...final.members])) {
        if (peer !== this.self) deliveries.push({ peer, kind: 'group-control', body })
      }
    }
    const stillMember = final.members.includes(this.self)
    if (!stillMember) {
      updated.state = finalState
    } else if (final.keyEpoch !== updated.distributedEpoch) {
      // a member left: a new key for the new epoch, to those who remain
      deliveries.push(...await this.keyDeliveries(updated, final, others(final, this.self)))
      updated.distributedEpoch = final.keyEpoch
    } else {
      const newcomers = [...added].filter(p => p !== this.self && final.members.includes(p))
      if (newcomers.length > 0) deliveries.push(...await this.keyDeliveries(updated, final, newcomers))
    }
    ops.push(...this.db.putGroup(updated))
    await this.init.messenger.commitPairwise(ops, newEvents, deliveries)
    this.db.remember(updated)
    if (!stillMember) {
      this.unsubscribe(groupId)
      this.log.info({ groupId, version: final.version, state: finalState }, 'no longer a member of a group')
    }
    return updated
  }

  /** We were added (seen by a joiner): subscribe and send our sender key to every member. */
  private async join (record: GroupRecord, doc: MembershipDoc): Promise<void> {
    const groupId = record.id
    const updated: GroupRecord = {
      ...record,
      state: 'joined',
      membership: GroupStore.encodeDoc(doc),
      memberSince: Object.fromEntries(doc.members.map(m => [m, doc.version])),
      invites: {},
      updatedAt: this.now()
    }
    const deliveries = await this.keyDeliveries(updated, doc, others(doc, this.self))
    updated.distributedEpoch = doc.keyEpoch
    await this.init.messenger.commitPairwise([...this.db.putGroup(updated), ...this.db.putVersion(doc)],
      [{ type: 'group.joined', data: { groupId, name: doc.name, version: doc.version } }], deliveries)
    this.db.remember(updated)
    this.subscribe(groupId)
    this.count('group.joined')
    // what was published between the change and our subscription
    this.scheduleCatchUp(groupId, [], GAP_CATCH_UP_DELAY)
  }

  /** Our sender key for the doc's epoch (made now if new), as SENDER_KEY envelopes to `peers`. */
  private async keyDeliveries (record: GroupRecord, doc: MembershipDoc, peers: string[]): Promise<PairwiseDelivery[]> {
    const distribution = await this.init.crypto.createSenderKeyDistribution(senderKeyName(record.id, doc.keyEpoch))
    if (peers.length === 0) return []
    const body = encodeSenderKey({ groupId: record.id, epoch: doc.keyEpoch, distribution, nextSeq: record.nextSeq })
    this.count('group.sender-keys.sent', peers.length)
    return peers.map(peer => ({ peer, kind: 'sender-key' as const, body }))
  }

  /** The last few versions ending with `doc`, consecutive, oldest first. */
  private async chainTo (doc: MembershipDoc): Promise<MembershipDoc[]> {
    const earlier = await this.db.versionRange(doc.groupId, doc.version - MEMBERSHIP_CHAIN_LENGTH + 1, doc.version - 1)
    const chain = [...earlier.filter(d => d.version < doc.version), doc]
    // only a consecutive tail is a chain
    let start = chain.length - 1
    while (start > 0 && (chain[start - 1] as MembershipDoc).version === (chain[start] as MembershipDoc).version - 1) start--
    return chain.slice(start)
  }

  private async declineLocked (record: GroupRecord, state: 'declined' | 'left'): Promise<GroupView> {
    const updated: GroupRecord = { ...record, state, updatedAt: this.now() }
    const deliveries: PairwiseDelivery[] = record.invitedBy == null
      ? []
      : [{ peer: record.invitedBy, kind: 'group-control', body: encodeControl({ type: ControlType.DECLINE, groupId: record.id, chain: [] }) }]
    await this.init.messenger.commitPairwise(this.db.putGroup(updated), [], deliveries)
    this.db.remember(updated)
    return this.view(updated)
  }

  // ================================================================ group messages

  private subscribe (groupId: string): void {
    const topic = groupTopic(groupId)
    if (this.init.pubsub.isSubscribed(topic)) return
    this.init.pubsub.subscribe(topic, async message => await this.onGossip(groupId, message))
  }

  private unsubscribe (groupId: string): void {
    this.init.pubsub.unsubscribe(groupTopic(groupId))
    this.pending.delete(groupId)
  }

  /** Gossipsub validation of one message on a group's topic: its verdict decides forwarding and score. */
  private async onGossip (groupId: string, pubsubMessage: PubsubMessage): Promise<Verdict> {
    let message: GroupMessage
    try {
      message = decodeGroupMessage(pubsubMessage.data)
    } catch (err) {
      return this.refuseGossip(isOctetError(err) ? err.code : 'MALFORMED_FRAME', groupId, pubsubMessage, err)
    }
    if (message.groupId !== groupId) return this.refuseGossip('MALFORMED_FRAME', groupId, pubsubMessage, 'a message of another group on this topic')
    // the verdict goes back to gossipsub as soon as the message proved good (it decrypted),
    // so forwarding to the mesh does not wait for our own disk write; a later failure to
    // store it is ours, not the message's
    return await new Promise<Verdict>(resolve => {
      this.lock.run(groupId, async () => await this.ingest(groupId, message, pubsubMessage.data, pubsubMessage.propagationSource, () => { resolve('accept') }))
        .then(result => {
          if (typeof result === 'object') {
            resolve(this.refuseGossip(result.code, groupId, pubsubMessage, result.err))
            return
          }
          this.count(`group.received.${result}`)
          // stored: proven, and accepted already (onProven); anything else proved nothing
          resolve(result === 'stored' ? 'accept' : 'ignore')
        }, (err: unknown) => {
          this.count('group.received.store-failed')
          this.log.warn({ groupId, err: errorMessage(err) }, 'could not take a group message')
          resolve('ignore')
        })
    })
  }

  private refuseGossip (code: string, groupId: string, message: PubsubMessage, err: unknown): Verdict {
    const via = message.propagationSource.toString()
    this.refuse({ counter: `group.rejected.${code}`, peer: via, fields: { groupId, via, code, err: typeof err === 'string' ? err : errorMessage(err) }, message: 'rejected a group message' })
    return 'reject'
  }

  /**
   * Checks, decrypts, dedups and stores one group message (from gossip, from
   * catch-up, or held for its key). Call with the group's lock held.
   */
  private async ingest (groupId: string, message: GroupMessage, bytes: Uint8Array, source?: string, onProven?: () => void): Promise<IngestResult> {
    const { crypto, messenger } = this.init
    const record = await this.db.group(groupId)
    if (record?.state !== 'joined') return 'ignored'
    // ours, passed back to us
    if (message.sender === this.self) return 'duplicate'
    const doc = this.db.doc(record)
    if (!doc.members.includes(message.sender)) return { code: 'NOT_A_MEMBER', err: `${message.sender} is not a member of version ${doc.version}` }
    const track = record.senders[message.sender]
    // below the sender's key as we got it (not meant for us), or already here
    if (isKnown(track, message.seq)) return 'duplicate'
    // the track knows every stored seq of a sender unless its list of early ones overflowed,
    // or this is the sender's first message here: only then ask the database
    if ((track == null || track.ahead.length >= MAX_TRACKED_AHEAD) && await this.db.hasMessage(groupId, message.sender, message.seq)) return 'duplicate'
    let plaintextBytes: Uint8Array
    try {
      plaintextBytes = await crypto.groupDecrypt(message.sender, senderKeyName(groupId, message.epoch), message.ciphertext)
    } catch (err) {
      if (isOctetError(err, 'NO_SESSION')) {
        this.hold(groupId, { message, bytes, source })
        return 'pending'
      }
      if (isOctetError(err, 'REPLAYED_MESSAGE')) return 'duplicate'
      return { code: isOctetError(err) ? err.code : 'DECRYPT_FAILED', err }
    }
    let plaintext
    try {
      plaintext = decodeGroupPlaintext(plaintextBytes)
    } catch (err) {
      return { code: 'MALFORMED_FRAME', err }
    }
    // The seq and time that count are the sealed ones (the sender key's signature covers the
    // ciphertext); the outer ones only let a node dedup before decrypting. A copy whose outer
    // ones differ was altered on the way, yet its content is the sender's and its message key
    // is now spent here (the unaltered copy would only decrypt as a replay): it is kept under
    // the sealed values, and the copy is refused, which costs whoever passed it on.
    const { seq, sentAt } = plaintext
    const altered = seq !== message.seq || sentAt !== message.sentAt
    if (altered && isKnown(track, seq)) return { code: 'MALFORMED_FRAME', err: 'the outer seq or time was altered on the way' }
    if (!altered) onProven?.()
    // what catch-up serves is the message as its sender published it
    const published = altered ? encodeGroupMessage({ ...message, seq, sentAt }) : bytes
    const at = this.now()
    const stored: GroupMessageRecord = {
      groupId, id: `${message.sender}:${seq}`, direction: 'in', sender: message.sender, seq, text: plaintext.text, sentAt, receivedAt: at, epoch: message.epoch
    }
    const updated: GroupRecord = { ...record }
    const ops = this.db.putLog(updated, message.sender, seq, published, doc.version)
    const newEvents: NewEvent[] = []
    const position = advance(track ?? { contiguous: seq - 1, ahead: [] }, seq)
    if (!position.inOrder) {
      // an earlier one of this sender is missing: keep this one (on disk, decrypted: its key is
      // used up) until the gap fills, so that the sender's messages come out in its order
      ops.push(this.db.putEarly(stored))
      this.count('group.received.early')
    } else {
      ops.push(...this.db.putMessage(stored))
      newEvents.push(messageEvent(stored))
      for (const next of position.following) {
        const early = await this.db.earlyMessage(groupId, message.sender, next)
        if (early == null) continue
        ops.push(this.db.delEarly(early), ...this.db.putMessage(early))
        newEvents.push(messageEvent(early))
      }
    }
    updated.senders = { ...record.senders, [message.sender]: position.track }
    // the sender key step that decrypted it lands with it
    ops.push(this.db.putProgress(updated), ...crypto.takePendingWrites())
    await messenger.events.commit(ops, newEvents, at)
    this.db.remember(updated)
    // a new gap: ask for what is missing (once per early message, not for every message while a gap stays open)
    if (!position.inOrder) this.scheduleCatchUp(groupId, [source, message.sender].filter((p): p is string => p != null), GAP_CATCH_UP_DELAY)
    if (altered) return { code: 'MALFORMED_FRAME', err: 'the outer seq or time was altered on the way; kept under the sealed ones' }
    return 'stored'
  }

  /**
   * Gives up waiting for the gaps before early messages: stores them (per
   * sender in seq order) with their events. The gaps stay visible in the
   * sender positions, and what fills them later is still taken.
   */
  private async releaseEarly (groupId: string): Promise<number> {
    return await this.lock.run(groupId, async () => {
      const early = await this.db.earlyMessages(groupId)
      if (early.length === 0) return 0
      const ops: StoreOp[] = []
      const newEvents: NewEvent[] = []
      for (const message of early) {
        ops.push(this.db.delEarly(message), ...this.db.putMessage(message))
        newEvents.push(messageEvent(message))
      }
      await this.init.messenger.events.commit(ops, newEvents)
      this.count('group.released-with-gap', early.length)
      this.log.info({ groupId, messages: early.length }, 'gave up waiting for missing group messages; stored the later ones')
      return early.length
    })
  }

  /** A message whose sender key we do not have yet waits (in memory, bounded) for it. */
  private hold (groupId: string, entry: PendingMessage): void {
    const list = this.pending.get(groupId) ?? []
    if (list.some(p => p.message.sender === entry.message.sender && p.message.seq === entry.message.seq)) return
    list.push(entry)
    if (list.length > MAX_PENDING_PER_GROUP) {
      list.shift()
      this.count('group.pending.dropped')
    }
    this.pending.set(groupId, list)
  }

  /** The sender's key came: what it sent meanwhile, in seq order. Lock held. */
  private async retryPending (groupId: string, sender: string): Promise<void> {
    const list = this.pending.get(groupId)
    if (list == null) return
    const waiting = list.filter(p => p.message.sender === sender).sort((a, b) => a.message.seq - b.message.seq)
    if (waiting.length === 0) return
    this.pending.set(groupId, list.filter(p => p.message.sender !== sender))
    for (const { message, bytes, source } of waiting) {
      const result = await this.ingest(groupId, message, bytes, source)
      if (typeof result === 'object') this.refuseHeld(result.code, groupId, message, result.err)
      else this.count(`group.pending.${result}`)
    }
  }

  private refuseHeld (code: string, groupId: string, message: GroupMessage, err: unknown): void {
    this.refuse({ counter: `group.rejected.${code}`, peer: message.sender, fields: { groupId, sender: message.sender, seq: message.seq, code, err: typeof err === 'string' ? err : errorMessage(err) }, message: 'refused a group message' })
  }

  // ================================================================ catch-up

  private catchUpOnStart (groupId: string, attempt: number): void {
    const delay = attempt === 0 ? START_CATCH_UP_DELAY : CATCH_UP_RETRY_DELAYS[attempt - 1]
    if (delay == null || !this.running) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.track(this.catchUp(groupId).then(report => {
        if (report.asked === 0) this.catchUpOnStart(groupId, attempt + 1)
      }))
    }, delay)
    timer.unref()
    this.timers.add(timer)
  }

  /** Nobody answered a catch-up: early messages wait at most EARLY_HOLD_MAX for another try. */
  private scheduleRelease (groupId: string): void {
    if (!this.running || this.releaseTimers.has(groupId)) return
    const timer = setTimeout(() => {
      this.releaseTimers.delete(groupId)
      this.track(this.releaseEarly(groupId))
    }, EARLY_HOLD_MAX)
    timer.unref()
    this.releaseTimers.set(groupId, timer)
  }

  private scheduleCatchUp (groupId: string, prefer: string[], delay: number): void {
    if (!this.running) return
    const existing = this.gapTimers.get(groupId)
    if (existing != null) {
      for (const peer of prefer) existing.prefer.add(peer)
      return
    }
    const entry = { prefer: new Set(prefer), timer: setTimeout(() => {
      this.gapTimers.delete(groupId)
      this.track(this.catchUp(groupId, [...entry.prefer]))
    }, delay) }
    entry.timer.unref()
    this.gapTimers.set(groupId, entry)
  }

  private async historyRequest (groupId: string): Promise<HistoryRequest> {
    const record = await this.requireGroup(groupId)
    const known = new Map<string, number>(Object.entries(record.senders).map(([sender, track]) => [sender, track.contiguous]))
    known.set(this.self, record.nextSeq - 1)
    return { groupId, known, limit: MAX_HISTORY_MESSAGES }
  }

  private async askHistory (peer: string, request: HistoryRequest): Promise<Uint8Array[]> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(HISTORY_DIAL_TIMEOUT)])
    let stream: Stream
    try {
      stream = await dialProtocolFindingPeer(this.init.libp2p, parsePeerId(peer), HISTORY_PROTOCOL, signal)
    } catch (err) {
      throw new OctetError('PEER_UNREACHABLE', `cannot reach ${peer}: ${errorMessage(err)}`, { cause: err })
    }
    return await callHistory(stream, request, undefined, this.controller.signal)
  }

  /** Messages a member sent us: checked and stored like gossip, per sender in seq order. */
  private async ingestHistory (groupId: string, encoded: Uint8Array[], peer: string): Promise<number> {
    const messages: Array<{ message: GroupMessage, bytes: Uint8Array }> = []
    for (const bytes of encoded) {
      try {
        const message = decodeGroupMessage(bytes)
        if (message.groupId !== groupId) throw new OctetError('MALFORMED_FRAME', 'a message of another group')
        messages.push({ message, bytes })
      } catch (err) {
        this.count(`group.history.rejected.${isOctetError(err) ? err.code : 'MALFORMED_FRAME'}`)
      }
    }
    messages.sort((a, b) => a.message.sender.localeCompare(b.message.sender) || a.message.seq - b.message.seq)
    let stored = 0
    await this.lock.run(groupId, async () => {
      for (const { message, bytes } of messages) {
        const result = await this.ingest(groupId, message, bytes, peer)
        if (result === 'stored') stored++
        if (typeof result === 'object') {
          // a member can withhold, not forge: a bad one here is worth knowing about
          this.refuse({ counter: `group.history.rejected.${result.code}`, peer, fields: { groupId, peer, sender: message.sender, seq: message.seq, code: result.code }, message: 'refused a message from catch-up' })
        }
      }
    })
    this.count('group.history.stored', stored)
    return stored
  }

  private onHistoryStream (stream: Stream, connection: Connection): void {
    const remote = connection.remotePeer.toString()
    this.inbound.add(stream)
    const backend: HistoryBackend = {
      admit: peer => this.limiter.tryTake(peer),
      select: async (peer, request) => await this.selectHistory(peer, request)
    }
    this.track(serveHistory(stream, remote, backend)
      .then(outcome => {
        if (outcome.status === HistoryStatus.HISTORY_OK) {
          this.count('group.history.served.HISTORY_OK')
          this.count('group.history.served-messages', outcome.sent)
        } else if (outcome.status !== HistoryStatus.HISTORY_NOT_A_MEMBER) {
          // (a non-member was counted and logged where it was found out)
          const code = String(outcome.status).replace(/^HISTORY_/, '')
          this.refuse({ counter: `group.history.refused.${code}`, level: 'debug', peer: remote, fields: { peer: remote, code }, message: 'refused a group history request' })
        }
      }, (err: unknown) => {
        this.refuse({ counter: `group.history.bad-request.${isOctetError(err) ? err.code : 'STREAM_ERROR'}`, level: 'debug', peer: remote, fields: { peer: remote, err: errorMessage(err) }, message: 'closed a bad group history stream' })
      })
      .finally(() => { this.inbound.delete(stream) }))
  }

  /** What a member may have: kept messages since it became a member that it does not hold. */
  private async selectHistory (peer: string, request: HistoryRequest): ReturnType<HistoryBackend['select']> {
    const record = await this.db.group(request.groupId)
    if (record?.state !== 'joined') return { status: HistoryStatus.HISTORY_UNKNOWN_GROUP, reason: 'not a member of this group', messages: [] }
    const doc = this.db.doc(record)
    if (!doc.members.includes(peer)) {
      this.refuse({ counter: 'group.history.refused.NOT_A_MEMBER', level: 'info', peer, fields: { groupId: request.groupId, peer }, message: 'refused group history to a non-member' })
      return { status: HistoryStatus.HISTORY_NOT_A_MEMBER, reason: 'you are not in the member list', messages: [] }
    }
    const since = record.memberSince[peer] ?? doc.version
    const entries = []
    for await (const entry of this.db.logEntries(request.groupId)) {
      if (entry.version < since || entry.sender === peer) continue
      if (entry.seq <= (request.known.get(entry.sender) ?? 0)) continue
      entries.push(entry)
    }
    entries.sort((a, b) => a.sender.localeCompare(b.sender) || a.seq - b.seq)
    return { status: HistoryStatus.HISTORY_OK, messages: await this.db.loggedBytes(entries.slice(0, request.limit)) }
  }

  // ================================================================ helpers

  private async requireGroup (groupId: string): Promise<GroupRecord> {
    const record = isGroupId(groupId) ? await this.db.group(groupId) : undefined
    if (record == null) throw new OctetError('NOT_FOUND', `no group ${groupId}`)
    return record
  }

  private requireAdmin (record: GroupRecord): MembershipDoc {
    if (record.state !== 'joined') throw new OctetError('CONFLICT', `not a member of group ${record.id} (state ${record.state})`)
    const doc = this.db.doc(record)
    if (!doc.admins.includes(this.self)) throw new OctetError('CONFLICT', `only an admin of group ${record.id} can do this; its admins are ${doc.admins.join(', ')}`)
    return doc
  }

  private view (record: GroupRecord): GroupView {
    const doc = this.db.doc(record)
    return {
      id: record.id,
      name: doc.name,
      state: record.state,
      version: doc.version,
      keyEpoch: doc.keyEpoch,
      members: [...doc.members],
      admins: [...doc.admins],
      isAdmin: record.state === 'joined' && doc.admins.includes(this.self),
      invites: Object.keys(record.invites),
      ...(record.invitedBy != null ? { invitedBy: record.invitedBy } : {}),
      topic: groupTopic(record.id),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt
    }
  }

  private count (name: string, by = 1): void {
    this.init.messenger.counters.increment(name, by)
  }

  /** Counts and logs a refusal of a peer's input (see Refusals: a flood is a few lines with counts). */
  private refuse (refusal: Refusal): void {
    this.init.messenger.refusals.refuse(refusal)
  }

  /** Work that stop() waits for. */
  private track (task: Promise<unknown>): void {
    const tracked = task.catch((err: unknown) => { this.log.debug({ err: errorMessage(err) }, 'group background task failed') })
      .finally(() => { this.background.delete(tracked) })
    this.background.add(tracked)
  }
}

/**
 * The sender's position once `seq` (above `track.contiguous`) arrived.
 * inOrder: it is the next one, and `following` are the seqs that were ahead
 * and now join the contiguous prefix behind it; otherwise it is early and
 * joins `ahead` (of which at most MAX_TRACKED_AHEAD are remembered).
 */
export function advance (track: SenderTrack, seq: number): { track: SenderTrack, inOrder: boolean, following: number[] } {
  if (seq <= track.contiguous) return { track, inOrder: false, following: [] }
  const ahead = new Set(track.ahead)
  if (seq > track.contiguous + 1) {
    ahead.add(seq)
    const sorted = [...ahead].sort((a, b) => a - b)
    return { track: { contiguous: track.contiguous, ahead: sorted.slice(-MAX_TRACKED_AHEAD) }, inOrder: false, following: [] }
  }
  let contiguous = seq
  ahead.delete(seq)
  const following: number[] = []
  while (ahead.delete(contiguous + 1)) {
    contiguous++
    following.push(contiguous)
  }
  return { track: { contiguous, ahead: [...ahead].sort((a, b) => a - b) }, inOrder: true, following }
}

function messageEvent (message: GroupMessageRecord): NewEvent {
  return { type: 'group.message', data: { groupId: message.groupId, message } }
}

/** The members but us. */
function others (doc: MembershipDoc, self: string): string[] {
  return doc.members.filter(m => m !== self)
}

/** The members and admins without `peer`; the longest-standing member becomes admin when none would be left. */
function withoutMember (doc: MembershipDoc, peer: string): { members: string[], admins: string[] } {
  const members = doc.members.filter(m => m !== peer)
  let admins = doc.admins.filter(a => a !== peer)
  if (admins.length === 0 && members.length > 0) admins = [members[0] as string]
  return { members, admins }
}

function checkName (name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : ''
  if (trimmed.length === 0) throw new OctetError('BAD_REQUEST', 'a group needs a name')
  if (trimmed.length > MAX_GROUP_NAME_LENGTH) throw new OctetError('BAD_REQUEST', `a group name has at most ${MAX_GROUP_NAME_LENGTH} characters`)
  return trimmed
}

function checkPeer (text: string): string {
  if (!isEd25519PeerId(text)) {
    // parsePeerId gives the usual INVALID_PEER_ID for text that is no PeerId at all
    const canonical = parsePeerId(text).toString()
    if (!isEd25519PeerId(canonical)) throw new OctetError('INVALID_PEER_ID', `${text} is not an Ed25519 PeerId (octet nodes have one)`)
    return canonical
  }
  return text
}

function shuffle<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}

/** Whether the track says `seq` of its sender is here already (or was never meant for us). */
function isKnown (track: SenderTrack | undefined, seq: number): boolean {
  return track != null && (seq <= track.contiguous || track.ahead.includes(seq))
}
