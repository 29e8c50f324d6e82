/**
 * Who we are and whom we trust, read-only: our identity key pair (made on
 * first use), the identity status and safety number of a peer, and sealing
 * for mailboxes with those keys. Changing whom we trust happens in
 * sessions.ts, under the per-peer lock that orders it with the ratchet.
 */
import { Fingerprint, IdentityKeyPair } from '@signalapp/libsignal-client'
import type { PublicKey } from '@signalapp/libsignal-client'
import { OctetError } from '../errors.js'
import { FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION } from './constants.js'
import { seal, unseal } from './seal.js'
import { addressOf, owned } from './stores.js'
import type { CryptoSublevels, LevelIdentityKeyStore } from './stores.js'

/**
 * unknown: never seen this peer's identity key; trusted: the key first seen
 * (or accepted) is in use; changed: the peer presented a different key, which
 * waits for acceptIdentityChange.
 */
export type IdentityStatus = 'unknown' | 'trusted' | 'changed'

const IDENTITY_KEY = 'identity-key-pair'

/** Our Signal identity from the store, created on first use. */
export async function loadIdentityKeyPair (db: CryptoSublevels): Promise<IdentityKeyPair> {
  const stored = await db.local.get(IDENTITY_KEY)
  if (stored != null) return IdentityKeyPair.deserialize(owned(stored))
  const identity = IdentityKeyPair.generate()
  await db.local.put(IDENTITY_KEY, identity.serialize())
  return identity
}

export class Identities {
  constructor (
    private readonly identities: LevelIdentityKeyStore,
    private readonly identity: IdentityKeyPair,
    private readonly peerId: string
  ) {}

  async status (peerId: string): Promise<IdentityStatus> {
    const address = addressOf(peerId)
    if (await this.identities.getPendingIdentity(address) != null) return 'changed'
    if (await this.identities.getIdentity(address) != null) return 'trusted'
    return 'unknown'
  }

  /**
   * The safety number two people compare out of band: the same string on
   * both sides. With `pending`, the one for the changed key that waits for
   * acceptance, so it can be checked before it is accepted.
   */
  async safetyNumber (peerId: string, options: { pending?: boolean } = {}): Promise<string> {
    const address = addressOf(peerId)
    const theirs = options.pending === true
      ? await this.identities.getPendingIdentity(address)
      : await this.identities.getIdentity(address)
    if (theirs == null) {
      throw new OctetError('NO_SESSION', `no ${options.pending === true ? 'pending ' : ''}identity key known for ${peerId}`)
    }
    return fingerprint(this.peerId, this.identity.publicKey, peerId, theirs)
  }

  /**
   * Seals encoded envelope bytes for a mailbox: only peerId can open them.
   * Uses the identity key we trust for peerId (from a session or a verified
   * bundle): NO_SESSION when we have none yet.
   */
  async sealFor (peerId: string, envelope: Uint8Array): Promise<Uint8Array> {
    const key = await this.identities.getIdentity(addressOf(peerId))
    if (key == null) throw new OctetError('NO_SESSION', `no identity key of ${peerId} known; fetch its bundle first`)
    return seal(envelope, peerId, key.serialize())
  }

  /** Opens an envelope sealed to us (see seal.ts). */
  unseal (sealed: Uint8Array): Uint8Array {
    return unseal(sealed, this.peerId, this.identity.privateKey)
  }
}

function fingerprint (localPeerId: string, localKey: PublicKey, remotePeerId: string, remoteKey: PublicKey): string {
  const encoder = new TextEncoder()
  return Fingerprint.new(FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION,
    encoder.encode(localPeerId) as Uint8Array<ArrayBuffer>, localKey,
    encoder.encode(remotePeerId) as Uint8Array<ArrayBuffer>, remoteKey
  ).displayableFingerprint().toString()
}
