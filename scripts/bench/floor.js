// The least the messaging path can cost on this machine, measured beside it: what
// libsignal alone takes to encrypt and decrypt a 1 KiB text (in-memory stores, no octet
// code), and one awaited LevelDB batch (the unit of each durable write on the path).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as signal from '@signalapp/libsignal-client'
import { Level } from 'level'

const SAMPLES = 2000

class Sessions extends signal.SessionStore {
  records = new Map()
  async saveSession (address, record) { this.records.set(address.toString(), record) }
  async getSession (address) { return this.records.get(address.toString()) ?? null }
  async getExistingSessions (addresses) { return addresses.map(a => this.records.get(a.toString())) }
}

class Identities extends signal.IdentityKeyStore {
  constructor (keys) { super(); this.keys = keys; this.known = new Map() }
  async getIdentityKey () { return this.keys.privateKey }
  async getLocalRegistrationId () { return 1 }
  async saveIdentity (address, key) { this.known.set(address.name(), key); return signal.IdentityChange.NewOrUnchanged }
  async isTrustedIdentity () { return true }
  async getIdentity (address) { return this.known.get(address.name()) ?? null }
}

class PreKeys extends signal.PreKeyStore {
  records = new Map()
  async savePreKey (id, record) { this.records.set(id, record) }
  async getPreKey (id) { return this.records.get(id) }
  async removePreKey (id) { this.records.delete(id) }
}
class SignedPreKeys extends signal.SignedPreKeyStore {
  records = new Map()
  async saveSignedPreKey (id, record) { this.records.set(id, record) }
  async getSignedPreKey (id) { return this.records.get(id) }
}
class KyberPreKeys extends signal.KyberPreKeyStore {
  records = new Map()
  async saveKyberPreKey (id, record) { this.records.set(id, record) }
  async getKyberPreKey (id) { return this.records.get(id) }
  async markKyberPreKeyUsed () {}
}

function party (name) {
  const keys = signal.IdentityKeyPair.generate()
  return { keys, address: signal.ProtocolAddress.new(name, 1), sessions: new Sessions(), identities: new Identities(keys), preKeys: new PreKeys(), signed: new SignedPreKeys(), kyber: new KyberPreKeys() }
}

/** ms per signalEncrypt + signalDecrypt of 1 KiB in an established session. */
async function libsignalRoundTrip () {
  const a = party('a')
  const b = party('b')
  const pre = signal.PrivateKey.generate()
  const signedPre = signal.PrivateKey.generate()
  const kyber = signal.KEMKeyPair.generate()
  const signedSig = b.keys.privateKey.sign(signedPre.getPublicKey().serialize())
  const kyberSig = b.keys.privateKey.sign(kyber.getPublicKey().serialize())
  await b.preKeys.savePreKey(1, signal.PreKeyRecord.new(1, pre.getPublicKey(), pre))
  await b.signed.saveSignedPreKey(1, signal.SignedPreKeyRecord.new(1, Date.now(), signedPre.getPublicKey(), signedPre, signedSig))
  await b.kyber.saveKyberPreKey(1, signal.KyberPreKeyRecord.new(1, Date.now(), kyber, kyberSig))
  const bundle = signal.PreKeyBundle.new(1, 1, 1, pre.getPublicKey(), 1, signedPre.getPublicKey(), signedSig, b.keys.publicKey, 1, kyber.getPublicKey(), kyberSig)
  await signal.processPreKeyBundle(bundle, b.address, a.address, a.sessions, a.identities)
  const text = new Uint8Array(1024)
  const first = await signal.signalEncrypt(text, b.address, a.address, a.sessions, a.identities)
  await signal.signalDecryptPreKey(signal.PreKeySignalMessage.deserialize(first.serialize()), a.address, b.address, b.sessions, b.identities, b.preKeys, b.signed, b.kyber)
  const reply = await signal.signalEncrypt(text, a.address, b.address, b.sessions, b.identities)
  await signal.signalDecrypt(signal.SignalMessage.deserialize(reply.serialize()), b.address, a.address, a.sessions, a.identities)
  const t0 = performance.now()
  for (let i = 0; i < SAMPLES; i++) {
    const sealed = await signal.signalEncrypt(text, b.address, a.address, a.sessions, a.identities)
    await signal.signalDecrypt(signal.SignalMessage.deserialize(sealed.serialize()), a.address, b.address, b.sessions, b.identities)
  }
  return (performance.now() - t0) / SAMPLES
}

/** ms per awaited LevelDB batch of a message-sized record and a small one. */
async function levelBatch () {
  const dir = await mkdtemp(join(tmpdir(), 'octet-bench-floor-'))
  const db = new Level(dir, { valueEncoding: 'json' })
  try {
    await db.open()
    const record = { text: 'x'.repeat(1024), status: 'queued', at: Date.now() }
    const t0 = performance.now()
    for (let i = 0; i < SAMPLES; i++) await db.batch([{ type: 'put', key: `m${i}`, value: record }, { type: 'put', key: `s${i}`, value: { at: i } }])
    return (performance.now() - t0) / SAMPLES
  } finally {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  }
}

export async function pathFloor () {
  return { crypto: await libsignalRoundTrip(), write: await levelBatch() }
}
