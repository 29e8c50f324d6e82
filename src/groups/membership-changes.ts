/**
 * Membership changes: what the API asks (create, invite, accept, decline,
 * leave, remove a member), and how any change becomes ours — adopt(): the
 * new signed versions (checked by membership.ts), their events, the
 * announcement to every member of the old and the new version, and the
 * sender keys the change calls for (keys.ts). Joining and leaving also
 * follow or leave the group's topic (ingest.ts). The changes other peers
 * send us arrive through pairwise.ts, which applies them with change(),
 * adopt() and join(). The flow of an invite is described in index.ts.
 */
import { randomBytes } from 'node:crypto'
import { OctetError } from '../errors.js'
import type { NewEvent, PairwiseDelivery } from '../messaging/index.js'
import { parsePeerId } from '../node/index.js'
import type { StoreOp } from '../store/database.js'
import { ControlType, encodeControl } from './codec.js'
import { MAX_GROUP_NAME_LENGTH, MAX_MEMBERS, MEMBERSHIP_CHAIN_LENGTH } from './constants.js'
import { others, senderKeyName, type GroupContext, type GroupView } from './context.js'
import type { SenderKeys } from './keys.js'
import {
  createChange,
  createGenesis,
  isEd25519PeerId,
  validateChange,
  type MembershipDiff,
  type MembershipDoc
} from './membership.js'
import { GroupStore, type GroupRecord } from './store.js'

/** What membership changes need of the other parts. */
export interface MembershipChangesDeps {
  keys: Pick<SenderKeys, 'deliveries'>
  /** the group's topic: followed once we are a member, left when we are not */
  topics: { follow: (groupId: string) => void, unfollow: (groupId: string) => void }
  /** a catch-up soon: what was published before we subscribed */
  catchUp: { soon: (groupId: string, prefer: string[]) => void }
}

export class MembershipChanges {
  constructor (private readonly ctx: GroupContext, private readonly deps: MembershipChangesDeps) {}

  async create (name: string): Promise<GroupView> {
    const { ctx } = this
    const trimmed = checkName(name)
    const groupId = randomBytes(16).toString('hex')
    const at = ctx.now()
    const doc = await createGenesis({ groupId, name: trimmed, key: ctx.privateKey, author: ctx.self, now: at })
    // our first sender key; nobody else to send it to yet
    await ctx.crypto.createSenderKeyDistribution(senderKeyName(groupId, doc.keyEpoch))
    const record: GroupRecord = {
      id: groupId,
      state: 'joined',
      membership: GroupStore.encodeDoc(doc),
      nextSeq: 1,
      lastSentAt: 0,
      distributedEpoch: doc.keyEpoch,
      memberSince: { [ctx.self]: 1 },
      senders: {},
      invites: {},
      logCounter: 0,
      createdAt: at,
      updatedAt: at
    }
    await ctx.lock.run(groupId, async () => {
      await ctx.messenger.events.commit([...ctx.db.putGroup(record), ...ctx.db.putVersion(doc)], [{ type: 'group.joined', data: { groupId, name: trimmed, version: 1 } }], at)
      ctx.db.remember(record)
      this.deps.topics.follow(groupId)
    })
    ctx.count('group.created')
    return ctx.view(record)
  }

  /** As an admin: invite `peer`; it gets the current version and may accept. */
  async invite (groupId: string, peerText: string): Promise<GroupView> {
    const { ctx } = this
    const peer = checkPeer(peerText)
    if (peer === ctx.self) throw new OctetError('BAD_REQUEST', 'you cannot invite yourself')
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      const doc = ctx.requireAdmin(record)
      if (doc.members.includes(peer)) throw new OctetError('CONFLICT', `${peer} is already a member`)
      if (doc.members.length + Object.keys(record.invites).length >= MAX_MEMBERS) throw new OctetError('CONFLICT', `a group has at most ${MAX_MEMBERS} members`)
      const at = ctx.now()
      const updated: GroupRecord = { ...record, invites: { ...record.invites, [peer]: { at } }, updatedAt: at }
      await ctx.messenger.commitPairwise(ctx.db.putGroup(updated), [], [
        { peer, kind: 'group-control', body: encodeControl({ type: ControlType.INVITE, groupId, chain: [doc] }) }
      ])
      ctx.db.remember(updated)
      ctx.count('group.invites.sent')
      return ctx.view(updated)
    })
  }

  /** As an invitee: accept; the inviting admin then adds us with a signed change. */
  async accept (groupId: string): Promise<GroupView> {
    const { ctx } = this
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      if (record.state === 'accepted' || record.state === 'joined') return ctx.view(record)
      if (record.state !== 'invited' || record.invitedBy == null) throw new OctetError('CONFLICT', `there is no invite to group ${groupId} waiting (state ${record.state})`)
      const updated: GroupRecord = { ...record, state: 'accepted', updatedAt: ctx.now() }
      await ctx.messenger.commitPairwise(ctx.db.putGroup(updated), [], [
        { peer: record.invitedBy, kind: 'group-control', body: encodeControl({ type: ControlType.ACCEPT, groupId, chain: [] }) }
      ])
      ctx.db.remember(updated)
      return ctx.view(updated)
    })
  }

  async decline (groupId: string): Promise<GroupView> {
    const { ctx } = this
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      if (record.state !== 'invited' || record.invitedBy == null) throw new OctetError('CONFLICT', `there is no invite to group ${groupId} waiting (state ${record.state})`)
      return await this.declineLocked(record, 'declined')
    })
  }

  /** Leaves a group (or withdraws an accepted invite). An admin signs its own removal; others ask the admins. */
  async leave (groupId: string): Promise<GroupView> {
    const { ctx } = this
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      if (record.state === 'invited' || record.state === 'accepted') return await this.declineLocked(record, 'left')
      const doc = ctx.requireMember(record)
      if (doc.admins.includes(ctx.self)) {
        const updated = await this.change(record, withoutMember(doc, ctx.self), 'left')
        return ctx.view(updated)
      }
      const at = ctx.now()
      const updated: GroupRecord = { ...record, state: 'left', updatedAt: at }
      const body = encodeControl({ type: ControlType.LEAVE, groupId, chain: [] })
      await ctx.messenger.commitPairwise(ctx.db.putGroup(updated), [], doc.admins.map(peer => ({ peer, kind: 'group-control' as const, body })))
      ctx.db.remember(updated)
      this.deps.topics.unfollow(groupId)
      return ctx.view(updated)
    })
  }

  /** As an admin: remove a member; the remaining members move to new sender keys. */
  async removeMember (groupId: string, peerText: string): Promise<GroupView> {
    const { ctx } = this
    const peer = checkPeer(peerText)
    if (peer === ctx.self) return await this.leave(groupId)
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      const doc = ctx.requireAdmin(record)
      if (!doc.members.includes(peer)) {
        if (record.invites[peer] == null) throw new OctetError('NOT_FOUND', `${peer} is not a member of group ${groupId}`)
        // an invite not answered yet: withdraw it (an ACCEPT that comes later finds none)
        const { [peer]: _withdrawn, ...invites } = record.invites
        const updated: GroupRecord = { ...record, invites, updatedAt: ctx.now() }
        await ctx.messenger.events.commit(ctx.db.putGroup(updated))
        ctx.db.remember(updated)
        return ctx.view(updated)
      }
      return ctx.view(await this.change(record, withoutMember(doc, peer)))
    })
  }

  // ================================================================ applying a change (lock held; also for pairwise.ts)

  /** Signs the next version as an admin and applies it like any other; `finalState` when it removes us. */
  async change (record: GroupRecord, next: { members: string[], admins: string[] }, finalState: 'removed' | 'left' = 'removed'): Promise<GroupRecord> {
    const { ctx } = this
    const prev = ctx.db.doc(record)
    const doc = await createChange(prev, next, { key: ctx.privateKey, author: ctx.self, now: ctx.now() })
    const diff = await validateChange(prev, doc)
    ctx.count('group.membership.changed')
    return await this.adopt(record, [{ doc, diff }], true, finalState)
  }

  /**
   * Takes new versions (already validated) as ours: records, events, and the
   * sender keys they call for. With `announce`, we made the change: it goes
   * to every member of the old and the new version.
   */
  async adopt (record: GroupRecord, applied: Array<{ doc: MembershipDoc, diff: MembershipDiff }>, announce: boolean, finalState: 'removed' | 'left' = 'removed'): Promise<GroupRecord> {
    const { ctx } = this
    const { keys } = this.deps
    const groupId = record.id
    const before = ctx.db.doc(record)
    const final = (applied.at(-1) as { doc: MembershipDoc }).doc
    const memberSince = { ...record.memberSince }
    const invites = { ...record.invites }
    const ops: StoreOp[] = []
    const newEvents: NewEvent[] = []
    const added = new Set<string>()
    for (const { doc, diff } of applied) {
      ops.push(...ctx.db.putVersion(doc))
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
    const updated: GroupRecord = { ...record, membership: GroupStore.encodeDoc(final), memberSince, invites, updatedAt: ctx.now() }
    const deliveries: PairwiseDelivery[] = []
    if (announce) {
      const chain = await this.chainTo(final)
      const body = encodeControl({ type: ControlType.MEMBERSHIP, groupId, chain })
      for (const peer of new Set([...before.members, ...final.members])) {
        if (peer !== ctx.self) deliveries.push({ peer, kind: 'group-control', body })
      }
    }
    const stillMember = final.members.includes(ctx.self)
    if (!stillMember) {
      updated.state = finalState
    } else if (final.keyEpoch !== updated.distributedEpoch) {
      // a member left: a new key for the new epoch, to those who remain
      deliveries.push(...await keys.deliveries(updated, final, others(final, ctx.self)))
      updated.distributedEpoch = final.keyEpoch
    } else {
      const newcomers = [...added].filter(p => p !== ctx.self && final.members.includes(p))
      if (newcomers.length > 0) deliveries.push(...await keys.deliveries(updated, final, newcomers))
    }
    ops.push(...ctx.db.putGroup(updated))
    await ctx.messenger.commitPairwise(ops, newEvents, deliveries)
    ctx.db.remember(updated)
    if (!stillMember) {
      this.deps.topics.unfollow(groupId)
      ctx.log.info({ groupId, version: final.version, state: finalState }, 'no longer a member of a group')
    }
    return updated
  }

  /** We were added (seen by a joiner): subscribe and send our sender key to every member. */
  async join (record: GroupRecord, doc: MembershipDoc): Promise<void> {
    const { ctx } = this
    const groupId = record.id
    const updated: GroupRecord = {
      ...record,
      state: 'joined',
      membership: GroupStore.encodeDoc(doc),
      memberSince: Object.fromEntries(doc.members.map(m => [m, doc.version])),
      invites: {},
      updatedAt: ctx.now()
    }
    const deliveries = await this.deps.keys.deliveries(updated, doc, others(doc, ctx.self))
    updated.distributedEpoch = doc.keyEpoch
    await ctx.messenger.commitPairwise([...ctx.db.putGroup(updated), ...ctx.db.putVersion(doc)],
      [{ type: 'group.joined', data: { groupId, name: doc.name, version: doc.version } }], deliveries)
    ctx.db.remember(updated)
    this.deps.topics.follow(groupId)
    ctx.count('group.joined')
    // what was published between the change and our subscription
    this.deps.catchUp.soon(groupId, [])
  }

  /** The last few versions ending with `doc`, consecutive, oldest first. */
  private async chainTo (doc: MembershipDoc): Promise<MembershipDoc[]> {
    const earlier = await this.ctx.db.versionRange(doc.groupId, doc.version - MEMBERSHIP_CHAIN_LENGTH + 1, doc.version - 1)
    const chain = [...earlier.filter(d => d.version < doc.version), doc]
    // only a consecutive tail is a chain
    let start = chain.length - 1
    while (start > 0 && (chain[start - 1] as MembershipDoc).version === (chain[start] as MembershipDoc).version - 1) start--
    return chain.slice(start)
  }

  private async declineLocked (record: GroupRecord, state: 'declined' | 'left'): Promise<GroupView> {
    const { ctx } = this
    const updated: GroupRecord = { ...record, state, updatedAt: ctx.now() }
    const deliveries: PairwiseDelivery[] = record.invitedBy == null
      ? []
      : [{ peer: record.invitedBy, kind: 'group-control', body: encodeControl({ type: ControlType.DECLINE, groupId: record.id, chain: [] }) }]
    await ctx.messenger.commitPairwise(ctx.db.putGroup(updated), [], deliveries)
    ctx.db.remember(updated)
    return ctx.view(updated)
  }
}

/** The members and admins without `peer`; the longest-standing member becomes admin when none would be left. */
export function withoutMember (doc: MembershipDoc, peer: string): { members: string[], admins: string[] } {
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
