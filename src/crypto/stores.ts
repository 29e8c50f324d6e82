import {
  Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyRecord,
  PreKeyStore,
  ProtocolAddress,
  PublicKey,
  SenderKeyRecord,
  SenderKeyStore,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore
} from '@signalapp/libsignal-client'
import type { PrivateKey, Uuid } from '@signalapp/libsignal-client'
import { CachedRecords, WriteBehindRecords, type KeyValue, type RecordCodec, type WriteBehindCommitter } from '../store/cache.js'
import type { BytesSublevel, RecordSublevel, Store } from '../store/database.js'
import { SIGNAL_DEVICE_ID } from './constants.js'

/**
 * libsignal's store interfaces, persisted in level sublevels of octet's Store.
 * Records are kept in libsignal's own serialisation so that a libsignal
 * upgrade, not octet, owns their format.
 */

/** libsignal wants ArrayBuffer-backed arrays; level and Node may hand out other views. */
export function owned (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes)
}

export function addressOf (peerId: string): ProtocolAddress {
  return ProtocolAddress.new(peerId, SIGNAL_DEVICE_ID)
}

function addressKey (address: ProtocolAddress): string {
  return `${address.name()}.${address.deviceId()}`
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Bookkeeping that is octet's, not libsignal's: ids, the current prekeys, what was retired when. */
export interface LocalState {
  registrationId: number
  nextPreKeyId: number
  nextSignedPreKeyId: number
  nextKyberPreKeyId: number
  signedPreKeyId: number
  kyberPreKeyId: number
  retired: RetiredPrekey[]
}

export interface RetiredPrekey {
  kind: 'signed' | 'kyber'
  id: number
  retiredAt: number
}

const SESSION_CODEC: RecordCodec<SessionRecord> = {
  encode: record => record.serialize(),
  decode: bytes => SessionRecord.deserialize(owned(bytes))
}

const SENDER_KEY_CODEC: RecordCodec<SenderKeyRecord> = {
  encode: record => record.serialize(),
  decode: bytes => SenderKeyRecord.deserialize(owned(bytes))
}

/** Every sublevel the crypto module owns, opened once. */
export class CryptoSublevels {
  readonly local: BytesSublevel
  readonly state: RecordSublevel<LocalState>
  /** read and written on every message: cached, written behind (see WriteBehindRecords) */
  readonly sessions: WriteBehindRecords<SessionRecord>
  readonly identities: KeyValue<Uint8Array>
  readonly pendingIdentities: BytesSublevel
  readonly preKeys: BytesSublevel
  /** one-time prekey id → when it was handed out in a bundle */
  readonly preKeysIssued: RecordSublevel<number>
  readonly signedPreKeys: BytesSublevel
  readonly kyberPreKeys: BytesSublevel
  /** `${kyberPreKeyId}/${baseKeyHex}` → when it was used */
  readonly kyberUsed: RecordSublevel<number>
  /** read and written on every group message: cached, written behind like sessions */
  readonly senderKeys: WriteBehindRecords<SenderKeyRecord>

  /**
   * `pipeline`: sessions and sender keys are written behind through it (see
   * WriteBehindRecords); without, they are written before each change returns.
   * `onFlushError`: a write-behind flush failed (its writes wait for the next batch).
   */
  constructor (store: Store, pipeline?: WriteBehindCommitter, onFlushError?: (err: unknown) => void) {
    this.local = store.bytes('signal-local')
    this.state = store.records<LocalState>('signal-state')
    this.sessions = new WriteBehindRecords(store.bytes('signal-sessions'), SESSION_CODEC, pipeline, onFlushError)
    this.identities = new CachedRecords<Uint8Array>(store.bytes('signal-identities'))
    this.pendingIdentities = store.bytes('signal-identities-pending')
    this.preKeys = store.bytes('signal-prekeys')
    this.preKeysIssued = store.records<number>('signal-prekeys-issued')
    this.signedPreKeys = store.bytes('signal-signed-prekeys')
    this.kyberPreKeys = store.bytes('signal-kyber-prekeys')
    this.kyberUsed = store.records<number>('signal-kyber-used')
    this.senderKeys = new WriteBehindRecords(store.bytes('signal-sender-keys'), SENDER_KEY_CODEC, pipeline, onFlushError)
  }
}

export class LevelSessionStore extends SessionStore {
  constructor (private readonly db: CryptoSublevels) { super() }

  async saveSession (address: ProtocolAddress, record: SessionRecord): Promise<void> {
    await this.db.sessions.put(addressKey(address), record)
  }

  async getSession (address: ProtocolAddress): Promise<SessionRecord | null> {
    return await this.db.sessions.get(addressKey(address)) ?? null
  }

  async getExistingSessions (addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    const records: SessionRecord[] = []
    for (const address of addresses) {
      const record = await this.getSession(address)
      if (record == null) throw new Error(`no session for ${addressKey(address)}`)
      records.push(record)
    }
    return records
  }

  async deleteSession (address: ProtocolAddress): Promise<void> {
    await this.db.sessions.del(addressKey(address))
  }
}

/**
 * Trust on first use. Identities are kept per PeerId (the address name): a
 * node is one device, and a key change must be noticed whatever device id a
 * message claims.
 */
export class LevelIdentityKeyStore extends IdentityKeyStore {
  constructor (
    private readonly db: CryptoSublevels,
    private readonly identity: IdentityKeyPair,
    private readonly registrationId: number
  ) { super() }

  /** identity keys read on every message, decoded once per stored value */
  private readonly decoded = new WeakMap<Uint8Array, PublicKey>()

  async getIdentityKey (): Promise<PrivateKey> {
    return this.identity.privateKey
  }

  override async getIdentityKeyPair (): Promise<IdentityKeyPair> {
    return this.identity
  }

  async getLocalRegistrationId (): Promise<number> {
    return this.registrationId
  }

  async saveIdentity (address: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const known = await this.getIdentity(address)
    if (known == null) {
      await this.db.identities.put(address.name(), key.serialize())
      return IdentityChange.NewOrUnchanged
    }
    // A different key is never saved here (isTrustedIdentity refuses it
    // first): only acceptPendingIdentity replaces a trusted key.
    return IdentityChange.NewOrUnchanged
  }

  /**
   * Pure: the key libsignal is shown here may come from an unauthenticated
   * first message, so it is not recorded. The caller records a changed key
   * as pending once it has proof the key is really in use (recordPendingIdentity).
   */
  async isTrustedIdentity (address: ProtocolAddress, key: PublicKey, _direction: Direction): Promise<boolean> {
    const known = await this.getIdentity(address)
    return known == null || known.equals(key)
  }

  async getIdentity (address: ProtocolAddress): Promise<PublicKey | null> {
    const bytes = await this.db.identities.get(address.name())
    if (bytes == null) return null
    // the cache below hands out the same bytes for a key until it changes: decode them once
    let key = this.decoded.get(bytes)
    if (key == null) {
      key = PublicKey.deserialize(owned(bytes))
      this.decoded.set(bytes, key)
    }
    return key
  }

  async getPendingIdentity (address: ProtocolAddress): Promise<PublicKey | null> {
    const bytes = await this.db.pendingIdentities.get(address.name())
    return bytes == null ? null : PublicKey.deserialize(owned(bytes))
  }

  /** A key other than the trusted one, waiting for the user to accept it. */
  async recordPendingIdentity (address: ProtocolAddress, key: PublicKey): Promise<void> {
    const known = await this.getIdentity(address)
    if (known != null && known.equals(key)) return
    await this.db.pendingIdentities.put(address.name(), key.serialize())
  }

  /** Makes the pending key the trusted one. Returns false when nothing was pending. */
  async acceptPendingIdentity (address: ProtocolAddress): Promise<boolean> {
    const pending = await this.db.pendingIdentities.get(address.name())
    if (pending == null) return false
    await this.db.identities.put(address.name(), pending)
    await this.db.pendingIdentities.del(address.name())
    return true
  }
}

export class LevelPreKeyStore extends PreKeyStore {
  constructor (private readonly db: CryptoSublevels) { super() }

  async savePreKey (id: number, record: PreKeyRecord): Promise<void> {
    await this.db.preKeys.put(String(id), record.serialize())
  }

  async getPreKey (id: number): Promise<PreKeyRecord> {
    const bytes = await this.db.preKeys.get(String(id))
    if (bytes == null) throw new Error(`no one-time prekey ${id}`)
    return PreKeyRecord.deserialize(owned(bytes))
  }

  async removePreKey (id: number): Promise<void> {
    await this.db.preKeys.del(String(id))
    await this.db.preKeysIssued.del(String(id))
  }
}

export class LevelSignedPreKeyStore extends SignedPreKeyStore {
  constructor (private readonly db: CryptoSublevels) { super() }

  async saveSignedPreKey (id: number, record: SignedPreKeyRecord): Promise<void> {
    await this.db.signedPreKeys.put(String(id), record.serialize())
  }

  async getSignedPreKey (id: number): Promise<SignedPreKeyRecord> {
    const bytes = await this.db.signedPreKeys.get(String(id))
    if (bytes == null) throw new Error(`no signed prekey ${id}`)
    return SignedPreKeyRecord.deserialize(owned(bytes))
  }

  async removeSignedPreKey (id: number): Promise<void> {
    await this.db.signedPreKeys.del(String(id))
  }
}

/**
 * octet only uses last-resort Kyber prekeys (no one-time Kyber keys), so a
 * Kyber prekey is never deleted on use. Instead each (Kyber prekey, base key)
 * pair is accepted once, which is what stops a recorded first message from
 * being replayed to set up a second session.
 */
export class LevelKyberPreKeyStore extends KyberPreKeyStore {
  constructor (private readonly db: CryptoSublevels, private readonly now: () => number) { super() }

  async saveKyberPreKey (id: number, record: KyberPreKeyRecord): Promise<void> {
    await this.db.kyberPreKeys.put(String(id), record.serialize())
  }

  async getKyberPreKey (id: number): Promise<KyberPreKeyRecord> {
    const bytes = await this.db.kyberPreKeys.get(String(id))
    if (bytes == null) throw new Error(`no Kyber prekey ${id}`)
    return KyberPreKeyRecord.deserialize(owned(bytes))
  }

  async markKyberPreKeyUsed (id: number, _signedPreKeyId: number, baseKey: PublicKey): Promise<void> {
    const key = `${id}/${hex(baseKey.serialize())}`
    if (await this.db.kyberUsed.get(key) != null) {
      throw new Error(`Kyber prekey ${id} already used with this base key`)
    }
    await this.db.kyberUsed.put(key, this.now())
  }

  async removeKyberPreKey (id: number): Promise<void> {
    await this.db.kyberPreKeys.del(String(id))
    // '0' is the character after '/', so this range is exactly the keys `${id}/…`
    await this.db.kyberUsed.clear({ gte: `${id}/`, lt: `${id}0` })
  }
}

export class LevelSenderKeyStore extends SenderKeyStore {
  constructor (private readonly db: CryptoSublevels) { super() }

  async saveSenderKey (sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    await this.db.senderKeys.put(`${addressKey(sender)}/${distributionId}`, record)
  }

  async getSenderKey (sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    return await this.db.senderKeys.get(`${addressKey(sender)}/${distributionId}`) ?? null
  }
}

/**
 * Stores for a trial decryption whose outcome must leave no trace: no
 * sessions but the ones it creates, any identity trusted, prekeys read but
 * never consumed. A first message that decrypts here was made by the holder
 * of the identity key it carries, which is what makes that key worth
 * showing to the user as a pending identity change.
 */
export function trialStores (db: CryptoSublevels, identity: IdentityKeyPair, registrationId: number): {
  sessions: SessionStore
  identities: IdentityKeyStore
  preKeys: PreKeyStore
  signedPreKeys: SignedPreKeyStore
  kyberPreKeys: KyberPreKeyStore
  /** the identity key the decrypted message carried (libsignal saves it only on success) */
  savedIdentity: () => PublicKey | undefined
} {
  const sessions = new Map<string, SessionRecord>()
  let saved: PublicKey | undefined
  return {
    savedIdentity: () => saved,
    sessions: new (class extends SessionStore {
      async saveSession (address: ProtocolAddress, record: SessionRecord): Promise<void> {
        sessions.set(addressKey(address), record)
      }

      async getSession (address: ProtocolAddress): Promise<SessionRecord | null> {
        return sessions.get(addressKey(address)) ?? null
      }

      async getExistingSessions (addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
        return addresses.flatMap(a => sessions.get(addressKey(a)) ?? [])
      }
    })(),
    identities: new (class extends IdentityKeyStore {
      async getIdentityKey (): Promise<PrivateKey> { return identity.privateKey }
      async getLocalRegistrationId (): Promise<number> { return registrationId }
      async saveIdentity (_address: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
        saved = key
        return IdentityChange.NewOrUnchanged
      }

      async isTrustedIdentity (): Promise<boolean> { return true }
      async getIdentity (): Promise<PublicKey | null> { return null }
    })(),
    preKeys: new (class extends LevelPreKeyStore {
      override async savePreKey (): Promise<void> {}
      override async removePreKey (): Promise<void> {}
    })(db),
    signedPreKeys: new LevelSignedPreKeyStore(db),
    kyberPreKeys: new (class extends LevelKyberPreKeyStore {
      override async saveKyberPreKey (): Promise<void> {}
      override async markKyberPreKeyUsed (): Promise<void> {}
    })(db, () => 0)
  }
}
