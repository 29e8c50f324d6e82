/**
 * Property tests: whatever bytes a peer sends, each decoder either returns a
 * valid object or throws an OctetError with code FRAME_TOO_LARGE or
 * MALFORMED_FRAME — never another error, never a hang.
 */
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { beforeAll, describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import {
  AckStatus,
  decodeBatch,
  decodeDmFrame,
  decodeEnvelope,
  decodePlaintext,
  decodeReceipt,
  encodeBatch,
  encodeDmFrame,
  encodeEnvelope,
  encodePlaintext,
  encodeReceipt,
  Kind,
  ReceiptType,
  type Ack,
  type BatchItem,
  type DmFrame,
  type Envelope,
  type Plaintext,
  type Receipt,
  type WireBytes
} from '../../../src/wire/codec.js'
import {
  isPeerIdString
} from '../../../src/wire/ids.js'
import {
  MAX_BATCH_ITEMS,
  MAX_BATCH_PLAINTEXT_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_FRAME_BYTES,
  MAX_PLAINTEXT_BYTES,
  MAX_RECEIPT_IDS,
  MESSAGE_ID_BYTES,
  WIRE_VERSION
} from '../../../src/wire/limits.js'
import { MAX_NOTIFY_FRAME_BYTES } from '../../../src/mailbox/constants.js'
import { decodeNotify } from '../../../src/mailbox/protocol.js'
import { MailboxNotify } from '../../../src/wire/mailbox.pb.js'
import { makePeerIds } from './helpers.js'

const NUM_RUNS = 300
/** A decoder of a 64 KiB input finishes in milliseconds; this catches hangs without flaking on a slow machine. */
const MAX_DECODE_MS = 1000

let peers: string[] = []

beforeAll(async () => {
  peers = [
    ...(await makePeerIds(3)).map(String),
    ...(await makePeerIds(1, 'secp256k1')).map(String)
  ]
})

const peerId = (): fc.Arbitrary<string> => fc.constantFrom(...peers)
const messageId = fc.uint8Array({ minLength: MESSAGE_ID_BYTES, maxLength: MESSAGE_ID_BYTES })
const safeUint = (min: number): fc.Arbitrary<number> => fc.integer({ min, max: Number.MAX_SAFE_INTEGER })

const itemKind = fc.constantFrom(Kind.TEXT, Kind.RECEIPT, Kind.GROUP_CONTROL, Kind.SENDER_KEY, Kind.GROUP_TEXT)

const envelopeArb = (): fc.Arbitrary<Envelope> => fc.oneof(
  fc.record({ kind: itemKind, seq: safeUint(0) }),
  // a batch's seq is its item count
  fc.record({ kind: fc.constant(Kind.BATCH), seq: fc.integer({ min: 1, max: MAX_BATCH_ITEMS }) })
).chain(({ kind, seq }) => fc.record({
  version: fc.constant(WIRE_VERSION),
  id: messageId,
  recipient: peerId(),
  sender: peerId(),
  timestamp: safeUint(1),
  seq: fc.constant(seq),
  kind: fc.constant(kind),
  cipherType: fc.integer({ min: 1, max: 0xffff_ffff }),
  ciphertext: fc.uint8Array({ minLength: 1, maxLength: 2048 })
}))

const batchArb = fc.array(fc.record({
  id: messageId,
  kind: itemKind,
  timestamp: safeUint(1),
  seq: safeUint(0),
  plaintext: fc.uint8Array({ maxLength: 600 })
}), { minLength: 1, maxLength: 40 }) as fc.Arbitrary<BatchItem[]>

const ackArb = (): fc.Arbitrary<Ack> => fc.record({
  id: messageId,
  status: fc.constantFrom(AckStatus.ACCEPTED, AckStatus.DUPLICATE, AckStatus.REJECTED, AckStatus.RATE_LIMITED, AckStatus.IDENTITY_CHANGED),
  reason: fc.string({ unit: 'binary', maxLength: 60 })
})

const frameArb = (): fc.Arbitrary<DmFrame> => fc.oneof(
  envelopeArb().map(envelope => ({ envelope })),
  ackArb().map(ack => ({ ack }))
)

const receiptArb = fc.record({
  type: fc.constantFrom(ReceiptType.DELIVERED, ReceiptType.READ),
  ids: fc.array(messageId, { minLength: 1, maxLength: 40 })
}) as fc.Arbitrary<Receipt>

const plaintextArb = fc.record({
  text: fc.oneof(fc.string({ unit: 'binary', maxLength: 1000 }), fc.string({ unit: 'grapheme', maxLength: 300 })),
  seq: safeUint(0),
  sentAt: safeUint(1)
}) as fc.Arbitrary<Plaintext>

interface Decoder {
  name: string
  decode: (bytes: WireBytes) => unknown
  max: number
  /** valid values with their encodings: what round-trips, and what to truncate and flip bits in */
  valid: () => fc.Arbitrary<{ value: unknown, bytes: Uint8Array }>
}

function decoder<T> (name: string, decode: (bytes: WireBytes) => T, max: number, values: () => fc.Arbitrary<T>, encode: (value: T) => Uint8Array): Decoder {
  return { name, decode, max, valid: () => values().map(value => ({ value, bytes: encode(value) })) }
}

const decoders: Decoder[] = [
  decoder('decodeDmFrame', decodeDmFrame, MAX_FRAME_BYTES, frameArb, encodeDmFrame),
  decoder('decodeEnvelope', decodeEnvelope, MAX_ENVELOPE_BYTES, envelopeArb, encodeEnvelope),
  decoder('decodeReceipt', decodeReceipt, MAX_PLAINTEXT_BYTES, () => receiptArb, encodeReceipt),
  decoder('decodePlaintext', decodePlaintext, MAX_PLAINTEXT_BYTES, () => plaintextArb, p => encodePlaintext(p)),
  decoder('decodeBatch', decodeBatch, MAX_BATCH_PLAINTEXT_BYTES, () => batchArb, encodeBatch),
  // what a watched mailbox writes on a WATCH stream (src/mailbox/protocol-serve.ts)
  decoder('decodeNotify', decodeNotify, MAX_NOTIFY_FRAME_BYTES, () => fc.integer({ min: 0, max: 0xffff_ffff }).map(count => ({ count })), notify => MailboxNotify.encode(notify))
]

/** Decodes, and fails the property unless the outcome is a value or an OctetError with a wire code, in bounded time. */
function decodesOrRefuses (decode: (bytes: WireBytes) => unknown, bytes: WireBytes): unknown {
  const started = performance.now()
  try {
    return decode(bytes)
  } catch (err) {
    if (!isOctetError(err) || (err.code !== 'FRAME_TOO_LARGE' && err.code !== 'MALFORMED_FRAME')) {
      throw new Error(`decoder threw something other than FRAME_TOO_LARGE/MALFORMED_FRAME: ${String(err)}`, { cause: err })
    }
    return err
  } finally {
    const elapsed = performance.now() - started
    if (elapsed > MAX_DECODE_MS) throw new Error(`decoding ${bytes.byteLength} bytes took ${elapsed.toFixed(0)} ms`)
  }
}

/** Anything a decoder returns must re-encode: it passed the same validation the encoders apply. */
function expectValid (name: string, value: unknown): void {
  if (value instanceof Error) return
  switch (name) {
    case 'decodeDmFrame': encodeDmFrame(value as DmFrame); break
    case 'decodeEnvelope': encodeEnvelope(value as Envelope); break
    case 'decodeReceipt': encodeReceipt(value as Receipt); break
    case 'decodePlaintext': encodePlaintext(value as Plaintext); break
    case 'decodeBatch': encodeBatch(value as BatchItem[]); break
    case 'decodeNotify': {
      const { count } = value as MailboxNotify
      expect(Number.isInteger(count) && count >= 0 && count <= 0xffff_ffff).toBe(true)
      break
    }
  }
  if (name === 'decodeDmFrame' || name === 'decodeEnvelope') {
    const envelope = name === 'decodeEnvelope' ? value as Envelope : (value as DmFrame).envelope
    if (envelope != null) {
      expect(isPeerIdString(envelope.sender)).toBe(true)
      expect(isPeerIdString(envelope.recipient)).toBe(true)
    }
  }
}

describe.each(decoders)('$name', ({ name, decode, max, valid }) => {
  it('never throws anything but a wire OctetError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), bytes => {
      expectValid(name, decodesOrRefuses(decode, bytes))
    }), { numRuns: NUM_RUNS * 3 })
  })

  it('survives arbitrary protobuf-shaped input (valid tags, wild lengths)', () => {
    // tag bytes for fields 1-16 with every wire type, followed by varints that often claim huge lengths
    const token = fc.oneof(
      fc.integer({ min: 1, max: 16 }).chain(field => fc.integer({ min: 0, max: 7 }).map(wt => [(field << 3) | wt])),
      fc.constantFrom([0xff, 0xff, 0xff, 0xff, 0x0f], [0x80, 0x80, 0x04], [0x10], [0x00], [0x7f]),
      fc.uint8Array({ maxLength: 20 }).map(b => [...b])
    )
    fc.assert(fc.property(fc.array(token, { maxLength: 200 }), tokens => {
      expectValid(name, decodesOrRefuses(decode, new Uint8Array(tokens.flat())))
    }), { numRuns: NUM_RUNS * 3 })
  })

  it('refuses anything over its limit with FRAME_TOO_LARGE, before decoding', () => {
    fc.assert(fc.property(fc.integer({ min: max + 1, max: max * 16 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (length, fill, asList) => {
      const bytes = new Uint8Array(length).fill(fill)
      const input = asList ? new Uint8ArrayList(bytes.subarray(0, 7), bytes.subarray(7)) : bytes
      const outcome = decodesOrRefuses(decode, input)
      expect(isOctetError(outcome, 'FRAME_TOO_LARGE')).toBe(true)
    }), { numRuns: 50 })
  })

  it('round-trips valid values: what is decoded is what was encoded', () => {
    fc.assert(fc.property(valid(), ({ value, bytes }) => {
      const decoded = decode(bytes)
      expectValid(name, decoded)
      expect(decoded).toEqual(value)
    }), { numRuns: NUM_RUNS })
  })

  it('survives truncated valid input', () => {
    fc.assert(fc.property(valid(), fc.nat(), ({ bytes }, cut) => {
      const truncated = bytes.subarray(0, cut % bytes.byteLength)
      expectValid(name, decodesOrRefuses(decode, truncated))
    }), { numRuns: NUM_RUNS })
  })

  it('survives bit flips in valid input', () => {
    fc.assert(fc.property(valid(), fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), ({ bytes }, flips) => {
      const flipped = bytes.slice()
      for (const f of flips) {
        const bit = f % (flipped.byteLength * 8)
        flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7))
      }
      expectValid(name, decodesOrRefuses(decode, flipped))
    }), { numRuns: NUM_RUNS })
  })

  it('survives valid input with garbage appended or spliced in', () => {
    fc.assert(fc.property(valid(), fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), ({ bytes }, garbage, at) => {
      const i = at % (bytes.byteLength + 1)
      const spliced = new Uint8Array([...bytes.subarray(0, i), ...garbage, ...bytes.subarray(i)])
      expectValid(name, decodesOrRefuses(decode, spliced))
    }), { numRuns: NUM_RUNS })
  })
})

describe('round trips preserve every field', () => {
  it('DM frames', () => {
    fc.assert(fc.property(frameArb(), frame => {
      // (fast-check's 'binary' strings hold no unpaired surrogates, which UTF-8 could not carry)
      expect(decodeDmFrame(encodeDmFrame(frame))).toEqual(frame)
    }), { numRuns: NUM_RUNS })
  })

  it('receipts', () => {
    fc.assert(fc.property(receiptArb, receipt => {
      expect(decodeReceipt(encodeReceipt(receipt))).toEqual(receipt)
    }), { numRuns: NUM_RUNS })
  })

  it('plaintexts, padded to whole blocks', () => {
    fc.assert(fc.property(plaintextArb, fc.integer({ min: 0, max: 512 }), (plaintext, padBlock) => {
      const encoded = encodePlaintext(plaintext, { padBlock })
      if (padBlock > 0) expect(encoded.byteLength % padBlock).toBe(0)
      expect(decodePlaintext(encoded)).toEqual(plaintext)
    }), { numRuns: NUM_RUNS })
  })

  it('batches', () => {
    fc.assert(fc.property(batchArb, items => {
      expect(decodeBatch(encodeBatch(items))).toEqual(items)
    }), { numRuns: NUM_RUNS })
  })

  it('mailbox notifies', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), count => {
      expect(decodeNotify(MailboxNotify.encode({ count }))).toEqual({ count })
    }), { numRuns: NUM_RUNS })
  })

  it('receipts at the id limit', () => {
    const ids = Array.from({ length: MAX_RECEIPT_IDS }, (_, i) => new Uint8Array(MESSAGE_ID_BYTES).fill(i & 0xff))
    expect(decodeReceipt(encodeReceipt({ type: ReceiptType.READ, ids })).ids).toHaveLength(MAX_RECEIPT_IDS)
  })
})
