import { Aes256GcmSiv, PrivateKey, PublicKey, hkdf } from '@signalapp/libsignal-client'
import { OctetError } from '../errors.js'
import { MAX_SEALED_BYTES } from '../wire/limits.js'
import { SealedEnvelope } from '../wire/mailbox.pb.js'
import { owned } from './stores.js'

/**
 * Sealing an envelope for a mailbox: ECIES over libsignal's primitives.
 *
 * A fresh Curve25519 key pair per envelope agrees (X25519) with the
 * recipient's Signal identity key; HKDF-SHA256 turns the secret into an
 * AES-256-GCM-SIV key that seals the whole encoded Envelope — sender PeerId,
 * message id, sequence number, kind and the Signal ciphertext. The recipient's
 * PeerId is authenticated as associated data, so a sealed envelope cannot be
 * re-filed under another recipient. A key is never used twice, so the nonce
 * can be constant; GCM-SIV would survive a repeat anyway.
 *
 * What a mailbox peer learns: the recipient (it must, to hand the envelope
 * over), the sealed size, when it was stored, and the network address of the
 * connection that stored it. Not the sender's PeerId or identity, not the
 * text, not which envelopes belong to one conversation.
 */
export const SEAL_VERSION = 1
const SEAL_LABEL = new TextEncoder().encode('octet-sealed-envelope-v1')
const NONCE = new Uint8Array(12)

function sealKey (shared: Uint8Array, ephemeral: Uint8Array, recipientKey: Uint8Array): Uint8Array<ArrayBuffer> {
  const salt = new Uint8Array(ephemeral.length + recipientKey.length)
  salt.set(ephemeral, 0)
  salt.set(recipientKey, ephemeral.length)
  return hkdf(32, owned(shared), SEAL_LABEL, salt)
}

function recipientData (recipientPeerId: string): Uint8Array<ArrayBuffer> {
  return owned(new TextEncoder().encode(recipientPeerId))
}

/** Seals encoded envelope bytes to the recipient's Signal identity key (serialized PublicKey). */
export function seal (envelope: Uint8Array, recipientPeerId: string, recipientIdentityKey: Uint8Array): Uint8Array {
  let recipientKey: PublicKey
  try {
    recipientKey = PublicKey.deserialize(owned(recipientIdentityKey))
  } catch (err) {
    throw new OctetError('BAD_BUNDLE', 'the recipient identity key is not a Curve25519 public key', { cause: err })
  }
  const ephemeral = PrivateKey.generate()
  const ephemeralPublic = ephemeral.getPublicKey().serialize()
  const key = sealKey(ephemeral.agree(recipientKey), ephemeralPublic, recipientKey.serialize())
  const ciphertext = Aes256GcmSiv.new(key).encrypt(owned(envelope), NONCE, recipientData(recipientPeerId))
  return SealedEnvelope.encode({ version: SEAL_VERSION, ephemeralKey: ephemeralPublic, ciphertext })
}

/** Opens a sealed envelope with our identity key; DECRYPT_FAILED for anything else. */
export function unseal (sealed: Uint8Array, ourPeerId: string, ourIdentityKey: PrivateKey): Uint8Array {
  if (sealed.byteLength > MAX_SEALED_BYTES) throw new OctetError('FRAME_TOO_LARGE', `sealed envelope of ${sealed.byteLength} bytes`)
  try {
    const decoded = SealedEnvelope.decode(sealed)
    if (decoded.version !== SEAL_VERSION) throw new Error(`sealed envelope version ${decoded.version}`)
    const ephemeral = PublicKey.deserialize(owned(decoded.ephemeralKey))
    const key = sealKey(ourIdentityKey.agree(ephemeral), ephemeral.serialize(), ourIdentityKey.getPublicKey().serialize())
    return Aes256GcmSiv.new(key).decrypt(owned(decoded.ciphertext), NONCE, recipientData(ourPeerId))
  } catch (err) {
    throw new OctetError('DECRYPT_FAILED', 'cannot open the sealed envelope', { cause: err })
  }
}
