import { createHash, randomInt } from 'node:crypto'
import {
  CiphertextMessageType,
  ErrorCode as LibsignalErrorCode,
  Fingerprint,
  IdentityKeyPair,
  KEMKeyPair,
  KyberPreKeyRecord,
  LibSignalErrorBase,
  PreKeyRecord,
  PreKeySignalMessage,
  PrivateKey,
  PublicKey,
  SenderKeyDistributionMessage,
  SenderKeyMessage,
  SignalMessage,
  SignedPreKeyRecord,
  groupDecrypt,
  groupEncrypt,
  processPreKeyBundle,
  processSenderKeyDistributionMessage,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt
} from '@signalapp/libsignal-client'
import type { ProtocolAddress } from '@signalapp/libsignal-client'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey as Libp2pPrivateKey } from '@libp2p/interface'
import { OctetError } from '../errors.js'
import type { ErrorCode } from '../errors.js'
import type { Store } from '../store/database.js'
import { isVerifiedBundle, signBundle, toLibsignalBundle, verifyBundle } from './bundle.js'
import type { VerifiedBundle } from './bundle.js'
import {
  BUNDLE_LIFETIME,
  FINGERPRINT_ITERATIONS,
  FINGERPRINT_VERSION,
  MAX_PREKEY_ID,
  ONE_TIME_PREKEY_LOW_WATER,
  ONE_TIME_PREKEY_MAX_AGE,
  ONE_TIME_PREKEY_MAX_STORED,
  ONE_TIME_PREKEY_POOL_SIZE,
  RETIRED_PREKEY_GRACE,
  SIGNAL_DEVICE_ID,
  SIGNED_PREKEY_ROTATION
} from './constants.js'
import { KeyedLock } from '../lock.js'
import { seal, unseal } from './seal.js'
import type { CommitPipeline } from '../store/commit.js'
import {
  CryptoSublevels,
  LevelIdentityKeyStore,
  LevelKyberPreKeyStore,
  LevelPreKeyStore,
  LevelSenderKeyStore,
  LevelSessionStore,
  LevelSignedPreKeyStore,
  addressOf,
  owned,
  trialStores
} from './stores.js'
import type { LocalState } from './stores.js'

export type { VerifiedBundle } from './bundle.js'

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

/**
 * unknown: never seen this peer's identity key; trusted: the key first seen
 * (or accepted) is in use; changed: the peer presented a different key, which
 * waits for acceptIdentityChange.
 */
export type IdentityStatus = 'unknown' | 'trusted' | 'changed'

export interface SignalCryptoOptions {
  store: Store
  /** the node's libp2p Ed25519 key; it signs the prekey bundles */
  privateKey: Libp2pPrivateKey
  /** the PeerId string of privateKey */
  peerId: string
  /** ms since the Unix epoch; injectable for tests */
  now?: () => number
  /**
   * Where session and sender-key state is written behind (the daemon's
   * CommitPipeline): every commit through it carries the state changed
   * before it. Without, each change is written before encrypt/decrypt return.
   */
  pipeline?: CommitPipeline
  /**
   * A background write of Signal state failed. The state is not lost: it
   * rides with the next batch that stores a message (which fails, and so is
   * not acknowledged, while the disk is full). Log and count it.
   */
  onFlushError?: (err: unknown) => void
}

export interface MaintenanceReport {
  /** the signed prekey (or the Kyber prekey) was replaced: republish the bundle */
  signedPreKeyRotated: boolean
  kyberPreKeyRotated: boolean
  retiredPreKeysDeleted: number
  staleOneTimePreKeysDeleted: number
  oneTimePreKeysAdded: number
}

export interface OneTimePrekeyCounts {
  /** ready to be handed out */
  available: number
  /** handed out in a bundle and not used yet */
  issued: number
}

const STATE_KEY = 'local'
const IDENTITY_KEY = 'identity-key-pair'
const PREKEY_LOCK = '\0prekeys'

/**
 * Signal-protocol end-to-end encryption for one node. Nothing from libsignal
 * crosses this boundary: callers see bytes, strings, numbers and OctetErrors.
 */
export class SignalCrypto {
  private readonly lock = new KeyedLock()
  private readonly localAddress: ProtocolAddress
  private readonly sessions: LevelSessionStore
  private readonly identities: LevelIdentityKeyStore
  private readonly preKeys: LevelPreKeyStore
  private readonly signedPreKeys: LevelSignedPreKeyStore
  private readonly kyberPreKeys: LevelKyberPreKeyStore
  private readonly senderKeys: LevelSenderKeyStore

  private constructor (
    private readonly db: CryptoSublevels,
    private readonly identity: IdentityKeyPair,
    private readonly registrationId: number,
    private readonly privateKey: Libp2pPrivateKey,
    readonly peerId: string,
    private readonly now: () => number
  ) {
    this.localAddress = addressOf(peerId)
    this.sessions = new LevelSessionStore(db)
    this.identities = new LevelIdentityKeyStore(db, identity, registrationId)
    this.preKeys = new LevelPreKeyStore(db)
    this.signedPreKeys = new LevelSignedPreKeyStore(db)
    this.kyberPreKeys = new LevelKyberPreKeyStore(db, now)
    this.senderKeys = new LevelSenderKeyStore(db)
  }

  /**
   * Loads the Signal identity from the store, creating it on first use, and
   * brings the prekeys up to date (see maintain).
   */
  static async open (options: SignalCryptoOptions): Promise<SignalCrypto> {
    const { store, privateKey, peerId } = options
    const now = options.now ?? Date.now
    if (privateKey.type !== 'Ed25519' || peerIdFromPrivateKey(privateKey).toString() !== peerId) {
      // a bundle signed by another key than the PeerId's would be refused by every peer
      throw new OctetError('INVALID_CONFIG', `the crypto module needs the Ed25519 private key of ${peerId}`)
    }
    const db = new CryptoSublevels(store, options.pipeline, options.onFlushError)

    const stored = await db.local.get(IDENTITY_KEY)
    let identity: IdentityKeyPair
    if (stored == null) {
      identity = IdentityKeyPair.generate()
      await db.local.put(IDENTITY_KEY, identity.serialize())
    } else {
      identity = IdentityKeyPair.deserialize(owned(stored))
    }

    let state = await db.state.get(STATE_KEY)
    if (state == null) {
      state = {
        // Signal's registration ids are 14-bit and never 0
        registrationId: randomInt(1, 0x3FFF),
        // random starts, as Signal does, so that a reinstall does not reuse
        // prekey ids that peers may still hold in old bundles
        nextPreKeyId: randomInt(1, MAX_PREKEY_ID),
        nextSignedPreKeyId: randomInt(1, MAX_PREKEY_ID),
        nextKyberPreKeyId: randomInt(1, MAX_PREKEY_ID),
        signedPreKeyId: 0,
        kyberPreKeyId: 0,
        retired: []
      }
      await db.state.put(STATE_KEY, state)
    }

    const crypto = new SignalCrypto(db, identity, state.registrationId, privateKey, peerId, now)
    await crypto.maintain()
    // state given back by batches that failed while the disk was full goes to disk when space is back
    store.onHealthChange(health => {
      if (health.writable) void crypto.flushWrites().catch(err => options.onFlushError?.(err))
    })
    return crypto
  }

  // ---------------------------------------------------------------- bundles

  /**
   * An encoded SignedPrekeyBundle. With a one-time prekey for a peer that
   * asked over /octet/prekeys/1.0.0 (each such bundle uses one up); without
   * for the copy published in the DHT, which anyone may fetch any number of times.
   */
  async createBundle (options: { withOneTimePrekey: boolean }): Promise<Uint8Array> {
    return await this.lock.run(PREKEY_LOCK, async () => {
      const state = await this.readState()
      const signed = await this.signedPreKeys.getSignedPreKey(state.signedPreKeyId)
      const kyber = await this.kyberPreKeys.getKyberPreKey(state.kyberPreKeyId)
      const oneTime = options.withOneTimePrekey ? await this.issueOneTimePreKey(state) : undefined
      const now = this.now()
      return await signBundle({
        peerId: this.peerId,
        registrationId: this.registrationId,
        deviceId: SIGNAL_DEVICE_ID,
        identityKey: this.identity.publicKey.serialize(),
        signedPreKeyId: signed.id(),
        signedPreKey: signed.publicKey().serialize(),
        signedPreKeySignature: signed.signature(),
        kyberPreKeyId: kyber.id(),
        kyberPreKey: kyber.publicKey().serialize(),
        kyberPreKeySignature: kyber.signature(),
        ...(oneTime == null ? {} : { preKeyId: oneTime.id(), preKey: oneTime.publicKey().serialize() }),
        issuedAt: BigInt(now),
        expiresAt: BigInt(now + BUNDLE_LIFETIME)
      }, this.privateKey)
    })
  }

  /**
   * Checks a bundle received from the network: its size, encoding, PeerId,
   * libp2p signature (BAD_SIGNATURE), lifetime and Signal signatures (BAD_BUNDLE).
   */
  async verifyBundle (bytes: Uint8Array, expectedPeerId: string): Promise<VerifiedBundle> {
    return await verifyBundle(bytes, expectedPeerId, this.now())
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Resolves once every session and sender-key change made before the call
   * is on disk. Any commit through the pipeline does as much (see
   * CommitPipeline); this is for state that leaves the node without a
   * commit of its own (a sealed copy for a mailbox).
   */
  async flushWrites (): Promise<void> {
    await Promise.all([this.db.sessions.flush(), this.db.senderKeys.flush()])
  }

  /** Whether encrypt(peerId) can be used now, without a new bundle. */
  async hasSession (peerId: string): Promise<boolean> {
    const record = await this.sessions.getSession(addressOf(peerId))
    return record?.hasCurrentState(new Date(this.now())) ?? false
  }

  /**
   * Sets up (or replaces) the session with peerId from one of its bundles.
   * IDENTITY_CHANGED when the bundle carries another identity key than the
   * one trusted for peerId; the new key then waits for acceptIdentityChange.
   */
  async startSession (peerId: string, bundle: VerifiedBundle): Promise<void> {
    if (!isVerifiedBundle(bundle)) throw new OctetError('BAD_BUNDLE', 'the prekey bundle did not come from verifyBundle')
    if (bundle.peerId !== peerId) throw new OctetError('BAD_BUNDLE', `the prekey bundle is for ${bundle.peerId}, not ${peerId}`)
    await this.lock.run(peerId, async () => {
      try {
        await processPreKeyBundle(toLibsignalBundle(bundle), addressOf(peerId), this.localAddress,
          this.sessions, this.identities, new Date(this.now()))
      } catch (err) {
        if (isUntrustedIdentity(err)) {
          // the bundle is signed by the PeerId's key, so its identity key is worth offering to the user
          await this.identities.recordPendingIdentity(addressOf(peerId), PublicKey.deserialize(owned(bundle.identityKey)))
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
      if (await this.identities.getIdentity(address) != null) return false
      await this.identities.saveIdentity(address, PublicKey.deserialize(owned(bundle.identityKey)))
      return true
    })
  }

  /** NO_SESSION when there is no usable session: fetch a bundle and startSession first. */
  async encrypt (peerId: string, plaintext: Uint8Array): Promise<EncryptedMessage> {
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      const now = new Date(this.now())
      const record = await this.sessions.getSession(address)
      if (record == null || !record.hasCurrentState(now)) {
        throw new OctetError('NO_SESSION', `no session with ${peerId}; fetch its prekey bundle first`)
      }
      try {
        const message = await signalEncrypt(owned(plaintext), address, this.localAddress, this.sessions, this.identities, now)
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
    return await this.lock.run(peerId, async () => {
      const address = addressOf(peerId)
      try {
        if (type === MessageType.PreKey) {
          const message = PreKeySignalMessage.deserialize(owned(body))
          try {
            return await signalDecryptPreKey(message, address, this.localAddress, this.sessions, this.identities,
              this.preKeys, this.signedPreKeys, this.kyberPreKeys)
          } catch (err) {
            if (isUntrustedIdentity(err)) await this.checkIdentityChange(peerId, message)
            throw err
          }
        }
        if (type === MessageType.Whisper) {
          if (await this.sessions.getSession(address) == null) {
            throw new OctetError('NO_SESSION', `no session with ${peerId} to decrypt its message`)
          }
          const message = SignalMessage.deserialize(owned(body))
          return await signalDecrypt(message, address, this.localAddress, this.sessions, this.identities)
        }
        throw new OctetError('DECRYPT_FAILED', `unknown message type ${type}`)
      } catch (err) {
        throw translate(err, 'DECRYPT_FAILED', `cannot decrypt a message from ${peerId}`)
      }
    })
  }

  // ---------------------------------------------------------------- identity

  /**
   * A first message under an unknown identity key is as easy to forge as
   * flipping bytes in one. Only if it decrypts in a dry run, without touching
   * the real stores, is its key recorded as pending; otherwise it is garbage.
   */
  private async checkIdentityChange (peerId: string, message: PreKeySignalMessage): Promise<void> {
    const trial = trialStores(this.db, this.identity, this.registrationId)
    try {
      await signalDecryptPreKey(message, addressOf(peerId), this.localAddress, trial.sessions, trial.identities,
        trial.preKeys, trial.signedPreKeys, trial.kyberPreKeys)
    } catch (err) {
      throw new OctetError('DECRYPT_FAILED', `cannot decrypt a message from ${peerId} under a new identity key`, { cause: err })
    }
    const key = trial.savedIdentity()
    if (key == null) throw new OctetError('DECRYPT_FAILED', `a message from ${peerId} decrypted without an identity key`)
    await this.identities.recordPendingIdentity(addressOf(peerId), key)
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

  async identityStatus (peerId: string): Promise<IdentityStatus> {
    const address = addressOf(peerId)
    if (await this.identities.getPendingIdentity(address) != null) return 'changed'
    if (await this.identities.getIdentity(address) != null) return 'trusted'
    return 'unknown'
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
      if (!await this.identities.acceptPendingIdentity(address)) return false
      await this.sessions.deleteSession(address)
      return true
    })
  }

  /**
   * Forgets the session with peerId (the identity key stays trusted). For a
   * peer that says it cannot decrypt our messages because it lost its state:
   * the next send starts over from a fresh bundle, where a changed identity
   * key is caught.
   */
  async resetSession (peerId: string): Promise<void> {
    await this.lock.run(peerId, async () => {
      await this.sessions.deleteSession(addressOf(peerId))
    })
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

  // ---------------------------------------------------------------- groups

  /** Our sender key for groupId, to send to each member over its pairwise session. */
  async createSenderKeyDistribution (groupId: string): Promise<Uint8Array> {
    return await this.lock.run(groupLock(groupId), async () => {
      try {
        const message = await SenderKeyDistributionMessage.create(this.localAddress, distributionId(groupId), this.senderKeys)
        return message.serialize()
      } catch (err) {
        throw translate(err, 'INTERNAL', `cannot create a sender key for group ${groupId}`)
      }
    })
  }

  async processSenderKeyDistribution (peerId: string, groupId: string, bytes: Uint8Array): Promise<void> {
    await this.lock.run(groupLock(groupId), async () => {
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

  async groupEncrypt (groupId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return await this.lock.run(groupLock(groupId), async () => {
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
  async groupDecrypt (peerId: string, groupId: string, ciphertext: Uint8Array): Promise<Uint8Array> {
    return await this.lock.run(groupLock(groupId), async () => {
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

  // ---------------------------------------------------------------- prekeys

  /**
   * Periodic upkeep (at start and then every hour or so): replaces the signed
   * and Kyber prekeys once they are SIGNED_PREKEY_ROTATION old, deletes the
   * ones retired more than RETIRED_PREKEY_GRACE ago and one-time prekeys
   * handed out but unused for ONE_TIME_PREKEY_MAX_AGE, and refills the pool.
   */
  async maintain (): Promise<MaintenanceReport> {
    return await this.lock.run(PREKEY_LOCK, async () => {
      const state = await this.readState()
      const now = this.now()
      const report: MaintenanceReport = {
        signedPreKeyRotated: false,
        kyberPreKeyRotated: false,
        retiredPreKeysDeleted: 0,
        staleOneTimePreKeysDeleted: 0,
        oneTimePreKeysAdded: 0
      }

      const signed = state.signedPreKeyId === 0 ? null : await this.signedPreKeys.getSignedPreKey(state.signedPreKeyId).catch(() => null)
      if (signed == null || now - signed.timestamp() >= SIGNED_PREKEY_ROTATION) {
        const id = allocateId(state, 'nextSignedPreKeyId')
        const key = PrivateKey.generate()
        const signature = this.identity.privateKey.sign(key.getPublicKey().serialize())
        await this.signedPreKeys.saveSignedPreKey(id, SignedPreKeyRecord.new(id, now, key.getPublicKey(), key, signature))
        if (signed != null) state.retired.push({ kind: 'signed', id: signed.id(), retiredAt: now })
        state.signedPreKeyId = id
        report.signedPreKeyRotated = true
      }

      const kyber = state.kyberPreKeyId === 0 ? null : await this.kyberPreKeys.getKyberPreKey(state.kyberPreKeyId).catch(() => null)
      if (kyber == null || now - kyber.timestamp() >= SIGNED_PREKEY_ROTATION) {
        const id = allocateId(state, 'nextKyberPreKeyId')
        const keyPair = KEMKeyPair.generate()
        const signature = this.identity.privateKey.sign(keyPair.getPublicKey().serialize())
        await this.kyberPreKeys.saveKyberPreKey(id, KyberPreKeyRecord.new(id, now, keyPair, signature))
        if (kyber != null) state.retired.push({ kind: 'kyber', id: kyber.id(), retiredAt: now })
        state.kyberPreKeyId = id
        report.kyberPreKeyRotated = true
      }

      const expired = state.retired.filter(r => now - r.retiredAt >= RETIRED_PREKEY_GRACE)
      state.retired = state.retired.filter(r => now - r.retiredAt < RETIRED_PREKEY_GRACE)
      // state first: a crash after it leaves orphan records, never a current id without its record
      await this.writeState(state)
      for (const retired of expired) {
        if (retired.kind === 'signed') await this.signedPreKeys.removeSignedPreKey(retired.id)
        else await this.kyberPreKeys.removeKyberPreKey(retired.id)
        report.retiredPreKeysDeleted++
      }

      for await (const [id, issuedAt] of this.db.preKeysIssued.iterator()) {
        if (now - issuedAt >= ONE_TIME_PREKEY_MAX_AGE) {
          await this.preKeys.removePreKey(Number(id))
          report.staleOneTimePreKeysDeleted++
        }
      }

      report.oneTimePreKeysAdded = await this.topUpOneTimePreKeys(state)
      return report
    })
  }

  async oneTimePrekeyCounts (): Promise<OneTimePrekeyCounts> {
    const { stored, issued } = await this.scanOneTimePreKeys()
    return { available: stored.length - issued.size, issued: issued.size }
  }

  /** Picks an unissued one-time prekey and marks it issued; refills the pool when it runs low. */
  private async issueOneTimePreKey (state: LocalState): Promise<PreKeyRecord | undefined> {
    let { stored, issued } = await this.scanOneTimePreKeys()
    let available = stored.filter(id => !issued.has(id))
    if (available.length === 0) {
      await this.topUpOneTimePreKeys(state)
      ;({ stored, issued } = await this.scanOneTimePreKeys())
      available = stored.filter(id => !issued.has(id))
    }
    const id = available[0]
    // the store is full of issued, unused prekeys: serve the bundle without one
    if (id == null) return undefined
    await this.db.preKeysIssued.put(String(id), this.now())
    if (available.length - 1 < ONE_TIME_PREKEY_LOW_WATER) await this.topUpOneTimePreKeys(state)
    return await this.preKeys.getPreKey(id)
  }

  private async topUpOneTimePreKeys (state: LocalState): Promise<number> {
    const { stored, issued } = await this.scanOneTimePreKeys()
    const existing = new Set(stored)
    const wanted = Math.min(
      ONE_TIME_PREKEY_POOL_SIZE - (stored.length - issued.size),
      ONE_TIME_PREKEY_MAX_STORED - stored.length
    )
    if (wanted <= 0) return 0
    const batch = []
    for (let i = 0; i < wanted; i++) {
      let id = allocateId(state, 'nextPreKeyId')
      while (existing.has(id)) id = allocateId(state, 'nextPreKeyId')
      existing.add(id)
      const key = PrivateKey.generate()
      batch.push({ type: 'put' as const, key: String(id), value: PreKeyRecord.new(id, key.getPublicKey(), key).serialize() })
    }
    // ids first, so a crash never hands out the same id twice
    await this.writeState(state)
    await this.db.preKeys.batch(batch)
    return wanted
  }

  private async scanOneTimePreKeys (): Promise<{ stored: number[], issued: Set<number> }> {
    const stored = (await this.db.preKeys.keys().all()).map(Number)
    const issued = new Set((await this.db.preKeysIssued.keys().all()).map(Number))
    return { stored, issued }
  }

  private async readState (): Promise<LocalState> {
    const state = await this.db.state.get(STATE_KEY)
    if (state == null) throw new OctetError('INTERNAL', 'the crypto state is missing from the store')
    return state
  }

  private async writeState (state: LocalState): Promise<void> {
    await this.db.state.put(STATE_KEY, state)
  }
}

type IdCounter = 'nextPreKeyId' | 'nextSignedPreKeyId' | 'nextKyberPreKeyId'

function allocateId (state: LocalState, counter: IdCounter): number {
  const id = state[counter]
  state[counter] = id >= MAX_PREKEY_ID ? 1 : id + 1
  return id
}

function groupLock (groupId: string): string {
  return `\0group:${groupId}`
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

function fingerprint (localPeerId: string, localKey: PublicKey, remotePeerId: string, remoteKey: PublicKey): string {
  const encoder = new TextEncoder()
  return Fingerprint.new(FINGERPRINT_ITERATIONS, FINGERPRINT_VERSION,
    encoder.encode(localPeerId) as Uint8Array<ArrayBuffer>, localKey,
    encoder.encode(remotePeerId) as Uint8Array<ArrayBuffer>, remoteKey
  ).displayableFingerprint().toString()
}

/** Every error leaving the module is an OctetError; libsignal's is kept as the cause. */
function isUntrustedIdentity (err: unknown): boolean {
  return err instanceof LibSignalErrorBase && err.is(LibsignalErrorCode.UntrustedIdentity)
}

function translate (err: unknown, fallback: ErrorCode, message: string): OctetError {
  if (err instanceof OctetError) return err
  if (err instanceof LibSignalErrorBase) {
    if (err.is(LibsignalErrorCode.DuplicatedMessage)) {
      return new OctetError('REPLAYED_MESSAGE', `${message}: it was already received`, { cause: err })
    }
    if (err.is(LibsignalErrorCode.UntrustedIdentity)) {
      return new OctetError('IDENTITY_CHANGED', `${message}: its identity key changed; compare safety numbers, then accept the change`, { cause: err })
    }
    if (err.is(LibsignalErrorCode.InvalidSenderKeySession)) {
      return new OctetError('NO_SESSION', `${message}: no sender key for it`, { cause: err })
    }
  }
  return new OctetError(fallback, message, { cause: err })
}
