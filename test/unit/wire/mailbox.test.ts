/**
 * /octet/mailbox/1.0.0 frames: how the decoders meet what a later version
 * may send (unknown fields, unknown ops), their size limits, the rules of a
 * WATCH request, and property tests of the request decoder. The frames'
 * known-answer vectors are in test/vectors/mailbox.json.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import { MAX_DELETE_IDS, MAX_NOTIFY_FRAME_BYTES } from '../../../src/mailbox/constants.js'
import { decodeNotify, decodeRequest, requestProblem } from '../../../src/mailbox/protocol.js'
import { MailboxOp, MailboxRequest } from '../../../src/wire/mailbox.pb.js'

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

/** An Ed25519 PeerId in canonical form (52 characters). */
const PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const PEER_HEX = Buffer.from(PEER, 'ascii').toString('hex')

describe('mailbox frames', () => {
  it('a NOTIFY with fields a later version may add still decodes (unknown fields are skipped)', () => {
    expect(decodeNotify(fromHex('0801' + '1005' + '1a03616263'))).toEqual({ count: 1 })
  })

  it('refuses a NOTIFY over MAX_NOTIFY_FRAME_BYTES before decoding, and garbage with MALFORMED_FRAME', () => {
    const big = new Uint8Array(MAX_NOTIFY_FRAME_BYTES + 1)
    expect(isOctetError(catching(() => decodeNotify(big)), 'FRAME_TOO_LARGE')).toBe(true)
    expect(isOctetError(catching(() => decodeNotify(fromHex('08ff'))), 'MALFORMED_FRAME')).toBe(true)
    expect(isOctetError(catching(() => decodeNotify(fromHex('08'))), 'MALFORMED_FRAME')).toBe(true)
  })

  it('an unknown op (a later version\'s) is MALFORMED_FRAME at decode, never a crash', () => {
    expect(isOctetError(catching(() => decodeRequest(fromHex(`0809${'12'}34${PEER_HEX}`))), 'MALFORMED_FRAME')).toBe(true)
  })

  it('a WATCH carries nothing but the recipient', () => {
    expect(requestProblem(decodeRequest(fromHex(`0804${'12'}34${PEER_HEX}`)))).toBeUndefined()
    expect(requestProblem({ op: MailboxOp.WATCH, recipient: PEER, sealed: new Uint8Array(0), ids: [], limit: 7 })).toMatch(/no limit/)
    expect(requestProblem({ op: MailboxOp.WATCH, recipient: 'bob', sealed: new Uint8Array(0), ids: [], limit: 0 })).toMatch(/not a PeerId/)
  })
})

describe('decodeRequest (WATCH among the ops)', () => {
  const requestArb = fc.record({
    op: fc.constantFrom(MailboxOp.STORE, MailboxOp.FETCH, MailboxOp.DELETE, MailboxOp.WATCH),
    recipient: fc.oneof(fc.constant(PEER), fc.string({ maxLength: 80 })),
    sealed: fc.uint8Array({ maxLength: 200 }),
    ids: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 5 }),
    limit: fc.nat()
  })

  /** A request, or MALFORMED_FRAME / FRAME_TOO_LARGE; requestProblem then never throws. */
  function decodesOrRefuses (bytes: Uint8Array): void {
    let request: MailboxRequest
    try {
      request = decodeRequest(bytes)
    } catch (err) {
      if (!isOctetError(err) || (err.code !== 'MALFORMED_FRAME' && err.code !== 'FRAME_TOO_LARGE')) throw new Error(`decodeRequest threw ${String(err)}`, { cause: err })
      return
    }
    const problem = requestProblem(request)
    expect(problem === undefined || typeof problem === 'string').toBe(true)
  }

  it('round-trips valid requests, WATCH included', () => {
    fc.assert(fc.property(requestArb, request => {
      expect(decodeRequest(MailboxRequest.encode(request))).toEqual(request)
    }), { numRuns: 300 })
  })

  it('never throws anything but a wire OctetError on arbitrary, truncated or bit-flipped input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), decodesOrRefuses), { numRuns: 600 })
    fc.assert(fc.property(requestArb, fc.nat(), (request, cut) => {
      const bytes = MailboxRequest.encode(request)
      decodesOrRefuses(bytes.subarray(0, cut % (bytes.byteLength + 1)))
    }), { numRuns: 300 })
    fc.assert(fc.property(requestArb, fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), (request, flips) => {
      const bytes = MailboxRequest.encode(request).slice()
      if (bytes.byteLength === 0) return
      for (const f of flips) {
        const bit = f % (bytes.byteLength * 8)
        bytes[bit >> 3] = bytes[bit >> 3]! ^ (1 << (bit & 7))
      }
      decodesOrRefuses(bytes)
    }), { numRuns: 300 })
  })

  it('refuses more than MAX_DELETE_IDS ids with FRAME_TOO_LARGE', () => {
    const ids = Array.from({ length: MAX_DELETE_IDS + 1 }, () => new Uint8Array(32))
    expect(isOctetError(catching(() => decodeRequest(MailboxRequest.encode({ op: MailboxOp.DELETE, recipient: PEER, ids }))), 'FRAME_TOO_LARGE')).toBe(true)
  })
})

function catching (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}
