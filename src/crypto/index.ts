/**
 * SignalCrypto: Signal-protocol end-to-end encryption for one node, the one
 * door into crypto/. It opens the stores and the parts, and hands each call to
 * the part that owns it: pairwise sessions (sessions.ts), group sender keys
 * (sender-keys.ts), our prekeys and bundles (local-prekeys.ts), identity and
 * safety numbers (identity.ts). Nothing from libsignal crosses this boundary:
 * callers see bytes, strings, numbers and OctetErrors.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey as Libp2pPrivateKey } from '@libp2p/interface'
import { OctetError } from '../errors.js'
import type { Store } from '../store/database.js'
import type { CommitPipeline } from '../store/commit.js'
import { verifyBundle } from './bundle.js'
import type { VerifiedBundle } from './bundle.js'
import { Identities, loadIdentityKeyPair } from './identity.js'
import type { IdentityStatus } from './identity.js'
import { LocalPrekeys, loadLocalState } from './local-prekeys.js'
import type { MaintenanceReport, OneTimePrekeyCounts } from './local-prekeys.js'
import { SenderKeys } from './sender-keys.js'
import { PairwiseSessions } from './sessions.js'
import type { EncryptedMessage } from './sessions.js'
import {
  CryptoSublevels,
  LevelIdentityKeyStore,
  LevelKyberPreKeyStore,
  LevelPreKeyStore,
  LevelSenderKeyStore,
  LevelSessionStore,
  LevelSignedPreKeyStore,
  addressOf
} from './stores.js'

export type { VerifiedBundle } from './bundle.js'

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

/** The parts SignalCrypto hands its calls to. */
interface Parts {
  sessions: PairwiseSessions
  senderKeys: SenderKeys
  prekeys: LocalPrekeys
  identities: Identities
}

export class SignalCrypto {
  private constructor (
    private readonly db: CryptoSublevels,
    private readonly parts: Parts,
    readonly peerId: string,
    private readonly now: () => number
  ) {}

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
    const identity = await loadIdentityKeyPair(db)
    const { registrationId } = await loadLocalState(db)

    const prekeyStores = {
      preKeys: new LevelPreKeyStore(db),
      signedPreKeys: new LevelSignedPreKeyStore(db),
      kyberPreKeys: new LevelKyberPreKeyStore(db, now)
    }
    const identities = new LevelIdentityKeyStore(db, identity, registrationId)
    const sessionStores = { ...prekeyStores, db, sessions: new LevelSessionStore(db), identities }
    const crypto = new SignalCrypto(db, {
      sessions: new PairwiseSessions(sessionStores, identity, registrationId, peerId, now),
      senderKeys: new SenderKeys(new LevelSenderKeyStore(db), addressOf(peerId)),
      prekeys: new LocalPrekeys(db, prekeyStores, { peerId, registrationId, identity, privateKey }, now),
      identities: new Identities(identities, identity, peerId)
    }, peerId, now)
    await crypto.maintain()
    // state given back by batches that failed while the disk was full goes to disk when space is back
    store.onHealthChange(health => {
      if (health.writable) void crypto.flushWrites().catch(err => options.onFlushError?.(err))
    })
    return crypto
  }

  /**
   * Resolves once every session and sender-key change made before the call
   * is on disk. Any commit through the pipeline does as much (see
   * CommitPipeline); this is for state that leaves the node without a
   * commit of its own (a sealed copy for a mailbox).
   */
  async flushWrites (): Promise<void> {
    await Promise.all([this.db.sessions.flush(), this.db.senderKeys.flush()])
  }

  // ------------------------------------------------- bundles (local-prekeys.ts, bundle.ts)

  /** An encoded SignedPrekeyBundle, with a one-time prekey (used up) or without (for the DHT). */
  async createBundle (options: { withOneTimePrekey: boolean }): Promise<Uint8Array> {
    return await this.parts.prekeys.createBundle(options)
  }

  /**
   * Checks a bundle received from the network: its size, encoding, PeerId,
   * libp2p signature (BAD_SIGNATURE), lifetime and Signal signatures (BAD_BUNDLE).
   */
  async verifyBundle (bytes: Uint8Array, expectedPeerId: string): Promise<VerifiedBundle> {
    return await verifyBundle(bytes, expectedPeerId, this.now())
  }

  /** Periodic upkeep: rotates the signed and Kyber prekeys, deletes stale ones, refills the pool. */
  async maintain (): Promise<MaintenanceReport> {
    return await this.parts.prekeys.maintain()
  }

  async oneTimePrekeyCounts (): Promise<OneTimePrekeyCounts> {
    return await this.parts.prekeys.oneTimePrekeyCounts()
  }

  // ------------------------------------------------- pairwise sessions (sessions.ts)

  /** Whether encrypt(peerId) can be used now, without a new bundle. */
  async hasSession (peerId: string): Promise<boolean> {
    return await this.parts.sessions.has(peerId)
  }

  /** IDENTITY_CHANGED when the bundle carries another identity key than the trusted one. */
  async startSession (peerId: string, bundle: VerifiedBundle): Promise<void> {
    await this.parts.sessions.start(peerId, bundle)
  }

  /** Trusts a verified bundle's identity key when none is known yet; false when one was. */
  async pinIdentity (peerId: string, bundle: VerifiedBundle): Promise<boolean> {
    return await this.parts.sessions.pinIdentity(peerId, bundle)
  }

  /** NO_SESSION when there is no usable session: fetch a bundle and startSession first. */
  async encrypt (peerId: string, plaintext: Uint8Array): Promise<EncryptedMessage> {
    return await this.parts.sessions.encrypt(peerId, plaintext)
  }

  /** DECRYPT_FAILED, REPLAYED_MESSAGE, IDENTITY_CHANGED or NO_SESSION when it does not decrypt. */
  async decrypt (peerId: string, type: number, body: Uint8Array): Promise<Uint8Array> {
    return await this.parts.sessions.decrypt(peerId, type, body)
  }

  /** Trusts the key peerId changed to and drops the old session; false when none was pending. */
  async acceptIdentityChange (peerId: string): Promise<boolean> {
    return await this.parts.sessions.acceptIdentityChange(peerId)
  }

  /** Forgets the session with peerId; the identity key stays trusted. */
  async resetSession (peerId: string): Promise<void> {
    await this.parts.sessions.reset(peerId)
  }

  // ------------------------------------------------- identity (identity.ts)

  async identityStatus (peerId: string): Promise<IdentityStatus> {
    return await this.parts.identities.status(peerId)
  }

  /** The safety number both sides compare; with `pending`, the one for a changed key. */
  async safetyNumber (peerId: string, options: { pending?: boolean } = {}): Promise<string> {
    return await this.parts.identities.safetyNumber(peerId, options)
  }

  /** Seals envelope bytes for peerId's mailbox; NO_SESSION when no key of peerId is known. */
  async sealFor (peerId: string, envelope: Uint8Array): Promise<Uint8Array> {
    return await this.parts.identities.sealFor(peerId, envelope)
  }

  /** Opens an envelope sealed to us (see seal.ts). */
  unseal (sealed: Uint8Array): Uint8Array {
    return this.parts.identities.unseal(sealed)
  }

  // ------------------------------------------------- groups (sender-keys.ts)

  /** Our sender key for groupId, to send to each member over its pairwise session. */
  async createSenderKeyDistribution (groupId: string): Promise<Uint8Array> {
    return await this.parts.senderKeys.createDistribution(groupId)
  }

  async processSenderKeyDistribution (peerId: string, groupId: string, bytes: Uint8Array): Promise<void> {
    await this.parts.senderKeys.processDistribution(peerId, groupId, bytes)
  }

  async groupEncrypt (groupId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return await this.parts.senderKeys.encrypt(groupId, plaintext)
  }

  /** NO_SESSION when peerId's sender key for the group has not been processed. */
  async groupDecrypt (peerId: string, groupId: string, ciphertext: Uint8Array): Promise<Uint8Array> {
    return await this.parts.senderKeys.decrypt(peerId, groupId, ciphertext)
  }
}
