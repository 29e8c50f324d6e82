import { KEMPublicKey, PreKeyBundle, PublicKey } from '@signalapp/libsignal-client'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey as Libp2pPrivateKey } from '@libp2p/interface'
import { OctetError } from '../errors.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../wire/prekeys.pb.js'
import { BUNDLE_SIGNATURE_DOMAIN, MAX_BUNDLE_BYTES, MAX_CLOCK_SKEW, SIGNAL_DEVICE_ID } from './constants.js'
import { owned } from './stores.js'

/**
 * A prekey bundle whose libp2p signature, PeerId, lifetime and Signal
 * signatures have all been checked. Only verifyBundle makes these:
 * startSession refuses look-alikes, so the PeerId binding cannot be skipped
 * by building the object by hand.
 */
export interface VerifiedBundle {
  readonly peerId: string
  readonly registrationId: number
  readonly deviceId: number
  readonly identityKey: Uint8Array
  readonly signedPreKeyId: number
  readonly signedPreKey: Uint8Array
  readonly signedPreKeySignature: Uint8Array
  readonly kyberPreKeyId: number
  readonly kyberPreKey: Uint8Array
  readonly kyberPreKeySignature: Uint8Array
  /** present only in bundles fetched from the peer itself */
  readonly preKeyId?: number
  readonly preKey?: Uint8Array
  /** ms since the Unix epoch */
  readonly issuedAt: number
  readonly expiresAt: number
}

const verified = new WeakSet<VerifiedBundle>()

export function isVerifiedBundle (bundle: VerifiedBundle): boolean {
  return verified.has(bundle)
}

function signedBytes (body: Uint8Array): Uint8Array {
  const domain = new TextEncoder().encode(BUNDLE_SIGNATURE_DOMAIN)
  const out = new Uint8Array(domain.byteLength + body.byteLength)
  out.set(domain, 0)
  out.set(body, domain.byteLength)
  return out
}

export async function signBundle (bundle: PrekeyBundle, key: Libp2pPrivateKey): Promise<Uint8Array> {
  const body = PrekeyBundle.encode(bundle)
  const signature = await key.sign(signedBytes(body))
  return SignedPrekeyBundle.encode({ body, signature: owned(signature) })
}

function bad (message: string, cause?: unknown): OctetError {
  return new OctetError('BAD_BUNDLE', message, { cause })
}

function toMillis (value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`prekey bundle ${field} is out of range`)
  return Number(value)
}

export async function verifyBundle (bytes: Uint8Array, expectedPeerId: string, now: number): Promise<VerifiedBundle> {
  if (!(bytes instanceof Uint8Array)) throw bad('prekey bundle is not bytes')
  if (bytes.byteLength > MAX_BUNDLE_BYTES) {
    throw bad(`prekey bundle is ${bytes.byteLength} bytes, more than the ${MAX_BUNDLE_BYTES} allowed`)
  }

  let signed: SignedPrekeyBundle
  let body: PrekeyBundle
  try {
    signed = SignedPrekeyBundle.decode(bytes)
    body = PrekeyBundle.decode(signed.body)
  } catch (err) {
    throw bad('prekey bundle cannot be decoded', err)
  }

  if (body.peerId !== expectedPeerId) {
    throw bad(`prekey bundle is for ${body.peerId === '' ? 'no peer' : body.peerId}, not ${expectedPeerId}`)
  }

  let publicKey
  try {
    publicKey = peerIdFromString(body.peerId).publicKey
  } catch (err) {
    throw bad('prekey bundle names an invalid PeerId', err)
  }
  // Only PeerIds that embed their public key (Ed25519, secp256k1) can vouch for a bundle.
  if (publicKey == null) throw bad(`the PeerId ${body.peerId} does not embed a public key`)

  let signatureOk: boolean
  try {
    signatureOk = await publicKey.verify(signedBytes(signed.body), signed.signature)
  } catch (err) {
    throw new OctetError('BAD_SIGNATURE', `prekey bundle signature of ${body.peerId} cannot be checked`, { cause: err })
  }
  if (!signatureOk) throw new OctetError('BAD_SIGNATURE', `prekey bundle is not signed by ${body.peerId}`)

  const issuedAt = toMillis(body.issuedAt, 'issuedAt')
  const expiresAt = toMillis(body.expiresAt, 'expiresAt')
  if (expiresAt <= now) throw bad(`prekey bundle of ${body.peerId} expired at ${new Date(expiresAt).toISOString()}`)
  if (issuedAt > now + MAX_CLOCK_SKEW) throw bad(`prekey bundle of ${body.peerId} is issued in the future`)
  if (expiresAt < issuedAt) throw bad(`prekey bundle of ${body.peerId} expires before it is issued`)
  if (body.deviceId !== SIGNAL_DEVICE_ID) throw bad(`prekey bundle is for device ${body.deviceId}, octet uses ${SIGNAL_DEVICE_ID}`)
  if ((body.preKeyId == null) !== (body.preKey == null)) throw bad('prekey bundle has half a one-time prekey')

  // Parsed now, so that a bundle that libsignal would refuse is refused here,
  // with BAD_BUNDLE, before anything is stored.
  try {
    const identityKey = PublicKey.deserialize(body.identityKey)
    const signedPreKey = PublicKey.deserialize(body.signedPreKey)
    const kyberPreKey = KEMPublicKey.deserialize(body.kyberPreKey)
    if (body.preKey != null) PublicKey.deserialize(body.preKey)
    if (!identityKey.verify(signedPreKey.serialize(), body.signedPreKeySignature)) {
      throw bad('the signed prekey is not signed by the identity key')
    }
    if (!identityKey.verify(kyberPreKey.serialize(), body.kyberPreKeySignature)) {
      throw bad('the Kyber prekey is not signed by the identity key')
    }
  } catch (err) {
    if (err instanceof OctetError) throw err
    throw bad(`prekey bundle of ${body.peerId} holds an invalid key`, err)
  }

  // Copies, so that the bundle does not alias (and change with) the caller's input buffer.
  const result: VerifiedBundle = Object.freeze({
    peerId: body.peerId,
    registrationId: body.registrationId,
    deviceId: body.deviceId,
    identityKey: body.identityKey.slice(),
    signedPreKeyId: body.signedPreKeyId,
    signedPreKey: body.signedPreKey.slice(),
    signedPreKeySignature: body.signedPreKeySignature.slice(),
    kyberPreKeyId: body.kyberPreKeyId,
    kyberPreKey: body.kyberPreKey.slice(),
    kyberPreKeySignature: body.kyberPreKeySignature.slice(),
    ...(body.preKeyId != null && body.preKey != null ? { preKeyId: body.preKeyId, preKey: body.preKey.slice() } : {}),
    issuedAt,
    expiresAt
  })
  verified.add(result)
  return result
}

export function toLibsignalBundle (bundle: VerifiedBundle): PreKeyBundle {
  return PreKeyBundle.new(
    bundle.registrationId,
    bundle.deviceId,
    bundle.preKeyId ?? null,
    bundle.preKey == null ? null : PublicKey.deserialize(owned(bundle.preKey)),
    bundle.signedPreKeyId,
    PublicKey.deserialize(owned(bundle.signedPreKey)),
    owned(bundle.signedPreKeySignature),
    PublicKey.deserialize(owned(bundle.identityKey)),
    bundle.kyberPreKeyId,
    KEMPublicKey.deserialize(owned(bundle.kyberPreKey)),
    owned(bundle.kyberPreKeySignature)
  )
}
