import { afterEach, describe, expect, it } from 'vitest'
import { MessageType } from '../../../src/crypto/sessions.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../../../src/wire/prekeys.pb.js'
import { Nodes, codeOf, connect, str, text } from './helpers.js'

const nodes = new Nodes()
afterEach(async () => { await nodes.cleanup() })

describe('pairwise sessions', () => {
  it('Alice and Bob set up a session from a verified bundle and talk both ways', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    expect(await alice.crypto.hasSession(bob.peerId)).toBe(false)

    await connect(alice, bob)
    expect(await alice.crypto.hasSession(bob.peerId)).toBe(true)

    const first = await alice.crypto.encrypt(bob.peerId, text('hello bob'))
    expect(first.type).toBe(MessageType.PreKey)
    expect(str(await bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('hello bob')
    expect(await bob.crypto.hasSession(alice.peerId)).toBe(true)

    const reply = await bob.crypto.encrypt(alice.peerId, text('hi alice'))
    expect(reply.type).toBe(MessageType.Whisper)
    expect(str(await alice.crypto.decrypt(bob.peerId, reply.type, reply.body))).toBe('hi alice')

    // several in flight, delivered out of order
    const batch = await Promise.all([1, 2, 3].map(async i => await alice.crypto.encrypt(bob.peerId, text(`m${i}`))))
    for (const i of [2, 0, 1]) {
      const m = batch[i]!
      expect(str(await bob.crypto.decrypt(alice.peerId, m.type, m.body))).toBe(`m${i + 1}`)
    }
  })

  it('keeps sessions across closing and reopening the store', async () => {
    let alice = await nodes.create('alice')
    let bob = await nodes.create('bob')
    await connect(alice, bob)
    const first = await alice.crypto.encrypt(bob.peerId, text('before restart'))

    alice = await nodes.reopen(alice)
    bob = await nodes.reopen(bob)

    expect(str(await bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('before restart')
    const reply = await bob.crypto.encrypt(alice.peerId, text('after restart'))
    expect(str(await alice.crypto.decrypt(bob.peerId, reply.type, reply.body))).toBe('after restart')
    expect(await alice.crypto.identityStatus(bob.peerId)).toBe('trusted')

    const again = await alice.crypto.encrypt(bob.peerId, text('still going'))
    expect(again.type).toBe(MessageType.Whisper)
    expect(str(await bob.crypto.decrypt(alice.peerId, again.type, again.body))).toBe('still going')
  })

  it('refuses to encrypt without a session', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    expect(await codeOf(alice.crypto.encrypt(bob.peerId, text('x')))).toBe('NO_SESSION')
  })

  it('fails tampered, truncated, mistyped and garbage ciphertext with DECRYPT_FAILED', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)

    // a first (PreKey) message with one flipped ciphertext byte
    const first = await alice.crypto.encrypt(bob.peerId, text('first'))
    const tamperedFirst = first.body.slice()
    tamperedFirst[tamperedFirst.length - 20]! ^= 0x01
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, first.type, tamperedFirst))).toBe('DECRYPT_FAILED')
    expect(str(await bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('first')
    const reply = await bob.crypto.encrypt(alice.peerId, text('reply'))
    await alice.crypto.decrypt(bob.peerId, reply.type, reply.body)

    // an ordinary message: flipping any single bit of any byte is caught
    const m = await alice.crypto.encrypt(bob.peerId, text('secret'))
    expect(m.type).toBe(MessageType.Whisper)
    for (let i = 0; i < m.body.length; i++) {
      const tampered = m.body.slice()
      tampered[i]! ^= 1 << (i % 8)
      expect(await codeOf(bob.crypto.decrypt(alice.peerId, m.type, tampered))).toBe('DECRYPT_FAILED')
    }
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, m.type, m.body.subarray(0, 10)))).toBe('DECRYPT_FAILED')
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, MessageType.PreKey, m.body))).toBe('DECRYPT_FAILED')
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, 42, m.body))).toBe('DECRYPT_FAILED')
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, m.type, new Uint8Array(0)))).toBe('DECRYPT_FAILED')

    // none of the failures damaged the session
    expect(str(await bob.crypto.decrypt(alice.peerId, m.type, m.body))).toBe('secret')
  })

  it('reports an ordinary message from a peer without a session as NO_SESSION', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    await connect(alice, bob)
    const first = await alice.crypto.encrypt(bob.peerId, text('first'))
    await bob.crypto.decrypt(alice.peerId, first.type, first.body)
    const reply = await bob.crypto.encrypt(alice.peerId, text('reply'))
    await alice.crypto.decrypt(bob.peerId, reply.type, reply.body)
    const m = await alice.crypto.encrypt(bob.peerId, text('second'))
    expect(m.type).toBe(MessageType.Whisper)
    expect(await codeOf(carol.crypto.decrypt(alice.peerId, m.type, m.body))).toBe('NO_SESSION')
  })

  it('reports a message decrypted twice as REPLAYED_MESSAGE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)

    const first = await alice.crypto.encrypt(bob.peerId, text('one'))
    await bob.crypto.decrypt(alice.peerId, first.type, first.body)
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('REPLAYED_MESSAGE')

    const reply = await bob.crypto.encrypt(alice.peerId, text('two'))
    await alice.crypto.decrypt(bob.peerId, reply.type, reply.body)
    const third = await alice.crypto.encrypt(bob.peerId, text('three'))
    expect(third.type).toBe(MessageType.Whisper)
    await bob.crypto.decrypt(alice.peerId, third.type, third.body)
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, third.type, third.body))).toBe('REPLAYED_MESSAGE')
  })

  it('reports a replayed first message built from a DHT bundle (no one-time prekey) as REPLAYED_MESSAGE', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob, false)
    const first = await alice.crypto.encrypt(bob.peerId, text('one'))
    expect(first.type).toBe(MessageType.PreKey)
    await bob.crypto.decrypt(alice.peerId, first.type, first.body)
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('REPLAYED_MESSAGE')
  })

  it('serialises concurrent work on one session', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)
    const messages = await Promise.all(Array.from({ length: 20 }, async (_, i) => await alice.crypto.encrypt(bob.peerId, text(`m${i}`))))
    const plaintexts = await Promise.all(messages.map(async m => str(await bob.crypto.decrypt(alice.peerId, m.type, m.body))))
    expect(plaintexts).toEqual(messages.map((_, i) => `m${i}`))
    const replies = await Promise.all(Array.from({ length: 20 }, async (_, i) => await bob.crypto.encrypt(alice.peerId, text(`r${i}`))))
    const back = await Promise.all(replies.map(async m => str(await alice.crypto.decrypt(bob.peerId, m.type, m.body))))
    expect(back).toEqual(replies.map((_, i) => `r${i}`))
  })

  it('never lets a raw libsignal error escape', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)
    const m = await alice.crypto.encrypt(bob.peerId, text('x'))
    const err = await bob.crypto.decrypt(alice.peerId, m.type, m.body.subarray(1)).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'OctetError', code: 'DECRYPT_FAILED' })
    expect((err as Error).cause).toBeDefined()
  })
})

describe('identity', () => {
  it('does not take a forged identity key in a first message for an identity change', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(bob, alice) // Bob now trusts Alice's identity key
    await connect(alice, bob)
    const first = await alice.crypto.encrypt(bob.peerId, text('first'))

    // where Alice's identity key sits in her first message
    const aliceBundle = SignedPrekeyBundle.decode(await alice.crypto.createBundle({ withOneTimePrekey: false }))
    const identityKey = PrekeyBundle.decode(aliceBundle.body).identityKey
    const at = Buffer.from(first.body).indexOf(Buffer.from(identityKey))
    expect(at).toBeGreaterThan(0)

    for (let i = 1; i < identityKey.length; i++) {
      const forged = first.body.slice()
      forged[at + i]! ^= 0x01
      expect(await codeOf(bob.crypto.decrypt(alice.peerId, first.type, forged))).toBe('DECRYPT_FAILED')
    }
    expect(await bob.crypto.identityStatus(alice.peerId)).toBe('trusted')
    expect(str(await bob.crypto.decrypt(alice.peerId, first.type, first.body))).toBe('first')
  })

  it('takes a genuine first message under a new identity key as IDENTITY_CHANGED, pending acceptance', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)
    const hello = await alice.crypto.encrypt(bob.peerId, text('hello'))
    await bob.crypto.decrypt(alice.peerId, hello.type, hello.body)

    const alice2 = await nodes.create('alice2', { privateKey: alice.privateKey })
    await connect(alice2, bob)
    const m = await alice2.crypto.encrypt(bob.peerId, text('new install'))
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, m.type, m.body))).toBe('IDENTITY_CHANGED')
    expect(await bob.crypto.identityStatus(alice.peerId)).toBe('changed')
    expect(await bob.crypto.safetyNumber(alice.peerId, { pending: true }))
      .toBe(await alice2.crypto.safetyNumber(bob.peerId))

    expect(await bob.crypto.acceptIdentityChange(alice.peerId)).toBe(true)
    expect(str(await bob.crypto.decrypt(alice.peerId, m.type, m.body))).toBe('new install')
  })

  it('computes the same safety number on both sides, and refuses unknown peers', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    expect(await codeOf(alice.crypto.safetyNumber(bob.peerId))).toBe('NO_SESSION')
    expect(await alice.crypto.identityStatus(bob.peerId)).toBe('unknown')

    await connect(alice, bob)
    const first = await alice.crypto.encrypt(bob.peerId, text('hi'))
    await bob.crypto.decrypt(alice.peerId, first.type, first.body)

    const a = await alice.crypto.safetyNumber(bob.peerId)
    const b = await bob.crypto.safetyNumber(alice.peerId)
    expect(a).toMatch(/^\d{60}$/)
    expect(a).toBe(b)
  })

  it('detects a regenerated identity under the same PeerId, and accepts it on request', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)
    const hello = await alice.crypto.encrypt(bob.peerId, text('hello'))
    await bob.crypto.decrypt(alice.peerId, hello.type, hello.body)
    const oldNumber = await alice.crypto.safetyNumber(bob.peerId)

    // Bob loses his data dir but keeps his libp2p key: new Signal identity, same PeerId
    const bob2 = await nodes.create('bob2', { privateKey: bob.privateKey })
    expect(bob2.peerId).toBe(bob.peerId)

    // Alice fetches his new bundle: it is genuinely signed by his PeerId, yet the identity changed
    const bundle = await alice.crypto.verifyBundle(await bob2.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)
    expect(await codeOf(alice.crypto.startSession(bob.peerId, bundle))).toBe('IDENTITY_CHANGED')
    expect(await alice.crypto.identityStatus(bob.peerId)).toBe('changed')
    // the old key stays trusted until the user decides
    expect(await alice.crypto.safetyNumber(bob.peerId)).toBe(oldNumber)
    const pendingNumber = await alice.crypto.safetyNumber(bob.peerId, { pending: true })
    expect(pendingNumber).not.toBe(oldNumber)

    // Bob2 writes first; Alice refuses it too, and can decrypt it once she accepts
    await connect(bob2, alice)
    const fromBob2 = await bob2.crypto.encrypt(alice.peerId, text('it is me, new phone'))
    expect(await codeOf(alice.crypto.decrypt(bob.peerId, fromBob2.type, fromBob2.body))).toBe('IDENTITY_CHANGED')

    expect(await alice.crypto.acceptIdentityChange(bob.peerId)).toBe(true)
    expect(await alice.crypto.identityStatus(bob.peerId)).toBe('trusted')
    expect(await alice.crypto.acceptIdentityChange(bob.peerId)).toBe(false)
    expect(await alice.crypto.safetyNumber(bob.peerId)).toBe(pendingNumber)
    expect(await bob2.crypto.safetyNumber(alice.peerId)).toBe(pendingNumber)

    expect(str(await alice.crypto.decrypt(bob.peerId, fromBob2.type, fromBob2.body))).toBe('it is me, new phone')
    const reply = await alice.crypto.encrypt(bob.peerId, text('welcome back'))
    expect(str(await bob2.crypto.decrypt(alice.peerId, reply.type, reply.body))).toBe('welcome back')
  })

  it('after accepting via a bundle, a new session can be started', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob)
    const bob2 = await nodes.create('bob2', { privateKey: bob.privateKey })
    const bundleBytes = await bob2.crypto.createBundle({ withOneTimePrekey: false })
    expect(await codeOf(connect(alice, bob2, false))).toBe('IDENTITY_CHANGED')
    await alice.crypto.acceptIdentityChange(bob.peerId)
    // accepting drops the session that belonged to the old key
    expect(await alice.crypto.hasSession(bob.peerId)).toBe(false)
    await alice.crypto.startSession(bob.peerId, await alice.crypto.verifyBundle(bundleBytes, bob.peerId))
    const m = await alice.crypto.encrypt(bob.peerId, text('hi again'))
    expect(str(await bob2.crypto.decrypt(alice.peerId, m.type, m.body))).toBe('hi again')
  })
})
