/**
 * Our own group messages: encrypted with our sender key of the current
 * epoch, kept (for us, and in the log catch-up serves from) and published on
 * the group's topic, one sender's messages in seq order. A key change that
 * did not get out before (a crash in between) goes out first (keys.ts).
 */
import { OctetError, errorMessage } from '../errors.js'
import type { PairwiseDelivery } from '../messaging/index.js'
import { encodeGroupMessage, encodeGroupPlaintext } from './codec.js'
import { IDEMPOTENCY_TTL } from '../messaging/constants.js'
import { MAX_GROUP_TEXT_BYTES } from './constants.js'
import { groupTopic, others, senderKeyName, type GroupContext } from './context.js'
import { groupMessageId } from './ids.js'
import type { SenderKeys } from './keys.js'
import type { GroupMessageRecord, GroupRecord } from './store.js'

export class Publisher {
  constructor (private readonly ctx: GroupContext, private readonly keys: Pick<SenderKeys, 'deliveries'>) {}

  /**
   * Encrypts `text` with our sender key, keeps it (for us and for catch-up)
   * and publishes it on the group's topic; `recipients` is how many peers
   * gossipsub sent it to (0 is fine: members catch up from us). With an
   * `idempotencyKey` already used for this group (within IDEMPOTENCY_TTL),
   * nothing is sent: the message sent then is answered, `created` false.
   */
  async send (groupId: string, text: string, idempotencyKey?: string): Promise<{ message: GroupMessageRecord, recipients: number, created: boolean }> {
    const { ctx } = this
    const size = Buffer.byteLength(text, 'utf8')
    if (size === 0) throw new OctetError('BAD_REQUEST', 'text is empty')
    if (size > MAX_GROUP_TEXT_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `text is ${size} bytes; the limit is ${MAX_GROUP_TEXT_BYTES}`)
    return await ctx.lock.run(groupId, async () => {
      const record = await ctx.requireGroup(groupId)
      if (idempotencyKey != null) {
        // under the group's lock: the same key twice at once still makes one message
        const known = await ctx.db.idempotent(groupId, idempotencyKey)
        if (known?.message != null && ctx.now() - known.record.createdAt < IDEMPOTENCY_TTL) {
          if (known.message.text !== text) throw new OctetError('CONFLICT', 'this Idempotency-Key was used for a different message')
          return { message: known.message, recipients: 0, created: false }
        }
      }
      const doc = ctx.requireMember(record)
      const at = ctx.now()
      const updated: GroupRecord = { ...record }
      let deliveries: PairwiseDelivery[] = []
      if (updated.distributedEpoch !== doc.keyEpoch) {
        // a key change that did not get out (a crash in between): send our key before the message
        deliveries = await this.keys.deliveries(updated, doc, others(doc, ctx.self))
        updated.distributedEpoch = doc.keyEpoch
      }
      const seq = updated.nextSeq
      const sentAt = Math.max(at, updated.lastSentAt)
      const ciphertext = await ctx.crypto.groupEncrypt(senderKeyName(groupId, doc.keyEpoch), encodeGroupPlaintext({ text, seq, sentAt }))
      const bytes = encodeGroupMessage({ groupId, sender: ctx.self, seq, sentAt, epoch: doc.keyEpoch, ciphertext })
      const message: GroupMessageRecord = { groupId, id: groupMessageId(groupId, ctx.self, seq), direction: 'out', author: ctx.self, seq, text, sentAt, epoch: doc.keyEpoch }
      updated.nextSeq = seq + 1
      updated.lastSentAt = sentAt
      updated.updatedAt = at
      const ops = [...await ctx.db.listMessage(message), ...ctx.db.putLog(updated, ctx.self, seq, bytes, doc.version)]
      if (idempotencyKey != null) ops.push(ctx.db.putIdempotency(message, idempotencyKey, at))
      // a message changes only the progress part of the record, unless our key went out with it
      if (updated.distributedEpoch !== record.distributedEpoch) ops.push(...ctx.db.putGroup(updated))
      else ops.push(ctx.db.putProgress(updated))
      // our own message is an event too, so a client (a bridge) sees it and can tell it by `author`
      await ctx.messenger.commitPairwise(ops, [{ type: 'group.message', data: { groupId, message } }], deliveries)
      ctx.db.remember(updated)
      let recipients = 0
      try {
        // in the lock: a sender's messages leave in seq order, so receivers see no false gaps
        recipients = await ctx.pubsub.publish(groupTopic(groupId), bytes)
      } catch (err) {
        ctx.count('group.publish-failed')
        ctx.log.warn({ groupId, err: errorMessage(err) }, 'could not publish a group message; members will catch up from us')
      }
      ctx.count('group.sent')
      return { message, recipients, created: true }
    })
  }
}
