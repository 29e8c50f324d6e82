/**
 * Group encryption with Signal sender keys: our chain for a group, the
 * members' chains from their distribution messages, and group messages sealed
 * and opened with them. Apart from pairwise sessions because it shares no
 * state with them: its own store, and a lock per group rather than per peer.
 */
import { createHash } from 'node:crypto'
import {
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistributionMessage
} from '@signalapp/libsignal-client'
import type { ProtocolAddress } from '@signalapp/libsignal-client'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import { translate } from './libsignal-errors.js'
import { addressOf, owned } from './stores.js'
import type { LevelSenderKeyStore } from './stores.js'

export class SenderKeys {
  /** one group's chains change one operation at a time */
  private readonly lock = new KeyedLock()

  constructor (
    private readonly senderKeys: LevelSenderKeyStore,
    private readonly localAddress: ProtocolAddress
  ) {}

  /** Our sender key for groupId, to send to each member over its pairwise session. */
  async createDistribution (groupId: string): Promise<Uint8Array> {
    return await this.lock.run(groupId, async () => {
      try {
        const message = await SenderKeyDistributionMessage.create(this.localAddress, distributionId(groupId), this.senderKeys)
        return message.serialize()
      } catch (err) {
        throw translate(err, 'INTERNAL', `cannot create a sender key for group ${groupId}`)
      }
    })
  }

  async processDistribution (peerId: string, groupId: string, bytes: Uint8Array): Promise<void> {
    await this.lock.run(groupId, async () => {
      try {
        const message = SenderKeyDistributionMessage.deserialize(owned(bytes))
        // the distribution id is inside the message: make sure it is this group's
        if (message.distributionId() !== distributionId(groupId)) {
          throw new OctetError('MALFORMED_FRAME', `the sender key from ${peerId} is not for group ${groupId}`)
        }
        await processSenderKeyDistributionMessage(addressOf(peerId), message, this.senderKeys)
      } catch (err) {
        throw translate(err, 'MALFORMED_FRAME', `cannot use the sender key from ${peerId} for group ${groupId}`)
      }
    })
  }

  /** NO_SESSION until createDistribution has made our sender key for the group. */
  async encrypt (groupId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return await this.lock.run(groupId, async () => {
      if (await this.senderKeys.getSenderKey(this.localAddress, distributionId(groupId)) == null) {
        throw new OctetError('NO_SESSION', `no sender key for group ${groupId}; create a sender key distribution first`)
      }
      try {
        const message = await groupEncrypt(this.localAddress, distributionId(groupId), this.senderKeys, owned(plaintext))
        return message.serialize()
      } catch (err) {
        throw translate(err, 'INTERNAL', `cannot encrypt for group ${groupId}`)
      }
    })
  }

  /** NO_SESSION when peerId's sender key for the group has not been processed. */
  async decrypt (peerId: string, groupId: string, ciphertext: Uint8Array): Promise<Uint8Array> {
    return await this.lock.run(groupId, async () => {
      try {
        // A member's message for one group must not be accepted in another.
        const message = SenderKeyMessage.deserialize(owned(ciphertext))
        if (message.distributionId() !== distributionId(groupId)) {
          throw new OctetError('DECRYPT_FAILED', `the group message from ${peerId} is not for group ${groupId}`)
        }
        // libsignal reports this case as a generic error; it deserves its own code
        if (await this.senderKeys.getSenderKey(addressOf(peerId), message.distributionId()) == null) {
          throw new OctetError('NO_SESSION', `no sender key from ${peerId} for group ${groupId}`)
        }
        return await groupDecrypt(addressOf(peerId), this.senderKeys, owned(ciphertext))
      } catch (err) {
        throw translate(err, 'DECRYPT_FAILED', `cannot decrypt a group ${groupId} message from ${peerId}`)
      }
    })
  }
}

/**
 * libsignal names a sender-key chain by a UUID. Deriving it from the group id
 * means every member agrees on it without sending it around.
 */
export function distributionId (groupId: string): string {
  const bytes = createHash('sha256').update('octet-group-distribution:').update(groupId).digest().subarray(0, 16)
  // RFC 9562 version 8 (custom) and the RFC variant, so it is a well-formed UUID
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
