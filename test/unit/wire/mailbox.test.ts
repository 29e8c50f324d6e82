/**
 * /octet/mailbox/1.0.0 frames: known-answer vectors (fixed bytes ↔ decoded
 * message) for the frames WATCH added, vectors of the frames that were there
 * before (unchanged: nothing was renumbered), and property tests of the
 * request decoder, which now meets WATCH requests too.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import { MAX_DELETE_IDS, MAX_NOTIFY_FRAME_BYTES } from '../../../src/mailbox/constants.js'
import { decodeNotify, decodeRequest, requestProblem } from '../../../src/mailbox/protocol.js'
import { MailboxNotify, MailboxOp, MailboxRequest, MailboxResponse, MailboxStatus } from '../../../src/wire/mailbox.pb.js'

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** An Ed25519 PeerId in canonical form (52 characters). */
const PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const PEER_HEX = Buffer.from(PEER, 'ascii').toString('hex')

describe('known-answer vectors', () => {
  const vectors: Array<{ name: string, hex: string, encode: () => Uint8Array, decode: (bytes: Uint8Array) => unknown, value: unknown }> = [
    {
      name: 'WATCH request: op 4, recipient',
      hex: `0804${'12'}34${PEER_HEX}`,
      encode: () => MailboxRequest.encode({ op: MailboxOp.WATCH, recipient: PEER }),
      decode: decodeRequest,
      value: { op: MailboxOp.WATCH, recipient: PEER, sealed: new Uint8Array(0), ids: [], limit: 0 }
    },
    {
      name: 'answer to WATCH: OK, 3 held',
      hex: '08012803',
      encode: () => MailboxResponse.encode({ status: MailboxStatus.OK, count: 3 }),
      decode: bytes => MailboxResponse.decode(bytes),
      value: { status: MailboxStatus.OK, reason: '', envelopes: [], more: false, count: 3, duplicate: false }
    },
    {
      name: 'answer to a STORE of bytes already held: OK, 3 held, duplicate (field 6)',
      hex: '080128033001',
      encode: () => MailboxResponse.encode({ status: MailboxStatus.OK, count: 3, duplicate: true }),
      decode: bytes => MailboxResponse.decode(bytes),
      value: { status: MailboxStatus.OK, reason: '', envelopes: [], more: false, count: 3, duplicate: true }
    },
    {
      name: 'NOTIFY: count 1',
      hex: '0801',
      encode: () => MailboxNotify.encode({ count: 1 }),
      decode: decodeNotify,
      value: { count: 1 }
    },
    {
      name: 'NOTIFY: count 300 (a two-byte varint)',
      hex: '08ac02',
      encode: () => MailboxNotify.encode({ count: 300 }),
      decode: decodeNotify,
      value: { count: 300 }
    },
    {
      name: 'NOTIFY: count 2^32 - 1',
      hex: '08ffffffff0f',
      encode: () => MailboxNotify.encode({ count: 0xffff_ffff }),
      decode: decodeNotify,
      value: { count: 0xffff_ffff }
    },
    {
      name: 'NOTIFY: count 0 is the empty message (proto3 default)',
      hex: '',
      encode: () => MailboxNotify.encode({ count: 0 }),
      decode: decodeNotify,
      value: { count: 0 }
    },
    // frames that existed before WATCH: the same bytes as ever
    {
      name: 'STORE request (unchanged)',
      hex: `0801${'12'}34${PEER_HEX}1a03010203`,
      encode: () => MailboxRequest.encode({ op: MailboxOp.STORE, recipient: PEER, sealed: Uint8Array.of(1, 2, 3) }),
      decode: decodeRequest,
      value: { op: MailboxOp.STORE, recipient: PEER, sealed: Uint8Array.of(1, 2, 3), ids: [], limit: 0 }
    },
    {
      name: 'FETCH request with a limit (unchanged)',
      hex: `0802${'12'}34${PEER_HEX}2864`,
      encode: () => MailboxRequest.encode({ op: MailboxOp.FETCH, recipient: PEER, limit: 100 }),
      decode: decodeRequest,
      value: { op: MailboxOp.FETCH, recipient: PEER, sealed: new Uint8Array(0), ids: [], limit: 100 }
    },
    {
      name: 'a refusal (unchanged)',
      hex: '08041202' + Buffer.from('no', 'ascii').toString('hex'),
      encode: () => MailboxResponse.encode({ status: MailboxStatus.UNAUTHORIZED, reason: 'no' }),
      decode: bytes => MailboxResponse.decode(bytes),
      value: { status: MailboxStatus.UNAUTHORIZED, reason: 'no', envelopes: [], more: false, count: 0, duplicate: false }
    }
  ]

  for (const v of vectors) {
    it(`${v.name}: encodes to the vector, and the vector decodes to it`, () => {
      expect(toHex(v.encode())).toBe(v.hex)
      expect(v.decode(fromHex(v.hex))).toEqual(v.value)
    })
  }

  it('enum values on the wire: ops STORE 1 … WATCH 4, statuses as before', () => {
    const opOf = (op: MailboxOp): number => MailboxRequest.encode({ op })[1]!
    expect([MailboxOp.STORE, MailboxOp.FETCH, MailboxOp.DELETE, MailboxOp.WATCH].map(opOf)).toEqual([1, 2, 3, 4])
    const statusOf = (status: MailboxStatus): number => MailboxResponse.encode({ status })[1]!
    expect([MailboxStatus.OK, MailboxStatus.QUOTA_EXCEEDED, MailboxStatus.RATE_LIMITED, MailboxStatus.UNAUTHORIZED, MailboxStatus.BAD_REQUEST].map(statusOf)).toEqual([1, 2, 3, 4, 5])
  })

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
