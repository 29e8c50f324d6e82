/**
 * Pairwise Double Ratchet sessions: started from a verified bundle,
 * messages encrypted and decrypted, and the identity changes that surface
 * there (a first message or bundle under a new key, its acceptance). All of it
 * runs under one lock per peer, since each step loads a session, advances it
 * and saves it back; the prekey stores are only read and consumed here.
 */
import {
  CiphertextMessageType,
  PreKeySignalMessage,
  PublicKey,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt
} from '@signalapp/libsignal-client'
import type { IdentityKeyPair, ProtocolAddress } from '@signalapp/libsignal-client'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import { isVerifiedBundle, toLibsignalBundle } from './bundle.js'
import type { VerifiedBundle } from './bundle.js'
import { isUntrustedIdentity, translate } from './libsignal-errors.js'
import type { PrekeyStores } from './local-prekeys.js'
import { addressOf, owned, trialStores } from './stores.js'
import type { CryptoSublevels, LevelIdentityKeyStore, LevelSessionStore } from './stores.js'

/** Values of `EncryptedMessage.type`; they travel in envelopes, so they never change. */
export const MessageType = {
  /** an ordinary Double Ratchet message */
  Whisper: CiphertextMessageType.Whisper as 2,
  /** a first message that also sets up the session at the receiver */
  PreKey: CiphertextMessageType.PreKey as 3
} as const

export interface EncryptedMessage {
  type: number
  body: Uint8Array
}

/** Where sessions read and write: the libsignal stores, and the sublevels a dry run reads. */
export interface SessionStores extends PrekeyStores {
  db: CryptoSublevels
  sessions: LevelSessionStore
  identities: LevelIdentityKeyStore
}

export class PairwiseSessions {
  /** one peer's session and trusted key change one operation at a time */
  private readonly lock = new KeyedLock()
  private readonly localAddress: ProtocolAddress

  constructor (
    private readonly stores: SessionStores,
    private readonly identity: IdentityKeyPair,
    private readonly registrationId: number,
    localPeerId: string,
    private readonly now: () => number
  ) {
    this.localAddress = addressOf(localPeerId)
  }

  /** Whether encrypt(peerId) can be used now, without a new bundle. */
  async has (peerId: string): Promise<boolean> {
    const record = await this.stores.sessions.getSession(addressOf(peerId))
    return record?.hasCurrentState(new Date(this.now())) ?? false
  }

  /**
   * Sets up (or replaces) the session with peerId from one of its bundles.
   * IDENTITY_CHANGED when the bundle carries another identity key than the
   * one trusted for peerId; the new key then waits for acceptIdentityChange.
   */
  async start (peerId: string, bundle: VerifiedBundle): Promise<void> {
    if (!isVerifiedBundle(bundle)) throw new OctetError('BAD_BUNDLE', 'the prekey bundle did not come from verifyBundle')
    if (bundle.peerId !== peerId) throw new OctetError('BAD_BUNDLE', `the prekey bundle is for ${bundle.peerId}, not ${peerId}`)
    await this.lock.run(peerId, async () => {
      try {
        await processPreKeyBundle(toLibsignalBundle(bundle), addressOf(peerId), this.localAddress,
          this.stores.sessions, this.stores.identities, new Date(this.now()))
      } catch (err) {
        if (isUntrustedIdentity(err)) {
          // the bundle is signed by the PeerId's key, so its identity key is worth offering to the user
          await this.stores.identities.recordPendingIdentity(addressOf(peerId), PublicKey.deserialize(owned(bundle.identityKey)))
        }
        throw translate(err, 'BAD_BUNDLE', `cannot start a session with ${peerId}`)
      }
    })
  }

  /**
   * Trusts the identity key of a verified bundle for peerId when none is
   * known yet. A first message that did not come over a connection
   * authenticated as peerId (a mailbox) then only decrypts if it was made
   * with the key the PeerId itself signed; any other key is an identity
   * change. Returns false when a key was already known (nothing changes).
   */
  async pinIdentity (peerId: string, bundle: VerifiedBundle): Promise<boolean> {
    if (!isVerifiedBundle(bundle) || bundle.peerId !== peerId) throw new OctetError('BAD_BUNDLE', `the prekey bundle is not a verified bundle of ${peerId}`)
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      if (await this.stores.identities.getIdentity(address) != null) return false
      await this.stores.identities.saveIdentity(address, PublicKey.deserialize(owned(bundle.identityKey)))
      return true
    })
  }

  /** NO_SESSION when there is no usable session: fetch a bundle and start first. */
  async encrypt (peerId: string, plaintext: Uint8Array): Promise<EncryptedMessage> {
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      const now = new Date(this.now())
      const record = await this.stores.sessions.getSession(address)
      if (record == null || !record.hasCurrentState(now)) {
        throw new OctetError('NO_SESSION', `no session with ${peerId}; fetch its prekey bundle first`)
      }
      try {
        const message = await signalEncrypt(owned(plaintext), address, this.localAddress, this.stores.sessions, this.stores.identities, now)
        return { type: message.type(), body: message.serialize() }
      } catch (err) {
        throw translate(err, 'INTERNAL', `cannot encrypt for ${peerId}`)
      }
    })
  }

  /**
   * DECRYPT_FAILED for anything that does not decrypt (tampered, truncated,
   * wrong type); REPLAYED_MESSAGE for a message already decrypted;
   * IDENTITY_CHANGED for a first message under a new identity key (decrypt it
   * again after acceptIdentityChange); NO_SESSION for an ordinary message
   * from a peer with no session.
   */
  async decrypt (peerId: string, type: number, body: Uint8Array): Promise<Uint8Array> {
    const { sessions, identities, preKeys, signedPreKeys, kyberPreKeys } = this.stores
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      try {
        if (type === MessageType.PreKey) {
          const message = PreKeySignalMessage.deserialize(owned(body))
          try {
            return await signalDecryptPreKey(message, address, this.localAddress, sessions, identities,
              preKeys, signedPreKeys, kyberPreKeys)
          } catch (err) {
            if (isUntrustedIdentity(err)) await this.checkIdentityChange(peerId, message)
            throw err
          }
        }
        if (type === MessageType.Whisper) {
          if (await sessions.getSession(address) == null) {
            throw new OctetError('NO_SESSION', `no session with ${peerId} to decrypt its message`)
          }
          const message = SignalMessage.deserialize(owned(body))
          return await signalDecrypt(message, address, this.localAddress, sessions, identities)
        }
        throw new OctetError('DECRYPT_FAILED', `unknown message type ${type}`)
      } catch (err) {
        throw translate(err, 'DECRYPT_FAILED', `cannot decrypt a message from ${peerId}`)
      }
    })
  }

  /**
   * A first message under an unknown identity key is as easy to forge as
   * flipping bytes in one. Only if it decrypts in a dry run, without touching
   * the real stores, is its key recorded as pending; otherwise it is garbage.
   */
  private async checkIdentityChange (peerId: string, message: PreKeySignalMessage): Promise<void> {
    const trial = trialStores(this.stores.db, this.identity, this.registrationId)
    try {
      await signalDecryptPreKey(message, addressOf(peerId), this.localAddress, trial.sessions, trial.identities,
        trial.preKeys, trial.signedPreKeys, trial.kyberPreKeys)
    } catch (err) {
      throw new OctetError('DECRYPT_FAILED', `cannot decrypt a message from ${peerId} under a new identity key`, { cause: err })
    }
    const key = trial.savedIdentity()
    if (key == null) throw new OctetError('DECRYPT_FAILED', `a message from ${peerId} decrypted without an identity key`)
    await this.stores.identities.recordPendingIdentity(addressOf(peerId), key)
  }

  /**
   * Trusts the identity key peerId changed to. The old session is dropped
   * (it belongs to the old key), so the next send needs a fresh bundle; a
   * first message refused with IDENTITY_CHANGED now decrypts. Returns false
   * when no change was pending.
   */
  async acceptIdentityChange (peerId: string): Promise<boolean> {
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      if (!await this.stores.identities.acceptPendingIdentity(address)) return false
      await this.stores.sessions.deleteSession(address)
      return true
    })
  }

  /**
   * Forgets the session with peerId (the identity key stays trusted). For a
   * peer that says it cannot decrypt our messages because it lost its state:
   * the next send starts over from a fresh bundle, where a changed identity
   * key is caught.
   */
  async reset (peerId: string): Promise<void> {
    await this.lock.run(peerId, async () => {
      await this.stores.sessions.deleteSession(addressOf(peerId))
    })
  }
}
