/**
 * /octet/dm/1.0.0 known-answer vectors: fixed bytes ↔ decoded values for every
 * frame and sealed plaintext a node sends. A change that alters what goes on the
 * wire (a renumbered field, another varint width, padding of another size) breaks
 * compatibility with running nodes, and fails here whatever the round-trip tests say.
 */
import { describe, expect, it } from 'vitest'
import {
  AckStatus, Kind, ReceiptType,
  decodeBatch, decodeDmFrame, decodeEnvelope, decodePlaintext, decodeReceipt,
  encodeBatch, encodeDmFrame, encodeEnvelope, encodePlaintext, encodeReceipt,
  type BatchItem, type Envelope
} from '../../../src/wire/codec.js'

const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const ascii = (text: string): string => Buffer.from(text, 'ascii').toString('hex')

const SENDER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const RECIPIENT = '12D3KooWAoXrTXr4JHkuuPkVVKjL11ViSXVHWp3ZfB8nj2LoQP5M'
const ID = Uint8Array.from({ length: 16 }, (_, i) => i)
const ID2 = Uint8Array.from({ length: 16 }, (_, i) => 255 - i)
const ID_HEX = '000102030405060708090a0b0c0d0e0f'
const ID2_HEX = 'fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0'
/** 1,700,000,000,000 ms as a varint */
const T_HEX = '80d095ffbc31'

const ENVELOPE: Envelope = { version: 1, id: ID, recipient: RECIPIENT, sender: SENDER, timestamp: 1_700_000_000_000, seq: 7, kind: Kind.TEXT, cipherType: 2, ciphertext: Uint8Array.of(1, 2, 3, 4) }
const ENVELOPE_HEX = `0801${'12'}10${ID_HEX}${'1a'}34${ascii(RECIPIENT)}${'22'}34${ascii(SENDER)}28${T_HEX}3007380140024a0401020304`

describe('DM known-answer vectors', () => {
  it('an envelope: version, id, recipient, sender, timestamp, seq, kind, cipher type, ciphertext, fields 1–9 in order', () => {
    expect(toHex(encodeEnvelope(ENVELOPE))).toBe(ENVELOPE_HEX)
    expect(decodeEnvelope(fromHex(ENVELOPE_HEX))).toEqual(ENVELOPE)
  })

  it('a DM frame carrying it: field 1, length 147', () => {
    const hex = `0a9301${ENVELOPE_HEX}`
    expect(toHex(encodeDmFrame({ envelope: ENVELOPE }))).toBe(hex)
    expect(decodeDmFrame(fromHex(hex))).toEqual({ envelope: ENVELOPE })
  })

  it('an ack: ACCEPTED is status 1, an empty reason is left out', () => {
    const hex = `1214${'0a'}10${ID_HEX}1001`
    expect(toHex(encodeDmFrame({ ack: { id: ID, status: AckStatus.ACCEPTED, reason: '' } }))).toBe(hex)
    expect(decodeDmFrame(fromHex(hex))).toEqual({ ack: { id: ID, status: AckStatus.ACCEPTED, reason: '' } })
  })

  it('a "retry later" ack of a receiver whose disk is full: RATE_LIMITED (4), reason DISK_FULL', () => {
    const hex = `121f${'0a'}10${ID_HEX}1004${'1a'}09${ascii('DISK_FULL')}`
    expect(toHex(encodeDmFrame({ ack: { id: ID, status: AckStatus.RATE_LIMITED, reason: 'DISK_FULL' } }))).toBe(hex)
    expect(decodeDmFrame(fromHex(hex))).toEqual({ ack: { id: ID, status: AckStatus.RATE_LIMITED, reason: 'DISK_FULL' } })
  })

  it('a read receipt for two messages: READ is 2, ids repeated in field 2', () => {
    const hex = `0802${'12'}10${ID_HEX}${'12'}10${ID2_HEX}`
    expect(toHex(encodeReceipt({ type: ReceiptType.READ, ids: [ID, ID2] }))).toBe(hex)
    expect(decodeReceipt(fromHex(hex))).toEqual({ type: ReceiptType.READ, ids: [ID, ID2] })
  })

  it('a text plaintext, unpadded and padded with zeros in field 4 to a multiple of 32 bytes (160)', () => {
    const bare = `0a02${ascii('hi')}1007${'18'}${T_HEX}`
    const padded = `${bare}229001${'00'.repeat(144)}`
    const plaintext = { text: 'hi', seq: 7, sentAt: 1_700_000_000_000 }
    expect(toHex(encodePlaintext(plaintext, { padBlock: 0 }))).toBe(bare)
    expect(toHex(encodePlaintext(plaintext))).toBe(padded)
    expect(fromHex(padded).length % 32).toBe(0)
    expect(decodePlaintext(fromHex(bare))).toEqual(plaintext)
    expect(decodePlaintext(fromHex(padded))).toEqual(plaintext)
  })

  it('a batch of a text and a receipt: items in field 1, each id, kind, timestamp, seq, plaintext', () => {
    const hex = `0a20${'0a'}10${ID_HEX}1001${'18'}${T_HEX}20072a0109` + `0a1d${'0a'}10${ID2_HEX}1002${'18'}81d095ffbc312008`
    const items: BatchItem[] = [
      { id: ID, kind: Kind.TEXT, timestamp: 1_700_000_000_000, seq: 7, plaintext: Uint8Array.of(9) },
      { id: ID2, kind: Kind.RECEIPT, timestamp: 1_700_000_000_001, seq: 8, plaintext: new Uint8Array(0) }
    ]
    expect(toHex(encodeBatch(items))).toBe(hex)
    expect(decodeBatch(fromHex(hex))).toEqual(items)
  })
})
