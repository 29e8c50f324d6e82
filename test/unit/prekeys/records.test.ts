import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signBundle } from '../../../src/crypto/bundle.js'
import { BUNDLE_LIFETIME, MAX_BUNDLE_BYTES } from '../../../src/crypto/constants.js'
import { DAY } from '../../../src/units.js'
import { PREKEY_RECORD_NAMESPACE } from '../../../src/prekeys/constants.js'
import {
  peerIdOfRecordKey,
  prekeyRecordKey,
  prekeySelectors,
  prekeyValidators,
  selectPrekeyRecord,
  validatePrekeyRecord
} from '../../../src/prekeys/records.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../../../src/wire/prekeys.pb.js'
import { Clock, Nodes, codeOf } from '../crypto/helpers.js'

const nodes = new Nodes()
afterEach(async () => { await nodes.cleanup() })

const bodyOf = (bytes: Uint8Array): PrekeyBundle => PrekeyBundle.decode(SignedPrekeyBundle.decode(bytes).body)

describe('prekey record keys', () => {
  it('round-trips /octet-prekeys/<PeerId>', async () => {
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const key = prekeyRecordKey(peerId)
    expect(new TextDecoder().decode(key)).toBe(`/octet-prekeys/${peerId}`)
    expect(peerIdOfRecordKey(key)).toBe(peerId)
  })

  it('refuses keys that do not name exactly one PeerId in its canonical form', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const cases: Array<[string, Uint8Array]> = [
      ['another namespace', new TextEncoder().encode(`/pk/${id.toString()}`)],
      ['no PeerId', new TextEncoder().encode('/octet-prekeys/')],
      ['not a PeerId', new TextEncoder().encode('/octet-prekeys/hello')],
      ['a PeerId as a CID', new TextEncoder().encode(`/octet-prekeys/${id.toCID().toString()}`)],
      ['a trailing segment', new TextEncoder().encode(`/octet-prekeys/${id.toString()}/x`)],
      ['not UTF-8', new Uint8Array([0x2f, 0xff, 0xfe, 0x2f, 0x41])]
    ]
    for (const [name, key] of cases) {
      expect(() => peerIdOfRecordKey(key), name).toThrow(expect.objectContaining({ code: 'BAD_BUNDLE' }))
    }
  })
})

describe('the DHT validator of prekey records', () => {
  const validate = prekeyValidators[PREKEY_RECORD_NAMESPACE]!

  it('accepts a genuine bundle under its own PeerId', async () => {
    const bob = await nodes.create('bob', { clock: new Clock(Date.now()) })
    const bundle = await bob.crypto.createBundle({ withOneTimePrekey: false })
    await expect(validate(prekeyRecordKey(bob.peerId), bundle)).resolves.toBeUndefined()
  })

  it('refuses forged, foreign, expired and malformed records', async () => {
    const clock = new Clock(Date.now())
    const bob = await nodes.create('bob', { clock })
    const carol = await nodes.create('carol', { clock })
    const mallory = await generateKeyPair('Ed25519')
    const genuine = await bob.crypto.createBundle({ withOneTimePrekey: false })
    const body = bodyOf(genuine)
    const now = BigInt(Date.now())
    const cases: Array<[string, Uint8Array, string]> = [
      ['carol\'s bundle under bob\'s key', await carol.crypto.createBundle({ withOneTimePrekey: false }), 'BAD_BUNDLE'],
      ['bob\'s body signed by another key', await signBundle(body, mallory), 'BAD_SIGNATURE'],
      ['bob\'s body signed by carol\'s libp2p key', await signBundle(body, carol.privateKey), 'BAD_SIGNATURE'],
      ['an expired bundle signed by bob', await signBundle({ ...body, issuedAt: now - 20n * BigInt(DAY), expiresAt: now - 6n * BigInt(DAY) }, bob.privateKey), 'BAD_BUNDLE'],
      ['a bundle from the future signed by bob', await signBundle({ ...body, issuedAt: now + BigInt(DAY), expiresAt: now + BigInt(DAY + BUNDLE_LIFETIME) }, bob.privateKey), 'BAD_BUNDLE'],
      ['garbage', new Uint8Array([1, 2, 3, 4, 5]), 'BAD_BUNDLE'],
      ['empty', new Uint8Array(0), 'BAD_BUNDLE'],
      ['oversized', new Uint8Array(MAX_BUNDLE_BYTES + 1), 'BAD_BUNDLE']
    ]
    for (const [name, value, code] of cases) {
      expect(await codeOf(Promise.resolve(validate(prekeyRecordKey(bob.peerId), value))), name).toBe(code)
    }
    // and a genuine bundle under a key in another form
    expect(await codeOf(validatePrekeyRecord(new TextEncoder().encode(`/octet-prekeys/${bob.peerId}/`), genuine))).toBe('BAD_BUNDLE')
  })

  it('returns the verified bundle to callers that want it', async () => {
    const bob = await nodes.create('bob')
    const bundle = await bob.crypto.createBundle({ withOneTimePrekey: false })
    const verified = await validatePrekeyRecord(prekeyRecordKey(bob.peerId), bundle, bob.clock.now())
    expect(verified.peerId).toBe(bob.peerId)
    // the same bundle, checked after its lifetime
    expect(await codeOf(validatePrekeyRecord(prekeyRecordKey(bob.peerId), bundle, bob.clock.now() + BUNDLE_LIFETIME))).toBe('BAD_BUNDLE')
  })
})

describe('the DHT selector of prekey records', () => {
  it('picks the bundle issued last, wherever it is', async () => {
    const bob = await nodes.create('bob')
    const bundles: Uint8Array[] = []
    for (let i = 0; i < 3; i++) {
      bundles.push(await bob.crypto.createBundle({ withOneTimePrekey: false }))
      bob.clock.advance(1000)
    }
    const [first, second, third] = bundles as [Uint8Array, Uint8Array, Uint8Array]
    const key = prekeyRecordKey(bob.peerId)
    expect(selectPrekeyRecord(key, [first, second, third])).toBe(2)
    expect(selectPrekeyRecord(key, [third, first, second])).toBe(0)
    expect(selectPrekeyRecord(key, [first, third, second])).toBe(1)
    expect(prekeySelectors[PREKEY_RECORD_NAMESPACE]!(key, [second, first])).toBe(0)
  })

  it('ranks records that do not decode last and never throws', async () => {
    const bob = await nodes.create('bob')
    const bundle = await bob.crypto.createBundle({ withOneTimePrekey: false })
    const key = prekeyRecordKey(bob.peerId)
    expect(selectPrekeyRecord(key, [new Uint8Array([0xff, 0xff]), bundle, new Uint8Array(0)])).toBe(1)
    expect(selectPrekeyRecord(key, [new Uint8Array([0xff])])).toBe(0)
  })
})
