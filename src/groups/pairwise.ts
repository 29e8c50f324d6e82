/**
 * Pairwise input: the GROUP_CONTROL and SENDER_KEY envelopes the messenger
 * hands us once their Signal session proved the sender (see
 * GroupEnvelopeHandler in src/messaging/receiver.ts). Sender keys go to
 * keys.ts; control messages are checked here — a MEMBERSHIP chain link by
 * link, an INVITE or a version alone as coming from one of its admins,
 * ACCEPT / DECLINE / LEAVE as requests to us as an admin — and applied
 * through membership-changes.ts. A throw refuses the envelope (counted and
 * logged here with its code).
 */
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import type { PairwiseKind } from '../messaging/index.js'
import { ControlType, decodeControl, decodeSenderKey } from './codec.js'
import type { GroupContext } from './context.js'
import type { SenderKeys } from './keys.js'
import { applyChain, validateStandalone, type MembershipDoc } from './membership.js'
import { withoutMember, type MembershipChanges } from './membership-changes.js'
import { GroupStore, type GroupRecord } from './store.js'

export class PairwiseInput {
  constructor (
    private readonly ctx: GroupContext,
    private readonly keys: Pick<SenderKeys, 'onSenderKey'>,
    private readonly changes: Pick<MembershipChanges, 'change' | 'adopt' | 'join'>
  ) {}

  /** One envelope's plaintext from `sender`; throws (after counting it) to refuse it. */
  async onEnvelope (sender: string, kind: PairwiseKind, plaintext: Uint8Array): Promise<void> {
    try {
      if (kind === 'sender-key') await this.keys.onSenderKey(sender, decodeSenderKey(plaintext))
      else await this.onControl(sender, plaintext)
    } catch (err) {
      const code = isOctetError(err) ? err.code : 'INTERNAL'
      this.ctx.refuse({ counter: `group.rejected.${code}`, peer: sender, fields: { peer: sender, kind, code, err: errorMessage(err) }, message: 'refused a group envelope' })
      throw err
    }
  }

  private async onControl (sender: string, plaintext: Uint8Array): Promise<void> {
    const control = decodeControl(plaintext)
    const groupId = control.groupId
    await this.ctx.lock.run(groupId, async () => {
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
    const { ctx } = this
    const record = await ctx.db.group(groupId)
    if (record == null) throw new OctetError('NOT_A_MEMBER', `a membership change of group ${groupId}, which we are not in`)
    const newest = chain.at(-1) as MembershipDoc
    if (record.state === 'joined') {
      const applied = await applyChain(ctx.db.doc(record), chain)
      if (applied.length === 0) {
        ctx.count('group.membership.duplicate')
        return
      }
      await this.changes.adopt(record, applied, false)
      return
    }
    if (record.state === 'invited' || record.state === 'accepted') {
      await checkFromAdmin(sender, newest)
      const current = ctx.db.doc(record)
      if (newest.version < current.version) throw new OctetError('GROUP_STALE', `membership: version ${newest.version} is older than version ${current.version}`)
      if (newest.members.includes(ctx.self) && record.state === 'accepted') {
        await this.changes.join(record, newest)
        return
      }
      const updated: GroupRecord = { ...record, membership: GroupStore.encodeDoc(newest), updatedAt: ctx.now() }
      await ctx.messenger.events.commit(ctx.db.putGroup(updated))
      ctx.db.remember(updated)
      return
    }
    // left, removed or declined: nothing to follow any more
    ctx.count('group.ignored.membership')
  }

  private async onInvite (sender: string, groupId: string, doc: MembershipDoc): Promise<void> {
    const { ctx } = this
    await checkFromAdmin(sender, doc, false)
    if (doc.members.includes(ctx.self)) throw new OctetError('GROUP_INVALID', `an invite to group ${groupId}, which lists us as a member already`)
    const record = await ctx.db.group(groupId)
    if (record?.state === 'joined') {
      ctx.count('group.ignored.invite')
      return
    }
    const at = ctx.now()
    const membership = GroupStore.encodeDoc(doc)
    if (record != null && (record.state === 'invited' || record.state === 'accepted') && record.invitedBy === sender && record.membership === membership) return
    // a peer that was in the group before keeps counting its own seqs where it left off
    const updated: GroupRecord = record == null
      ? { id: groupId, state: 'invited', membership, nextSeq: 1, lastSentAt: 0, distributedEpoch: 0, memberSince: {}, senders: {}, invites: {}, invitedBy: sender, logCounter: 0, createdAt: at, updatedAt: at }
      : { ...record, state: record.state === 'accepted' ? 'accepted' : 'invited', membership, invitedBy: sender, distributedEpoch: 0, invites: {}, senders: record.state === 'accepted' ? record.senders : {}, updatedAt: at }
    await ctx.messenger.events.commit(ctx.db.putGroup(updated), [{ type: 'group.invite', data: { groupId, name: doc.name, invitedBy: sender, version: doc.version } }], at)
    ctx.db.remember(updated)
    ctx.count('group.invites.received')
  }

  /** ACCEPT, DECLINE, LEAVE: to an admin. */
  private async onRequest (sender: string, groupId: string, type: ControlType): Promise<void> {
    const { ctx } = this
    const record = await ctx.db.group(groupId)
    if (record?.state !== 'joined') throw new OctetError('NOT_A_MEMBER', `a request about group ${groupId}, which we are not in`)
    const doc = ctx.db.doc(record)
    if (!doc.admins.includes(ctx.self)) {
      ctx.count('group.ignored.not-admin')
      return
    }
    const { [sender]: invite, ...otherInvites } = record.invites
    switch (type) {
      case ControlType.ACCEPT:
        if (doc.members.includes(sender)) break
        if (invite == null) throw new OctetError('NOT_A_MEMBER', `${sender} accepted an invite to group ${groupId} that it does not have`)
        await this.changes.change(record, { members: [...doc.members, sender], admins: doc.admins })
        return
      case ControlType.DECLINE:
        break
      case ControlType.LEAVE:
        if (!doc.members.includes(sender)) return
        await this.changes.change(record, withoutMember(doc, sender))
        return
      default:
        throw new OctetError('MALFORMED_FRAME', `group control type ${type} is not a request`)
    }
    if (invite != null) {
      const updated: GroupRecord = { ...record, invites: otherInvites, updatedAt: ctx.now() }
      await ctx.messenger.events.commit(ctx.db.putGroup(updated))
      ctx.db.remember(updated)
    }
  }
}

/** A version seen without its chain must be signed by one of its admins and come from one. */
async function checkFromAdmin (sender: string, doc: MembershipDoc, fromAuthor = true): Promise<void> {
  await validateStandalone(doc)
  if (!doc.admins.includes(sender) || (fromAuthor && doc.author !== sender)) {
    throw new OctetError('GROUP_FORGED', `membership: version ${doc.version} of group ${doc.groupId} came from ${sender}, not from one of its admins`)
  }
}

