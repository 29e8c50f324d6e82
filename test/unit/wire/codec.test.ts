import { Uint8ArrayList } from 'uint8arraylist'
import { beforeAll, describe, expect, it } from 'vitest'
import { packBatches } from '../../../src/messaging/sealing.js'
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
  type BatchItem,
  type DmFrame,
  type Envelope,
  type Receipt
} from '../../../src/wire/codec.js'
import {
  isPeerIdString,
  messageIdFromHex,
  messageIdToHex,
  newMessageId
} from '../../../src/wire/ids.js'
import * as pb from '../../../src/wire/envelope.pb.js'
import {
  MAX_ACK_REASON_BYTES,
  MAX_BATCH_ITEMS,
  MAX_BATCH_PLAINTEXT_BYTES,
  MAX_CIPHERTEXT_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_FRAME_BYTES,
  MAX_PADDING_BYTES,
  MAX_PLAINTEXT_BYTES,
  MAX_RECEIPT_IDS,
  MAX_TEXT_BYTES,
  MESSAGE_ID_BYTES,
  PLAINTEXT_PAD_BLOCK_BYTES,
  WIRE_VERSION
} from '../../../src/wire/limits.js'
import { concat, lengthDelimited, makeEnvelope, makePeerIds, thrownCode, varintField } from './helpers.js'
import type { PeerId } from '@libp2p/interface'

const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text)

let alice: PeerId
let bob: PeerId
let carol: PeerId // secp256k1

beforeAll(async () => {
  const [a, b] = await makePeerIds(2)
  const [c] = await makePeerIds(1, 'secp256k1')
  alice = a!
  bob = b!
  carol = c!
})

/** A valid generated-code envelope, to be spoiled one field at a time. */
function pbEnvelope (overrides: Partial<pb.Envelope> = {}): pb.Envelope {
  return {
    version: WIRE_VERSION,
    id: new Uint8Array(MESSAGE_ID_BYTES).fill(7),
    recipient: bob.toString(),
    sender: alice.toString(),
    timestamp: 1_700_000_000_000n,
    seq: 5n,
    kind: pb.Kind.TEXT,
    cipherType: 3,
    ciphertext: new Uint8Array([9, 9, 9]),
    ...overrides
  }
}

function pbAck (overrides: Partial<pb.Ack> = {}): pb.Ack {
  return { id: new Uint8Array(MESSAGE_ID_BYTES).fill(1), status: pb.AckStatus.ACCEPTED, reason: '', ...overrides }
}

describe('DM frames', () => {
  it('round-trips an envelope frame', () => {
    const envelope = makeEnvelope(alice, bob, { seq: Number.MAX_SAFE_INTEGER, timestamp: Date.now(), kind: Kind.GROUP_TEXT, cipherType: 0xffff_ffff })
    const decoded = decodeDmFrame(encodeDmFrame({ envelope }))
    expect(decoded).toEqual({ envelope })
    expect(decoded.ack).toBeUndefined()
  })

  it('round-trips every kind, and every ack status', () => {
    for (const kind of [Kind.TEXT, Kind.RECEIPT, Kind.GROUP_CONTROL, Kind.SENDER_KEY, Kind.GROUP_TEXT] as const) {
      const envelope = makeEnvelope(alice, carol, { kind, seq: 0 })
      expect(decodeDmFrame(encodeDmFrame({ envelope }))).toEqual({ envelope })
    }
    for (const status of [AckStatus.ACCEPTED, AckStatus.DUPLICATE, AckStatus.REJECTED, AckStatus.RATE_LIMITED, AckStatus.IDENTITY_CHANGED] as const) {
      const frame: DmFrame = { ack: { id: newMessageId(), status, reason: status === AckStatus.REJECTED ? 'bad ciphertext — ü' : '' } }
      expect(decodeDmFrame(encodeDmFrame(frame))).toEqual(frame)
    }
  })

  it('accepts a Uint8ArrayList, as lpStream yields', () => {
    const envelope = makeEnvelope(alice, bob)
    const bytes = encodeDmFrame({ envelope })
    const list = new Uint8ArrayList(bytes.subarray(0, 10), bytes.subarray(10))
    expect(decodeDmFrame(list)).toEqual({ envelope })
  })

  it('returns copies that do not share the frame buffer', () => {
    const envelope = makeEnvelope(alice, bob)
    const bytes = encodeDmFrame({ envelope })
    const decoded = decodeDmFrame(bytes)
    bytes.fill(0)
    expect(decoded.envelope?.ciphertext).toEqual(envelope.ciphertext)
    expect(decoded.envelope?.id).toEqual(envelope.id)
    expect(decoded.envelope?.ciphertext.buffer.byteLength).toBe(envelope.ciphertext.byteLength)
  })

  it('skips unknown fields, so later versions can add some', () => {
    const bytes = concat(encodeDmFrame({ envelope: makeEnvelope(alice, bob) }), varintField(15, 1), lengthDelimited(16, new Uint8Array(3)))
    expect(decodeDmFrame(bytes).envelope).toBeDefined()
  })

  it('checks the length before decoding', () => {
    // garbage that would be MALFORMED if it were decoded
    expect(thrownCode(() => decodeDmFrame(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0xff)))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => decodeDmFrame(new Uint8ArrayList(new Uint8Array(MAX_FRAME_BYTES), new Uint8Array(1))))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => decodeEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES + 1)))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => decodeReceipt(new Uint8Array(MAX_PLAINTEXT_BYTES + 1)))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => decodePlaintext(new Uint8Array(MAX_PLAINTEXT_BYTES + 1)))).toBe('FRAME_TOO_LARGE')
  })

  const badEnvelopes: Array<[string, () => Partial<pb.Envelope>, 'MALFORMED_FRAME' | 'FRAME_TOO_LARGE']> = [
    ['version 0', () => ({ version: 0 }), 'MALFORMED_FRAME'],
    ['version 2', () => ({ version: WIRE_VERSION + 1 }), 'MALFORMED_FRAME'],
    ['empty id', () => ({ id: new Uint8Array(0) }), 'MALFORMED_FRAME'],
    ['15-byte id', () => ({ id: new Uint8Array(15) }), 'MALFORMED_FRAME'],
    ['17-byte id', () => ({ id: new Uint8Array(17) }), 'MALFORMED_FRAME'],
    ['missing recipient', () => ({ recipient: '' }), 'MALFORMED_FRAME'],
    ['recipient not a PeerId', () => ({ recipient: 'bob' }), 'MALFORMED_FRAME'],
    ['recipient a truncated PeerId', () => ({ recipient: bob.toString().slice(0, -1) }), 'MALFORMED_FRAME'],
    ['recipient as a CID (not canonical)', () => ({ recipient: bob.toCID().toString() }), 'MALFORMED_FRAME'],
    ['recipient far too long', () => ({ recipient: `1${'1'.repeat(1000)}` }), 'MALFORMED_FRAME'],
    ['sender not a PeerId', () => ({ sender: 'Qm-not-base58!' }), 'MALFORMED_FRAME'],
    ['missing sender', () => ({ sender: '' }), 'MALFORMED_FRAME'],
    ['timestamp 0', () => ({ timestamp: 0n }), 'MALFORMED_FRAME'],
    ['timestamp 2^53', () => ({ timestamp: 2n ** 53n }), 'MALFORMED_FRAME'],
    ['timestamp 2^64-1', () => ({ timestamp: 2n ** 64n - 1n }), 'MALFORMED_FRAME'],
    ['seq 2^60', () => ({ seq: 2n ** 60n }), 'MALFORMED_FRAME'],
    ['kind unspecified', () => ({ kind: pb.Kind.KIND_UNSPECIFIED }), 'MALFORMED_FRAME'],
    ['cipherType 0', () => ({ cipherType: 0 }), 'MALFORMED_FRAME'],
    ['empty ciphertext', () => ({ ciphertext: new Uint8Array(0) }), 'MALFORMED_FRAME'],
    ['ciphertext over its cap', () => ({ ciphertext: new Uint8Array(MAX_CIPHERTEXT_BYTES + 1) }), 'FRAME_TOO_LARGE']
  ]

  it.each(badEnvelopes)('refuses an envelope with %s', (_name, spoil, code) => {
    const envelope = pbEnvelope(spoil())
    expect(thrownCode(() => decodeDmFrame(pb.DmFrame.encode({ envelope })))).toBe(code)
    expect(thrownCode(() => decodeEnvelope(pb.Envelope.encode(envelope)))).toBe(code)
  })

  it('refuses an unknown kind value', () => {
    const envelope = concat(pb.Envelope.encode(pbEnvelope()), varintField(7, 99))
    expect(thrownCode(() => decodeEnvelope(envelope))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeDmFrame(lengthDelimited(1, envelope)))).toBe('MALFORMED_FRAME')
  })

  const badAcks: Array<[string, () => Partial<pb.Ack>, 'MALFORMED_FRAME' | 'FRAME_TOO_LARGE']> = [
    ['empty id', () => ({ id: new Uint8Array(0) }), 'MALFORMED_FRAME'],
    ['15-byte id', () => ({ id: new Uint8Array(15) }), 'MALFORMED_FRAME'],
    ['status unspecified', () => ({ status: pb.AckStatus.ACK_UNSPECIFIED }), 'MALFORMED_FRAME'],
    ['reason over its cap', () => ({ reason: 'é'.repeat(MAX_ACK_REASON_BYTES / 2 + 1) }), 'FRAME_TOO_LARGE']
  ]

  it.each(badAcks)('refuses an ack with %s', (_name, spoil, code) => {
    expect(thrownCode(() => decodeDmFrame(pb.DmFrame.encode({ ack: pbAck(spoil()) })))).toBe(code)
  })

  it('refuses an unknown ack status value', () => {
    const ack = concat(pb.Ack.encode(pbAck()), varintField(2, 42))
    expect(thrownCode(() => decodeDmFrame(lengthDelimited(2, ack)))).toBe('MALFORMED_FRAME')
  })

  it('refuses frames with neither or both', () => {
    expect(thrownCode(() => decodeDmFrame(new Uint8Array(0)))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeDmFrame(varintField(15, 1)))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeDmFrame(pb.DmFrame.encode({ envelope: pbEnvelope(), ack: pbAck() })))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeDmFrame({} as DmFrame))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeDmFrame({ envelope: makeEnvelope(alice, bob), ack: { id: newMessageId(), status: AckStatus.ACCEPTED, reason: '' } } as unknown as DmFrame))).toBe('MALFORMED_FRAME')
  })

  it('refuses truncated and garbage input with MALFORMED_FRAME', () => {
    const bytes = encodeDmFrame({ envelope: makeEnvelope(alice, bob) })
    expect(thrownCode(() => decodeDmFrame(bytes.subarray(0, bytes.byteLength - 1)))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeDmFrame(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeDmFrame(new Uint8Array([0x0f])))).toBe('MALFORMED_FRAME') // wire type 7
  })

  it('survives deeply nested groups (stack overflow) with MALFORMED_FRAME', () => {
    // field 15, wire type 3 (start group), repeated until the frame limit
    const bytes = new Uint8Array(MAX_FRAME_BYTES).fill((15 << 3) | 3)
    expect(thrownCode(() => decodeDmFrame(bytes))).toBe('MALFORMED_FRAME')
  })

  it('encoding applies the same rules', () => {
    const cases: Array<[Partial<Envelope>, string]> = [
      [{ id: new Uint8Array(3) }, 'MALFORMED_FRAME'],
      [{ version: 9 }, 'MALFORMED_FRAME'],
      [{ sender: 'nobody' }, 'MALFORMED_FRAME'],
      [{ timestamp: 1.5 }, 'MALFORMED_FRAME'],
      [{ timestamp: 0 }, 'MALFORMED_FRAME'],
      [{ seq: -1 }, 'MALFORMED_FRAME'],
      [{ seq: 2 ** 53 }, 'MALFORMED_FRAME'],
      [{ kind: 'NOPE' as Kind.TEXT }, 'MALFORMED_FRAME'],
      [{ kind: Kind.KIND_UNSPECIFIED as unknown as Kind.TEXT }, 'MALFORMED_FRAME'],
      [{ cipherType: 2 ** 32 }, 'MALFORMED_FRAME'],
      [{ ciphertext: new Uint8Array(0) }, 'MALFORMED_FRAME'],
      [{ ciphertext: new Uint8Array(MAX_CIPHERTEXT_BYTES + 1) }, 'FRAME_TOO_LARGE']
    ]
    for (const [overrides, code] of cases) {
      expect(thrownCode(() => encodeDmFrame({ envelope: makeEnvelope(alice, bob, overrides) })), JSON.stringify(overrides)).toBe(code)
      expect(thrownCode(() => encodeEnvelope(makeEnvelope(alice, bob, overrides)))).toBe(code)
    }
    expect(thrownCode(() => encodeDmFrame({ ack: { id: newMessageId(), status: AckStatus.ACK_UNSPECIFIED as AckStatus.ACCEPTED, reason: '' } }))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeDmFrame({ ack: { id: newMessageId(), status: AckStatus.REJECTED, reason: 'x'.repeat(MAX_ACK_REASON_BYTES + 1) } }))).toBe('FRAME_TOO_LARGE')
  })
})

describe('standalone envelopes', () => {
  it('round-trip', () => {
    const envelope = makeEnvelope(carol, alice, { kind: Kind.SENDER_KEY, cipherType: 7 })
    expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual(envelope)
  })
})

describe('limits fit together', () => {
  it('the largest valid envelope fits in MAX_ENVELOPE_BYTES, and in a frame', () => {
    const envelope = makeEnvelope(carol, carol, {
      ciphertext: new Uint8Array(MAX_CIPHERTEXT_BYTES).fill(0xff),
      timestamp: Number.MAX_SAFE_INTEGER,
      seq: Number.MAX_SAFE_INTEGER,
      cipherType: 0xffff_ffff
    })
    expect(encodeEnvelope(envelope).byteLength).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES)
    const frame = encodeDmFrame({ envelope })
    expect(frame.byteLength).toBeLessThanOrEqual(MAX_FRAME_BYTES)
    expect(decodeDmFrame(frame)).toEqual({ envelope })
  })

  it('the largest padded plaintext and the largest receipt fit in MAX_PLAINTEXT_BYTES, with room for Signal overhead', () => {
    const plaintext = { text: '€'.repeat(MAX_TEXT_BYTES / 3 | 0) + 'a'.repeat(MAX_TEXT_BYTES % 3), seq: Number.MAX_SAFE_INTEGER, sentAt: Number.MAX_SAFE_INTEGER }
    expect(Buffer.byteLength(plaintext.text)).toBe(MAX_TEXT_BYTES)
    const encoded = encodePlaintext(plaintext)
    expect(encoded.byteLength).toBeLessThanOrEqual(MAX_PLAINTEXT_BYTES)
    expect(decodePlaintext(encoded)).toEqual(plaintext)

    const receipt: Receipt = { type: ReceiptType.READ, ids: Array.from({ length: MAX_RECEIPT_IDS }, newMessageId) }
    expect(encodeReceipt(receipt).byteLength).toBeLessThanOrEqual(MAX_PLAINTEXT_BYTES)
    expect(decodeReceipt(encodeReceipt(receipt))).toEqual(receipt)

    // libsignal adds well under 8 KiB (a PQXDH prekey message carries a ~1.6 KiB Kyber ciphertext)
    expect(MAX_PLAINTEXT_BYTES + 8 * 1024).toBeLessThanOrEqual(MAX_CIPHERTEXT_BYTES)
  })
})

describe('receipts', () => {
  it('round-trip', () => {
    const receipt: Receipt = { type: ReceiptType.DELIVERED, ids: [newMessageId(), newMessageId()] }
    expect(decodeReceipt(encodeReceipt(receipt))).toEqual(receipt)
  })

  const badReceipts: Array<[string, () => Partial<pb.Receipt>, 'MALFORMED_FRAME' | 'FRAME_TOO_LARGE']> = [
    ['no ids', () => ({ ids: [] }), 'MALFORMED_FRAME'],
    ['a short id', () => ({ ids: [new Uint8Array(16), new Uint8Array(8)] }), 'MALFORMED_FRAME'],
    ['type unspecified', () => ({ type: pb.ReceiptType.RECEIPT_UNSPECIFIED }), 'MALFORMED_FRAME'],
    ['too many ids', () => ({ ids: Array.from({ length: MAX_RECEIPT_IDS + 1 }, () => new Uint8Array(16)) }), 'FRAME_TOO_LARGE']
  ]

  it.each(badReceipts)('refuses a receipt with %s', (_name, spoil, code) => {
    const receipt = { type: pb.ReceiptType.READ, ids: [new Uint8Array(16)], ...spoil() }
    expect(thrownCode(() => decodeReceipt(pb.Receipt.encode(receipt)))).toBe(code)
  })

  it('refuses an unknown receipt type value, and bad receipts on encode', () => {
    expect(thrownCode(() => decodeReceipt(concat(pb.Receipt.encode({ ids: [new Uint8Array(16)] }), varintField(1, 3))))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeReceipt({ type: ReceiptType.READ, ids: [] }))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeReceipt({ type: ReceiptType.READ, ids: [new Uint8Array(4)] }))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodeReceipt({ type: ReceiptType.READ, ids: Array.from({ length: MAX_RECEIPT_IDS + 1 }, newMessageId) }))).toBe('FRAME_TOO_LARGE')
  })
})

describe('plaintexts', () => {
  it('round-trip, padded to a block by default', () => {
    for (const text of ['', 'hi', 'x'.repeat(157), 'x'.repeat(158), 'x'.repeat(500), '👋🏽 héllo']) {
      const plaintext = { text, seq: 42, sentAt: 1_700_000_000_123 }
      const encoded = encodePlaintext(plaintext)
      expect(encoded.byteLength % PLAINTEXT_PAD_BLOCK_BYTES, text).toBe(0)
      expect(decodePlaintext(encoded)).toEqual(plaintext)
    }
  })

  it('pads to any block size, or not at all', () => {
    const plaintext = { text: 'hello', seq: 1, sentAt: 1 }
    for (const padBlock of [1, 2, 7, 64, 127, 128, 129, 1000, 2048]) {
      const encoded = encodePlaintext(plaintext, { padBlock })
      expect(encoded.byteLength % padBlock, String(padBlock)).toBe(0)
      expect(decodePlaintext(encoded)).toEqual(plaintext)
    }
    expect(encodePlaintext(plaintext, { padBlock: 0 })).toEqual(pb.Plaintext.encode({ text: utf8('hello'), seq: 1n, sentAt: 1n }))
    expect(thrownCode(() => encodePlaintext(plaintext, { padBlock: -1 }))).toBe('INTERNAL')
    expect(thrownCode(() => encodePlaintext(plaintext, { padBlock: MAX_PADDING_BYTES }))).toBe('INTERNAL')
  })

  const badPlaintexts: Array<[string, () => Partial<pb.Plaintext>, 'MALFORMED_FRAME' | 'FRAME_TOO_LARGE']> = [
    ['text over its cap (in bytes, not characters)', () => ({ text: utf8('ü'.repeat(MAX_TEXT_BYTES / 2 + 1)) }), 'FRAME_TOO_LARGE'],
    ['padding over its cap', () => ({ padding: new Uint8Array(MAX_PADDING_BYTES + 1) }), 'FRAME_TOO_LARGE'],
    ['sentAt 0', () => ({ sentAt: 0n }), 'MALFORMED_FRAME'],
    ['sentAt 2^53', () => ({ sentAt: 2n ** 53n }), 'MALFORMED_FRAME'],
    ['seq 2^63', () => ({ seq: 2n ** 63n }), 'MALFORMED_FRAME']
  ]

  it.each(badPlaintexts)('refuses a plaintext with %s', (_name, spoil, code) => {
    const plaintext = { text: utf8('hi'), seq: 1n, sentAt: 1n, ...spoil() }
    expect(thrownCode(() => decodePlaintext(pb.Plaintext.encode(plaintext)))).toBe(code)
  })

  it('texts are UTF-8 bytes on the wire, the same bytes a protobuf string field carries', () => {
    const text = 'grüße, 你好, 🎉'
    const asString = concat(lengthDelimited(1, utf8(text)), varintField(2, 1), varintField(3, 1))
    expect(decodePlaintext(asString).text).toBe(text)
    // invalid UTF-8 reads as U+FFFD rather than failing
    expect(decodePlaintext(concat(lengthDelimited(1, new Uint8Array([0x61, 0xff, 0x62])), varintField(3, 1))).text).toBe('a\ufffdb')
  })

  it('refuses bad plaintexts on encode', () => {
    expect(thrownCode(() => encodePlaintext({ text: 'a'.repeat(MAX_TEXT_BYTES + 1), seq: 1, sentAt: 1 }))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => encodePlaintext({ text: 'a', seq: 1, sentAt: 0 }))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => encodePlaintext({ text: 'a', seq: Number.NaN, sentAt: 1 }))).toBe('MALFORMED_FRAME')
  })
})

describe('message ids and PeerIds', () => {
  it('newMessageId gives 16 fresh random bytes', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => messageIdToHex(newMessageId())))
    expect(ids.size).toBe(1000)
    expect(newMessageId().byteLength).toBe(MESSAGE_ID_BYTES)
  })

  it('hex round-trips and refuses anything but 32 hex digits', () => {
    const id = newMessageId()
    const hex = messageIdToHex(id)
    expect(hex).toMatch(/^[0-9a-f]{32}$/)
    expect(messageIdFromHex(hex)).toEqual(id)
    expect(messageIdFromHex(hex.toUpperCase())).toEqual(id)
    for (const bad of ['', hex.slice(1), `${hex}0`, `${hex.slice(1)}g`, ` ${hex.slice(1)}`]) {
      expect(messageIdFromHex(bad), bad).toBeUndefined()
    }
  })

  it('isPeerIdString accepts canonical Ed25519 and secp256k1 PeerIds only', () => {
    expect(isPeerIdString(alice.toString())).toBe(true)
    expect(isPeerIdString(carol.toString())).toBe(true)
    expect(isPeerIdString(alice.toCID().toString())).toBe(false)
    expect(isPeerIdString('')).toBe(false)
    expect(isPeerIdString('12D3KooW')).toBe(false)
    expect(isPeerIdString('hello')).toBe(false)
  })
})

describe('batches', () => {
  const item = (overrides: Partial<BatchItem> = {}): BatchItem => ({
    id: newMessageId(), kind: Kind.TEXT, timestamp: 1_700_000_000_000, seq: 1, plaintext: new Uint8Array([1, 2, 3]), ...overrides
  })

  it('a BATCH envelope announces between 1 and MAX_BATCH_ITEMS items', () => {
    expect(thrownCode(() => decodeEnvelope(pb.Envelope.encode(pbEnvelope({ kind: pb.Kind.BATCH, seq: 0n }))))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeEnvelope(pb.Envelope.encode(pbEnvelope({ kind: pb.Kind.BATCH, seq: BigInt(MAX_BATCH_ITEMS + 1) }))))).toBe('FRAME_TOO_LARGE')
    expect(decodeEnvelope(pb.Envelope.encode(pbEnvelope({ kind: pb.Kind.BATCH, seq: BigInt(MAX_BATCH_ITEMS) }))).seq).toBe(MAX_BATCH_ITEMS)
  })

  it('refuses empty batches, nested batches, too many items and oversized items', () => {
    expect(thrownCode(() => decodeBatch(new Uint8Array(0)))).toBe('MALFORMED_FRAME')
    const pbItem = (kind: pb.Kind): pb.BatchItem => ({ id: new Uint8Array(MESSAGE_ID_BYTES), kind, timestamp: 1n, seq: 0n, plaintext: new Uint8Array(0) })
    expect(thrownCode(() => decodeBatch(pb.Batch.encode({ items: [pbItem(pb.Kind.BATCH)] })))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeBatch(pb.Batch.encode({ items: [pbItem(pb.Kind.KIND_UNSPECIFIED)] })))).toBe('MALFORMED_FRAME')
    const many = Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => pbItem(pb.Kind.TEXT))
    expect(thrownCode(() => decodeBatch(pb.Batch.encode({ items: many })))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => encodeBatch([item({ plaintext: new Uint8Array(MAX_PLAINTEXT_BYTES + 1) })]))).toBe('FRAME_TOO_LARGE')
    expect(thrownCode(() => encodeBatch([item({ kind: Kind.BATCH as BatchItem['kind'] })]))).toBe('MALFORMED_FRAME')
    expect(thrownCode(() => decodeBatch(new Uint8Array(MAX_BATCH_PLAINTEXT_BYTES + 1)))).toBe('FRAME_TOO_LARGE')
  })

  it('packs consecutive items into batches that fit, in order', () => {
    const texts = Array.from({ length: 700 }, (_, i) => item({ seq: i, plaintext: encodePlaintext({ text: 'x'.repeat(i % 3 === 0 ? 5000 : 1024), seq: i, sentAt: 1 }) }))
    const groups = packBatches(texts)
    expect(groups.flat()).toEqual(texts)
    for (const group of groups) {
      expect(group.length).toBeLessThanOrEqual(MAX_BATCH_ITEMS)
      // batchItemSize is an upper bound: every packed group encodes within the limit
      expect(encodeBatch(group).byteLength).toBeLessThanOrEqual(MAX_BATCH_PLAINTEXT_BYTES)
    }
    const tiny = packBatches(Array.from({ length: 600 }, () => item({ plaintext: new Uint8Array(0) })))
    expect(tiny.map(g => g.length)).toEqual([MAX_BATCH_ITEMS, MAX_BATCH_ITEMS, 600 - 2 * MAX_BATCH_ITEMS])
    // what does not fit beside the last item starts the next batch
    const big = (): BatchItem => item({ plaintext: new Uint8Array(MAX_BATCH_PLAINTEXT_BYTES / 2) })
    expect(packBatches([big(), big(), item()]).map(g => g.length)).toEqual([1, 2])
  })

  it('a full batch, sealed, fits in an envelope (libsignal adds under 8 KiB)', () => {
    expect(MAX_BATCH_PLAINTEXT_BYTES + 8 * 1024).toBeLessThanOrEqual(MAX_CIPHERTEXT_BYTES)
  })
})
