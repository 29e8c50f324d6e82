import { afterEach, describe, expect, it } from 'vitest'
import {
  ONE_TIME_PREKEY_LOW_WATER,
  ONE_TIME_PREKEY_MAX_AGE,
  ONE_TIME_PREKEY_POOL_SIZE,
  RETIRED_PREKEY_GRACE,
  SIGNED_PREKEY_ROTATION
} from '../../../src/crypto/constants.js'
import { DAY } from '../../../src/units.js'
import { Nodes, codeOf, connect, str, text } from './helpers.js'

const nodes = new Nodes()
afterEach(async () => { await nodes.cleanup() })

describe('one-time prekeys', () => {
  it('starts with a full pool, hands each prekey out once, and consumes it on first use', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    expect(await bob.crypto.oneTimePrekeyCounts()).toEqual({ available: ONE_TIME_PREKEY_POOL_SIZE, issued: 0 })

    const a = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)
    const b = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)
    expect(a.preKeyId).not.toBe(b.preKeyId)
    expect(await bob.crypto.oneTimePrekeyCounts()).toEqual({ available: ONE_TIME_PREKEY_POOL_SIZE - 2, issued: 2 })

    // the DHT bundle does not use one up
    await bob.crypto.createBundle({ withOneTimePrekey: false })
    expect((await bob.crypto.oneTimePrekeyCounts()).available).toBe(ONE_TIME_PREKEY_POOL_SIZE - 2)

    await alice.crypto.startSession(bob.peerId, a)
    const m = await alice.crypto.encrypt(bob.peerId, text('hi'))
    await bob.crypto.decrypt(alice.peerId, m.type, m.body)
    expect(await bob.crypto.oneTimePrekeyCounts()).toEqual({ available: ONE_TIME_PREKEY_POOL_SIZE - 2, issued: 1 })
  })

  it('never hands out one prekey twice, even to concurrent fetches', async () => {
    const bob = await nodes.create('bob')
    const alice = await nodes.create('alice')
    const bundles = await Promise.all(Array.from({ length: 30 }, async () =>
      await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)))
    expect(new Set(bundles.map(b => b.preKeyId)).size).toBe(30)
  })

  it('replenishes the pool when it runs low', async () => {
    const bob = await nodes.create('bob')
    const seen = new Set<number>()
    const alice = await nodes.create('alice')
    const fetches = ONE_TIME_PREKEY_POOL_SIZE - ONE_TIME_PREKEY_LOW_WATER + 5
    for (let i = 0; i < fetches; i++) {
      const bundle = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: true }), bob.peerId)
      expect(bundle.preKeyId).toBeTypeOf('number')
      expect(seen.has(bundle.preKeyId!)).toBe(false)
      seen.add(bundle.preKeyId!)
    }
    const counts = await bob.crypto.oneTimePrekeyCounts()
    expect(counts.issued).toBe(fetches)
    expect(counts.available).toBeGreaterThanOrEqual(ONE_TIME_PREKEY_LOW_WATER)
  })

  it('drops prekeys handed out long ago and never used, and refills', async () => {
    const bob = await nodes.create('bob')
    for (let i = 0; i < 10; i++) await bob.crypto.createBundle({ withOneTimePrekey: true })
    expect((await bob.crypto.oneTimePrekeyCounts()).issued).toBe(10)
    bob.clock.advance(ONE_TIME_PREKEY_MAX_AGE)
    const report = await bob.crypto.maintain()
    expect(report.staleOneTimePreKeysDeleted).toBe(10)
    expect(await bob.crypto.oneTimePrekeyCounts()).toEqual({ available: ONE_TIME_PREKEY_POOL_SIZE, issued: 0 })
  })
})

describe('rotation', () => {
  it('keeps the signed and Kyber prekeys until the rotation period has passed', async () => {
    const bob = await nodes.create('bob')
    bob.clock.advance(SIGNED_PREKEY_ROTATION - 1)
    const report = await bob.crypto.maintain()
    expect(report.signedPreKeyRotated).toBe(false)
    expect(report.kyberPreKeyRotated).toBe(false)
    expect(report.oneTimePreKeysAdded).toBe(0)
  })

  it('replaces the signed prekey after the period, yet a session set up before still decrypts', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    const before = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)

    // Alice writes from the old bundle; the message sits in a mailbox while Bob rotates
    await alice.crypto.startSession(bob.peerId, before)
    const late = await alice.crypto.encrypt(bob.peerId, text('sent before the rotation'))
    // Carol's bundle came from the DHT before the rotation too, her first message arrives after
    await connect(carol, bob, false)
    const later = await carol.crypto.encrypt(bob.peerId, text('from an old DHT bundle'))

    for (const node of [alice, bob, carol]) node.clock.advance(SIGNED_PREKEY_ROTATION)
    const report = await bob.crypto.maintain()
    expect(report.signedPreKeyRotated).toBe(true)
    expect(report.kyberPreKeyRotated).toBe(true)

    const after = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)
    expect(after.signedPreKeyId).not.toBe(before.signedPreKeyId)
    expect(after.kyberPreKeyId).not.toBe(before.kyberPreKeyId)
    expect(after.signedPreKey).not.toEqual(before.signedPreKey)

    expect(str(await bob.crypto.decrypt(alice.peerId, late.type, late.body))).toBe('sent before the rotation')
    const reply = await bob.crypto.encrypt(alice.peerId, text('got it'))
    expect(str(await alice.crypto.decrypt(bob.peerId, reply.type, reply.body))).toBe('got it')

    // rotation survives a restart, and new sessions use the new prekeys
    const bob2 = await nodes.reopen(bob)
    expect(str(await bob2.crypto.decrypt(carol.peerId, later.type, later.body))).toBe('from an old DHT bundle')
    const dave = await nodes.create('dave', { clock: bob.clock })
    await connect(dave, bob2, false)
    const m = await dave.crypto.encrypt(bob.peerId, text('new bundle'))
    expect(str(await bob2.crypto.decrypt(dave.peerId, m.type, m.body))).toBe('new bundle')
  })

  it('forgets retired prekeys after the grace period', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob, false)
    const stale = await alice.crypto.encrypt(bob.peerId, text('too late'))

    bob.clock.advance(SIGNED_PREKEY_ROTATION)
    await bob.crypto.maintain()
    bob.clock.advance(RETIRED_PREKEY_GRACE)
    const report = await bob.crypto.maintain()
    expect(report.retiredPreKeysDeleted).toBe(2)
    expect(await codeOf(bob.crypto.decrypt(alice.peerId, stale.type, stale.body))).toBe('DECRYPT_FAILED')
  })

  it('rotates on open when the node was down for longer than the period', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const before = await alice.crypto.verifyBundle(await bob.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)
    bob.clock.advance(30 * DAY)
    alice.clock.advance(30 * DAY)
    const bob2 = await nodes.reopen(bob)
    const after = await alice.crypto.verifyBundle(await bob2.crypto.createBundle({ withOneTimePrekey: false }), bob.peerId)
    expect(after.signedPreKeyId).not.toBe(before.signedPreKeyId)
  })
})
