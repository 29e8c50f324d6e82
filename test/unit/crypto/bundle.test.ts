import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { OctetError } from '../../../src/errors.js'
import { signBundle } from '../../../src/crypto/bundle.js'
import { BUNDLE_LIFETIME, MAX_BUNDLE_BYTES } from '../../../src/crypto/constants.js'
import { MINUTE } from '../../../src/units.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../../../src/wire/prekeys.pb.js'
import { Nodes, codeOf } from './helpers.js'

const nodes = new Nodes()
afterEach(async () => { await nodes.cleanup() })

describe('prekey bundles', () => {
  it('verifies a genuine bundle, with and without a one-time prekey', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')

    const online = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)
    expect(online.peerId).toBe(bob.peerId)
    expect(online.preKeyId).toBeTypeOf('number')
    expect(online.expiresAt - online.issuedAt).toBe(BUNDLE_LIFETIME)

    const published = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)
    expect(published.preKeyId).toBeUndefined()
    expect(published.preKey).toBeUndefined()

    // a session works from the published bundle alone (signed + last-resort Kyber prekey)
    await alice.crypto.startSession(bob.peerId, published)
    const m = await alice.crypto.encrypt(bob.peerId, new Uint8Array([1, 2, 3]))
    expect(await bob.crypto.decrypt(alice.peerId, m.type, m.body)).toEqual(new Uint8Array([1, 2, 3]))
  })

  it('refuses a bundle with a flipped signature byte as BAD_SIGNATURE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const signed = SignedPrekeyBundle.decode(await bob.crypto.createBundle({ withOneTimePrekey: false }))
    for (const i of [0, 31, 63]) {
      const signature = signed.signature.slice()
      signature[i]! ^= 0x01
      const bytes = SignedPrekeyBundle.encode({ body: signed.body, signature })
      expect(await codeOf(alice.crypto.verifyBundle(bytes, bob.peerId))).toBe('BAD_SIGNATURE')
    }
    // a truncated signature, and none at all
    const short = SignedPrekeyBundle.encode({ body: signed.body, signature: signed.signature.subarray(0, 10) })
    expect(await codeOf(alice.crypto.verifyBundle(short, bob.peerId))).toBe('BAD_SIGNATURE')
    const none = SignedPrekeyBundle.encode({ body: signed.body })
    expect(await codeOf(alice.crypto.verifyBundle(none, bob.peerId))).toBe('BAD_SIGNATURE')
  })

  it('refuses a body changed after signing as BAD_SIGNATURE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const signed = SignedPrekeyBundle.decode(await bob.crypto.createBundle({ withOneTimePrekey: false }))
    const body = PrekeyBundle.decode(signed.body)
    const changed = PrekeyBundle.encode({ ...body, expiresAt: body.expiresAt + 1000n })
    const bytes = SignedPrekeyBundle.encode({ body: changed, signature: signed.signature })
    expect(await codeOf(alice.crypto.verifyBundle(bytes, bob.peerId))).toBe('BAD_SIGNATURE')
  })

  it('refuses a bundle signed by another key than the PeerId it names as BAD_SIGNATURE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const mallory = await generateKeyPair('Ed25519')
    const body = PrekeyBundle.decode(SignedPrekeyBundle.decode(await bob.crypto.createBundle({ withOneTimePrekey: false })).body)
    const forged = await signBundle(body, mallory)
    expect(await codeOf(alice.crypto.verifyBundle(forged, bob.peerId))).toBe('BAD_SIGNATURE')
  })

  it('refuses a bundle for another PeerId as BAD_BUNDLE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    const bundle = await bob.crypto.createBundle({ withOneTimePrekey: false })
    expect(await codeOf(alice.crypto.verifyBundle(bundle, carol.peerId))).toBe('BAD_BUNDLE')
  })

  it('refuses an expired bundle, and one issued in the future, as BAD_BUNDLE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const bundle = await bob.crypto.createBundle({ withOneTimePrekey: false })

    alice.clock.advance(BUNDLE_LIFETIME - MINUTE)
    await alice.crypto.verifyBundle(bundle, bob.peerId)
    alice.clock.advance(MINUTE)
    expect(await codeOf(alice.crypto.verifyBundle(bundle, bob.peerId))).toBe('BAD_BUNDLE')

    bob.clock.advance(BUNDLE_LIFETIME + 10 * MINUTE)
    const fromTheFuture = await bob.crypto.createBundle({ withOneTimePrekey: false })
    alice.clock.time = bob.clock.time - 10 * MINUTE
    expect(await codeOf(alice.crypto.verifyBundle(fromTheFuture, bob.peerId))).toBe('BAD_BUNDLE')
  })

  it('refuses bad Signal signatures inside a correctly libp2p-signed bundle as BAD_BUNDLE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const body = PrekeyBundle.decode(SignedPrekeyBundle.decode(await bob.crypto.createBundle({ withOneTimePrekey: true })).body)
    const flip = (bytes: Uint8Array, i: number): Uint8Array<ArrayBuffer> => {
      const copy = new Uint8Array(bytes)
      copy[i]! ^= 0x01
      return copy
    }
    const variants: Array<Partial<PrekeyBundle>> = [
      { signedPreKeySignature: flip(body.signedPreKeySignature, 5) },
      { kyberPreKeySignature: flip(body.kyberPreKeySignature, 5) },
      { signedPreKey: flip(body.signedPreKey, 5) },
      { kyberPreKey: flip(body.kyberPreKey, 100) },
      { identityKey: flip(body.identityKey, 5) },
      { identityKey: new Uint8Array(3) },
      { preKey: new Uint8Array([1, 2]) },
      { deviceId: 2 }
    ]
    for (const change of variants) {
      const bytes = await signBundle({ ...body, ...change }, bob.privateKey)
      expect(await codeOf(alice.crypto.verifyBundle(bytes, bob.peerId)), Object.keys(change)[0]).toBe('BAD_BUNDLE')
    }
    // the unchanged body, re-signed, is fine: the refusals above are the changes
    await alice.crypto.verifyBundle(await signBundle(body, bob.privateKey), bob.peerId)
  })

  it('refuses garbage, empty and oversized input as BAD_BUNDLE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    for (const bytes of [
      new Uint8Array(0),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]),
      new TextEncoder().encode('not a bundle at all'),
      new Uint8Array(MAX_BUNDLE_BYTES + 1)
    ]) {
      expect(await codeOf(alice.crypto.verifyBundle(bytes, bob.peerId))).toBe('BAD_BUNDLE')
    }
  })

  it('lets startSession take only bundles that came out of verifyBundle', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    const verified = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)
    expect(await codeOf(alice.crypto.startSession(bob.peerId, { ...verified }))).toBe('BAD_BUNDLE')
    expect(await codeOf(alice.crypto.startSession(carol.peerId, verified))).toBe('BAD_BUNDLE')
    expect(await alice.crypto.hasSession(bob.peerId)).toBe(false)
  })

  it('verifyBundle on arbitrary bytes only ever throws OctetError', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const genuine = SignedPrekeyBundle.decode(await bob.crypto.createBundle({ withOneTimePrekey: true }))
    const genuineBody = PrekeyBundle.decode(genuine.body)

    const check = async (bytes: Uint8Array): Promise<void> => {
      try {
        await alice.crypto.verifyBundle(bytes, bob.peerId)
      } catch (err) {
        if (!(err instanceof OctetError)) throw err
        expect(['BAD_BUNDLE', 'BAD_SIGNATURE']).toContain(err.code)
      }
    }

    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), check), { numRuns: 500, timeout: 2000 })
    // structured inputs get past the decoder and reach the later checks
    await fc.assert(fc.asyncProperty(
      fc.record({
        body: fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.constant(genuine.body)),
        signature: fc.oneof(fc.uint8Array({ maxLength: 128 }), fc.constant(genuine.signature))
      }),
      async ({ body, signature }) => { await check(SignedPrekeyBundle.encode({ body, signature })) }
    ), { numRuns: 300, timeout: 2000 })
    await fc.assert(fc.asyncProperty(
      fc.record({
        peerId: fc.oneof(fc.string(), fc.constant(bob.peerId)),
        registrationId: fc.nat(),
        deviceId: fc.nat(),
        identityKey: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(genuineBody.identityKey)),
        signedPreKey: fc.uint8Array({ maxLength: 40 }),
        kyberPreKey: fc.uint8Array({ maxLength: 1600 }),
        issuedAt: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        expiresAt: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
      }, { requiredKeys: [] }),
      async (change) => { await check(await signBundle({ ...genuineBody, ...change }, bob.privateKey)) }
    ), { numRuns: 300, timeout: 2000 })
  }, 60_000)
})
