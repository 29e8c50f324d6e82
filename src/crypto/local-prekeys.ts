/**
 * Our own prekeys: the signed and Kyber prekeys and their rotation, the pool
 * of one-time prekeys, the id counters (LocalState) and the bundles made from
 * them. Owns the 'signal-state' record; sessions.ts only reads the prekey
 * stores (through libsignal) when a first message consumes one.
 */
import { randomInt } from 'node:crypto'
import { KEMKeyPair, KyberPreKeyRecord, PreKeyRecord, PrivateKey, SignedPreKeyRecord } from '@signalapp/libsignal-client'
import type { IdentityKeyPair } from '@signalapp/libsignal-client'
import type { PrivateKey as Libp2pPrivateKey } from '@libp2p/interface'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import { signBundle } from './bundle.js'
import {
  BUNDLE_LIFETIME,
  MAX_PREKEY_ID,
  ONE_TIME_PREKEY_LOW_WATER,
  ONE_TIME_PREKEY_MAX_AGE,
  ONE_TIME_PREKEY_MAX_STORED,
  ONE_TIME_PREKEY_POOL_SIZE,
  RETIRED_PREKEY_GRACE,
  SIGNAL_DEVICE_ID,
  SIGNED_PREKEY_ROTATION
} from './constants.js'
import type { CryptoSublevels, LevelKyberPreKeyStore, LevelPreKeyStore, LevelSignedPreKeyStore, LocalState } from './stores.js'

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

/** The libsignal stores of our prekeys, shared with the sessions that consume them. */
export interface PrekeyStores {
  preKeys: LevelPreKeyStore
  signedPreKeys: LevelSignedPreKeyStore
  kyberPreKeys: LevelKyberPreKeyStore
}

/** Who signs and is named in our bundles. */
export interface BundleSigner {
  peerId: string
  registrationId: number
  identity: IdentityKeyPair
  /** the libp2p key of peerId */
  privateKey: Libp2pPrivateKey
}

const STATE_KEY = 'local'

/** The local state, created with fresh random counters on first use. */
export async function loadLocalState (db: CryptoSublevels): Promise<LocalState> {
  const stored = await db.state.get(STATE_KEY)
  if (stored != null) return stored
  const state: LocalState = {
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
  return state
}

export class LocalPrekeys {
  /** the state record and the pool change one operation at a time */
  private readonly lock = new KeyedLock()

  constructor (
    private readonly db: CryptoSublevels,
    private readonly stores: PrekeyStores,
    private readonly signer: BundleSigner,
    private readonly now: () => number
  ) {}

  /**
   * An encoded SignedPrekeyBundle. With a one-time prekey for a peer that
   * asked over /octet/prekeys/1.0.0 (each such bundle uses one up); without
   * for the copy published in the DHT, which anyone may fetch any number of times.
   */
  async createBundle (options: { withOneTimePrekey: boolean }): Promise<Uint8Array> {
    return await this.lock.run(STATE_KEY, async () => {
      const state = await this.readState()
      const signed = await this.stores.signedPreKeys.getSignedPreKey(state.signedPreKeyId)
      const kyber = await this.stores.kyberPreKeys.getKyberPreKey(state.kyberPreKeyId)
      const oneTime = options.withOneTimePrekey ? await this.issueOneTimePreKey(state) : undefined
      const now = this.now()
      return await signBundle({
        peerId: this.signer.peerId,
        registrationId: this.signer.registrationId,
        deviceId: SIGNAL_DEVICE_ID,
        identityKey: this.signer.identity.publicKey.serialize(),
        signedPreKeyId: signed.id(),
        signedPreKey: signed.publicKey().serialize(),
        signedPreKeySignature: signed.signature(),
        kyberPreKeyId: kyber.id(),
        kyberPreKey: kyber.publicKey().serialize(),
        kyberPreKeySignature: kyber.signature(),
        ...(oneTime == null ? {} : { preKeyId: oneTime.id(), preKey: oneTime.publicKey().serialize() }),
        issuedAt: BigInt(now),
        expiresAt: BigInt(now + BUNDLE_LIFETIME)
      }, this.signer.privateKey)
    })
  }

  /**
   * Periodic upkeep (at start and then every hour or so): replaces the signed
   * and Kyber prekeys once they are SIGNED_PREKEY_ROTATION old, deletes the
   * ones retired more than RETIRED_PREKEY_GRACE ago and one-time prekeys
   * handed out but unused for ONE_TIME_PREKEY_MAX_AGE, and refills the pool.
   */
  async maintain (): Promise<MaintenanceReport> {
    return await this.lock.run(STATE_KEY, async () => {
      const { signedPreKeys, kyberPreKeys, preKeys } = this.stores
      const identityKey = this.signer.identity.privateKey
      const state = await this.readState()
      const now = this.now()
      const report: MaintenanceReport = {
        signedPreKeyRotated: false,
        kyberPreKeyRotated: false,
        retiredPreKeysDeleted: 0,
        staleOneTimePreKeysDeleted: 0,
        oneTimePreKeysAdded: 0
      }

      const signed = state.signedPreKeyId === 0 ? null : await signedPreKeys.getSignedPreKey(state.signedPreKeyId).catch(() => null)
      if (signed == null || now - signed.timestamp() >= SIGNED_PREKEY_ROTATION) {
        const id = allocateId(state, 'nextSignedPreKeyId')
        const key = PrivateKey.generate()
        const signature = identityKey.sign(key.getPublicKey().serialize())
        await signedPreKeys.saveSignedPreKey(id, SignedPreKeyRecord.new(id, now, key.getPublicKey(), key, signature))
        if (signed != null) state.retired.push({ kind: 'signed', id: signed.id(), retiredAt: now })
        state.signedPreKeyId = id
        report.signedPreKeyRotated = true
      }

      const kyber = state.kyberPreKeyId === 0 ? null : await kyberPreKeys.getKyberPreKey(state.kyberPreKeyId).catch(() => null)
      if (kyber == null || now - kyber.timestamp() >= SIGNED_PREKEY_ROTATION) {
        const id = allocateId(state, 'nextKyberPreKeyId')
        const keyPair = KEMKeyPair.generate()
        const signature = identityKey.sign(keyPair.getPublicKey().serialize())
        await kyberPreKeys.saveKyberPreKey(id, KyberPreKeyRecord.new(id, now, keyPair, signature))
        if (kyber != null) state.retired.push({ kind: 'kyber', id: kyber.id(), retiredAt: now })
        state.kyberPreKeyId = id
        report.kyberPreKeyRotated = true
      }

      const expired = state.retired.filter(r => now - r.retiredAt >= RETIRED_PREKEY_GRACE)
      state.retired = state.retired.filter(r => now - r.retiredAt < RETIRED_PREKEY_GRACE)
      // state first: a crash after it leaves orphan records, never a current id without its record
      await this.writeState(state)
      for (const retired of expired) {
        if (retired.kind === 'signed') await signedPreKeys.removeSignedPreKey(retired.id)
        else await kyberPreKeys.removeKyberPreKey(retired.id)
        report.retiredPreKeysDeleted++
      }

      for await (const [id, issuedAt] of this.db.preKeysIssued.iterator()) {
        if (now - issuedAt >= ONE_TIME_PREKEY_MAX_AGE) {
          await preKeys.removePreKey(Number(id))
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
    return await this.stores.preKeys.getPreKey(id)
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
