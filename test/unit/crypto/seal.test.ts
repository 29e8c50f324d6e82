import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { Nodes, codeOf, connect, text } from './helpers.js'

describe('sealed envelopes for mailboxes', () => {
  const nodes = new Nodes()
  afterEach(async () => { await nodes.cleanup() })

  it('only the recipient opens it; the sealed bytes show neither the sender nor the content', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    const carol = await nodes.create('carol')
    await connect(alice, bob, false)
    const inner = text(`from ${alice.peerId}: MARKER-secret-text`)

    const sealed = await alice.crypto.sealFor(bob.peerId, inner)
    expect(bob.crypto.unseal(sealed)).toEqual(inner)
    const visible = Buffer.from(sealed)
    expect(visible.indexOf(alice.peerId)).toBe(-1)
    expect(visible.indexOf('MARKER')).toBe(-1)
    // fresh ephemeral key each time: two seals of one envelope are unlinkable
    expect(Buffer.from(await alice.crypto.sealFor(bob.peerId, inner)).equals(visible)).toBe(false)

    expect(await codeOf(Promise.resolve().then(() => carol.crypto.unseal(sealed)))).toBe('DECRYPT_FAILED')
  })

  it('is bound to the recipient and refuses tampering', async () => {
    const alice = await nodes.create('alice')
    const bob = await nodes.create('bob')
    await connect(alice, bob, false)
    const sealed = await alice.crypto.sealFor(bob.peerId, text('hello'))
    await fc.assert(fc.property(fc.integer({ min: 0, max: sealed.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, flip) => {
      const tampered = Uint8Array.from(sealed)
      tampered[index]! ^= flip
      let opened: Uint8Array | undefined
      try { opened = bob.crypto.unseal(tampered) } catch (err) { expect((err as { code?: string }).code).toBe('DECRYPT_FAILED') }
      // a flip in protobuf framing may still decode to the same fields; it must never open to something else
      if (opened != null) expect(opened).toEqual(text('hello'))
    }), { numRuns: 200 })
    // no identity key known for dave: nothing to seal to
    const dave = await nodes.create('dave')
    expect(await codeOf(alice.crypto.sealFor(dave.peerId, text('x')))).toBe('NO_SESSION')
  })

  it('random bytes never open and only ever fail with DECRYPT_FAILED or FRAME_TOO_LARGE', async () => {
    const bob = await nodes.create('bob')
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), bytes => {
      try {
        bob.crypto.unseal(bytes)
        expect.unreachable('random bytes opened')
      } catch (err) {
        expect(['DECRYPT_FAILED', 'FRAME_TOO_LARGE']).toContain((err as { code?: string }).code)
      }
    }), { numRuns: 300 })
  })
})
