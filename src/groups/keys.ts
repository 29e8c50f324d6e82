/**
 * Key distribution: our sender key of each key epoch, made when the epoch
 * starts and sent pairwise (SENDER_KEY envelopes through the outbox) to the
 * members that need it; and the other members' keys as they come in, which
 * open what they publish — and release what of theirs was held waiting for
 * the key (see ingest.ts). Which epoch and which peers is decided by the
 * membership changes (membership-changes.ts) and by send (publish.ts).
 */
import { OctetError } from '../errors.js'
import type { PairwiseDelivery } from '../messaging/index.js'
import { encodeSenderKey, type SenderKey } from './codec.js'
import { senderKeyName, type GroupContext } from './context.js'
import type { MembershipDoc } from './membership.js'
import type { GroupRecord, GroupState } from './store.js'

/** States in which a sender key is taken: we are a member, or about to be. */
const ACTIVE_STATES: ReadonlySet<GroupState> = new Set(['invited', 'accepted', 'joined'])

/** What key distribution needs of gossip ingest. */
export interface HeldForKeys {
  /** The sender's key came: take what it sent meanwhile. Lock held. */
  retryPending: (groupId: string, sender: string) => Promise<void>
}

export class SenderKeys {
  constructor (private readonly ctx: GroupContext, private readonly held: HeldForKeys) {}

  /** Our sender key for the doc's epoch (made now if new), as SENDER_KEY envelopes to `peers`. */
  async deliveries (record: GroupRecord, doc: MembershipDoc, peers: string[]): Promise<PairwiseDelivery[]> {
    const distribution = await this.ctx.crypto.createSenderKeyDistribution(senderKeyName(record.id, doc.keyEpoch))
    if (peers.length === 0) return []
    const body = encodeSenderKey({ groupId: record.id, epoch: doc.keyEpoch, distribution, nextSeq: record.nextSeq })
    this.ctx.count('group.sender-keys.sent', peers.length)
    return peers.map(peer => ({ peer, kind: 'sender-key' as const, body }))
  }

  /** A member's sender key, from a SENDER_KEY envelope. */
  async onSenderKey (sender: string, key: SenderKey): Promise<void> {
    const { ctx } = this
    await ctx.lock.run(key.groupId, async () => {
      const record = await ctx.db.group(key.groupId)
      if (record == null) throw new OctetError('NOT_A_MEMBER', `a sender key for group ${key.groupId}, which we are not in`)
      if (!ACTIVE_STATES.has(record.state)) {
        ctx.count('group.ignored.sender-key')
        return
      }
      await ctx.crypto.processSenderKeyDistribution(sender, senderKeyName(key.groupId, key.epoch), key.distribution)
      ctx.count('group.sender-keys.received')
      if (record.senders[sender] == null) {
        // what it sent before this key is not for us (we were not a member, or cannot open it)
        const updated: GroupRecord = { ...record, senders: { ...record.senders, [sender]: { contiguous: key.nextSeq - 1, ahead: [] } }, updatedAt: ctx.now() }
        await ctx.messenger.events.commit(ctx.db.putGroup(updated))
        ctx.db.remember(updated)
      }
      await this.held.retryPending(key.groupId, sender)
    })
  }
}
