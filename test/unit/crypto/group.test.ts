import { afterEach, describe, expect, it } from 'vitest'
import { distributionId } from '../../../src/crypto/sender-keys.js'
import { Nodes, codeOf, str, text } from './helpers.js'

const nodes = new Nodes()
afterEach(async () => { await nodes.cleanup() })

describe('sender keys', () => {
  it('lets members decrypt a group message once they have the sender key distribution', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    const group = 'group-42'
    expect(await codeOf(alice.crypto.groupEncrypt(group, text('too early')))).toBe('NO_SESSION')

    const distribution = await alice.crypto.createSenderKeyDistribution(group)
    await bob.crypto.processSenderKeyDistribution(alice.peerId, group, distribution)

    const first = await alice.crypto.groupEncrypt(group, text('hello group'))
    const second = await alice.crypto.groupEncrypt(group, text('second'))
    expect(str(await bob.crypto.groupDecrypt(alice.peerId, group, first))).toBe('hello group')
    expect(str(await bob.crypto.groupDecrypt(alice.peerId, group, second))).toBe('second')

    // Carol never got the sender key
    expect(await codeOf(carol.crypto.groupDecrypt(alice.peerId, group, first))).toBe('NO_SESSION')
    // replays and tampering are caught
    expect(await codeOf(bob.crypto.groupDecrypt(alice.peerId, group, first))).toBe('REPLAYED_MESSAGE')
    const third = await alice.crypto.groupEncrypt(group, text('third'))
    const tampered = third.slice()
    tampered[tampered.length - 70]! ^= 0x01
    expect(await codeOf(bob.crypto.groupDecrypt(alice.peerId, group, tampered))).toBe('DECRYPT_FAILED')
    expect(str(await bob.crypto.groupDecrypt(alice.peerId, group, third))).toBe('third')
  })

  it('keeps groups apart, and sender keys across restarts', async () => {
    const alice = await nodes.create('alice')
    let bob = await nodes.create('bob')
    for (const group of ['a', 'b']) {
      await bob.crypto.processSenderKeyDistribution(alice.peerId, group, await alice.crypto.createSenderKeyDistribution(group))
    }
    expect(distributionId('a')).not.toBe(distributionId('b'))
    expect(distributionId('a')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)

    const forA = await alice.crypto.groupEncrypt('a', text('for a'))
    expect(await codeOf(bob.crypto.groupDecrypt(alice.peerId, 'b', forA))).toBe('DECRYPT_FAILED')
    const distA = await alice.crypto.createSenderKeyDistribution('a')
    expect(await codeOf(bob.crypto.processSenderKeyDistribution(alice.peerId, 'b', distA))).toBe('MALFORMED_FRAME')
    expect(await codeOf(bob.crypto.processSenderKeyDistribution(alice.peerId, 'b', text('junk')))).toBe('MALFORMED_FRAME')

    bob = await nodes.reopen(bob)
    expect(str(await bob.crypto.groupDecrypt(alice.peerId, 'a', forA))).toBe('for a')
  })
})
