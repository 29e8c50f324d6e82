/**
 * The only way into and out of octet's direct-message wire formats.
 *
 * Every decoder here:
 * 1. checks the input's byte length against its limit BEFORE decoding
 *    (OctetError 'FRAME_TOO_LARGE');
 * 2. decodes with protons, passing `limits` for repeated fields, and turns any
 *    decoder failure (truncation, bad varint, unknown enum value, too many
 *    repeated elements …) into an OctetError;
 * 3. validates what protobuf cannot express (ids are 16 bytes, PeerIds parse
 *    and are canonical, enums are not UNSPECIFIED, numbers fit in a JS number,
 *    fields are within their caps) and returns a fresh, validated object whose
 *    byte fields are copies, so it does not pin the frame's buffer.
 *
 * Error codes: 'FRAME_TOO_LARGE' when anything exceeds a size limit (the
 * whole input, a field, or a repeated field's count); 'MALFORMED_FRAME' for
 * everything else. A decoder throws nothing but these two.
 *
 * Encoders apply the same rules to what they are given, so nothing leaves this
 * node that a peer running this code would refuse.
 *
 * The envelope and frame codecs and the plaintext codecs inside them stay in one file: they
 * are layers of one format, share the validators at its end, and test/vectors pins them as one.
 */
import { OctetError } from '../errors.js'
import { bytesToText, decodeChecked, malformed, textToBytes, tooLarge } from './checked.js'
import * as pb from './envelope.pb.js'
import { isPeerIdString, type MessageId } from './ids.js'
import { paddingLength } from './padding.js'
import {
  MAX_ACK_REASON_BYTES,
  MAX_BATCH_ITEMS,
  MAX_BATCH_PLAINTEXT_BYTES,
  MAX_CIPHERTEXT_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_FRAME_BYTES,
  MAX_PADDING_BYTES,
  MAX_PEER_ID_CHARS,
  MAX_PLAINTEXT_BYTES,
  MAX_RECEIPT_IDS,
  MAX_TEXT_BYTES,
  MESSAGE_ID_BYTES,
  PLAINTEXT_PAD_BLOCK_BYTES,
  SUPPORTED_WIRE_VERSIONS
} from './limits.js'
import type { Uint8ArrayList } from 'uint8arraylist'

export { Kind, AckStatus, ReceiptType } from './envelope.pb.js'
type Kind = pb.Kind
type AckStatus = pb.AckStatus
type ReceiptType = pb.ReceiptType

/** What the decoders accept: a frame as read from a stream (lpStream yields Uint8ArrayList). */
export type WireBytes = Uint8Array | Uint8ArrayList

/** Every Kind but KIND_UNSPECIFIED. */
export type EnvelopeKind = Exclude<Kind, pb.Kind.KIND_UNSPECIFIED>
/** Every AckStatus but ACK_UNSPECIFIED. */
export type AckStatusValue = Exclude<AckStatus, pb.AckStatus.ACK_UNSPECIFIED>
/** Every ReceiptType but RECEIPT_UNSPECIFIED. */
export type ReceiptTypeValue = Exclude<ReceiptType, pb.ReceiptType.RECEIPT_UNSPECIFIED>

/** A validated envelope. Times are milliseconds since the Unix epoch. */
export interface Envelope {
  /** One of SUPPORTED_WIRE_VERSIONS. */
  version: number
  id: MessageId
  /** Canonical PeerId string. */
  recipient: string
  /** Canonical PeerId string; on direct delivery the caller must compare it with the connection's remote PeerId. */
  sender: string
  /** Positive safe integer. */
  timestamp: number
  /** Non-negative safe integer; for a BATCH envelope its item count, 1 … MAX_BATCH_ITEMS. */
  seq: number
  kind: EnvelopeKind
  /** libsignal CiphertextMessageType, 1 … 2^32-1. */
  cipherType: number
  /** 1 … MAX_CIPHERTEXT_BYTES bytes. */
  ciphertext: Uint8Array
}

/** A validated transport-level answer to one envelope. */
export interface Ack {
  id: MessageId
  status: AckStatusValue
  /** '' when none; at most MAX_ACK_REASON_BYTES UTF-8 bytes. */
  reason: string
}

/** One frame on /octet/dm/1.0.0: exactly one of `envelope` and `ack`. Narrow with `frame.envelope != null`. */
export type DmFrame =
  | { envelope: Envelope, ack?: undefined }
  | { ack: Ack, envelope?: undefined }

/** Every kind an item of a Batch can have: all but BATCH (batches do not nest). */
export type BatchItemKind = Exclude<EnvelopeKind, pb.Kind.BATCH>

/**
 * One envelope sealed inside a BATCH envelope: the fields it would carry in
 * the clear on its own, and the plaintext it would have sealed.
 */
export interface BatchItem {
  id: MessageId
  kind: BatchItemKind
  /** Positive safe integer. */
  timestamp: number
  /** Non-negative safe integer. */
  seq: number
  /** 0 … MAX_PLAINTEXT_BYTES bytes, to be decoded as `kind` says. */
  plaintext: Uint8Array
}

/** The validated plaintext of a RECEIPT envelope. */
export interface Receipt {
  type: ReceiptTypeValue
  /** 1 … MAX_RECEIPT_IDS message ids. */
  ids: MessageId[]
}

/** The validated plaintext of a TEXT envelope (padding is dropped on decode). */
export interface Plaintext {
  /** At most MAX_TEXT_BYTES UTF-8 bytes; may be ''. */
  text: string
  /** Non-negative safe integer; should equal the envelope's seq. */
  seq: number
  /** Positive safe integer, milliseconds since the Unix epoch. */
  sentAt: number
}

export interface EncodePlaintextOptions {
  /**
   * Pad the encoded Plaintext with zero bytes to a multiple of this many bytes,
   * so the ciphertext size reveals only a coarse text length. 0 disables.
   * Default PLAINTEXT_PAD_BLOCK_BYTES.
   */
  padBlock?: number
}

const BATCH_ITEM_KINDS: ReadonlySet<string> = new Set<BatchItemKind>([
  pb.Kind.TEXT, pb.Kind.RECEIPT, pb.Kind.GROUP_CONTROL, pb.Kind.SENDER_KEY, pb.Kind.GROUP_TEXT
])
const ENVELOPE_KINDS: ReadonlySet<string> = new Set<EnvelopeKind>([...BATCH_ITEM_KINDS as ReadonlySet<BatchItemKind>, pb.Kind.BATCH])
const ACK_STATUSES: ReadonlySet<string> = new Set<AckStatusValue>([
  pb.AckStatus.ACCEPTED, pb.AckStatus.DUPLICATE, pb.AckStatus.REJECTED, pb.AckStatus.RATE_LIMITED, pb.AckStatus.IDENTITY_CHANGED
])
const RECEIPT_TYPES: ReadonlySet<string> = new Set<ReceiptTypeValue>([
  pb.ReceiptType.DELIVERED, pb.ReceiptType.READ
])
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MAX_UINT32 = 0xffff_ffff

// ---------------------------------------------------------------- frames

export function decodeDmFrame (bytes: WireBytes): DmFrame {
  return decodeChecked('DM frame', bytes, MAX_FRAME_BYTES, buf => {
    const frame = pb.DmFrame.decode(buf)
    if (frame.envelope != null && frame.ack != null) malformed('DM frame carries both an envelope and an ack')
    if (frame.envelope != null) return { envelope: envelopeFromPb(frame.envelope) }
    if (frame.ack != null) return { ack: ackFromPb(frame.ack) }
    return malformed('DM frame carries neither an envelope nor an ack')
  })
}

export function encodeDmFrame (frame: DmFrame): Uint8Array {
  let message: Partial<pb.DmFrame>
  if (frame.envelope != null && frame.ack != null) malformed('DM frame carries both an envelope and an ack')
  if (frame.envelope != null) {
    message = { envelope: envelopeToPb(frame.envelope) }
  } else if (frame.ack != null) {
    message = { ack: ackToPb(frame.ack) }
  } else {
    return malformed('DM frame carries neither an envelope nor an ack')
  }
  return encodeChecked('DM frame', pb.DmFrame.encode(message), MAX_FRAME_BYTES)
}

/** A standalone envelope, e.g. one held by a mailbox peer. */
export function decodeEnvelope (bytes: WireBytes): Envelope {
  return decodeChecked('envelope', bytes, MAX_ENVELOPE_BYTES, buf => envelopeFromPb(pb.Envelope.decode(buf)))
}

export function encodeEnvelope (envelope: Envelope): Uint8Array {
  return encodeChecked('envelope', pb.Envelope.encode(envelopeToPb(envelope)), MAX_ENVELOPE_BYTES)
}

// ---------------------------------------------------------------- plaintexts (inside Signal ciphertexts)

export function decodeReceipt (bytes: WireBytes): Receipt {
  return decodeChecked('receipt', bytes, MAX_PLAINTEXT_BYTES, buf => {
    const receipt = pb.Receipt.decode(buf, { limits: { ids: MAX_RECEIPT_IDS } })
    return checkReceipt({ type: receipt.type as ReceiptTypeValue, ids: receipt.ids })
  })
}

export function encodeReceipt (receipt: Receipt): Uint8Array {
  const checked = checkReceipt(receipt)
  return encodeChecked('receipt', pb.Receipt.encode(checked as pb.Receipt), MAX_PLAINTEXT_BYTES)
}

export function decodePlaintext (bytes: WireBytes): Plaintext {
  return decodeChecked('plaintext', bytes, MAX_PLAINTEXT_BYTES, buf => {
    const plaintext = pb.Plaintext.decode(buf)
    if (plaintext.padding != null && plaintext.padding.byteLength > MAX_PADDING_BYTES) {
      tooLarge(`plaintext padding is ${plaintext.padding.byteLength} bytes, the limit is ${MAX_PADDING_BYTES}`)
    }
    return checkPlaintext({
      text: bytesToText(plaintext.text),
      seq: uint64ToNumber(plaintext.seq, 'plaintext seq'),
      sentAt: uint64ToNumber(plaintext.sentAt, 'plaintext sentAt')
    })
  })
}

export function encodePlaintext (plaintext: Plaintext, options: EncodePlaintextOptions = {}): Uint8Array {
  const padBlock = options.padBlock ?? PLAINTEXT_PAD_BLOCK_BYTES
  if (!Number.isSafeInteger(padBlock) || padBlock < 0 || padBlock > MAX_PADDING_BYTES / 2) {
    throw new OctetError('INTERNAL', `padBlock must be an integer from 0 to ${MAX_PADDING_BYTES / 2}, got ${padBlock}`)
  }
  const checked = checkPlaintext(plaintext)
  const message: Partial<pb.Plaintext> = { text: textToBytes(checked.text), seq: BigInt(checked.seq), sentAt: BigInt(checked.sentAt) }
  let bytes: Uint8Array = pb.Plaintext.encode(message)
  if (padBlock > 0) {
    bytes = pb.Plaintext.encode({ ...message, padding: new Uint8Array(paddingLength(bytes.byteLength, padBlock)) })
  }
  return encodeChecked('plaintext', bytes, MAX_PLAINTEXT_BYTES)
}

/** The plaintext of a BATCH envelope; the caller checks the count against the envelope's seq. */
export function decodeBatch (bytes: WireBytes): BatchItem[] {
  return decodeChecked('batch', bytes, MAX_BATCH_PLAINTEXT_BYTES, buf => {
    const batch = pb.Batch.decode(buf, { limits: { items: MAX_BATCH_ITEMS } })
    return checkBatch(batch.items.map(item => ({
      id: item.id,
      kind: item.kind as BatchItemKind,
      timestamp: uint64ToNumber(item.timestamp, 'batch item timestamp'),
      seq: uint64ToNumber(item.seq, 'batch item seq'),
      plaintext: item.plaintext
    })))
  })
}

export function encodeBatch (items: BatchItem[]): Uint8Array {
  const checked = checkBatch(items, false)
  const bytes = pb.Batch.encode({
    items: checked.map(item => ({
      id: item.id as Uint8Array<ArrayBuffer>,
      kind: item.kind,
      timestamp: BigInt(item.timestamp),
      seq: BigInt(item.seq),
      plaintext: item.plaintext as Uint8Array<ArrayBuffer>
    }))
  })
  return encodeChecked('batch', bytes, MAX_BATCH_PLAINTEXT_BYTES)
}

/** What `item` adds to an encoded Batch, give or take a few bytes of varints: for packing batches. */
export function batchItemSize (item: Pick<BatchItem, 'plaintext'>): number {
  // id (18) + kind (2) + timestamp and seq (≤ 11 each) + plaintext tag and length (≤ 4) + the item's own tag and length (≤ 4)
  return item.plaintext.byteLength + 50
}

// ---------------------------------------------------------------- internals

function encodeChecked (what: string, bytes: Uint8Array, maxBytes: number): Uint8Array {
  if (bytes.byteLength > maxBytes) tooLarge(`encoded ${what} is ${bytes.byteLength} bytes, the limit is ${maxBytes}`)
  return bytes
}

function envelopeFromPb (e: pb.Envelope): Envelope {
  return checkEnvelope({
    version: e.version,
    id: e.id,
    recipient: e.recipient,
    sender: e.sender,
    timestamp: uint64ToNumber(e.timestamp, 'envelope timestamp'),
    seq: uint64ToNumber(e.seq, 'envelope seq'),
    kind: e.kind as EnvelopeKind,
    cipherType: e.cipherType,
    ciphertext: e.ciphertext
  })
}

function envelopeToPb (envelope: Envelope): pb.Envelope {
  const e = checkEnvelope(envelope)
  return {
    version: e.version,
    id: e.id as Uint8Array<ArrayBuffer>,
    recipient: e.recipient,
    sender: e.sender,
    timestamp: BigInt(e.timestamp),
    seq: BigInt(e.seq),
    kind: e.kind,
    cipherType: e.cipherType,
    ciphertext: e.ciphertext as Uint8Array<ArrayBuffer>
  }
}

function ackFromPb (a: pb.Ack): Ack {
  return checkAck({ id: a.id, status: a.status as AckStatusValue, reason: a.reason })
}

function ackToPb (ack: Ack): pb.Ack {
  const a = checkAck(ack)
  return { id: a.id as Uint8Array<ArrayBuffer>, status: a.status, reason: a.reason }
}

/** Validates and copies: the result shares no buffer with the input. */
function checkEnvelope (e: Envelope): Envelope {
  if (!SUPPORTED_WIRE_VERSIONS.includes(e.version)) {
    malformed(`envelope version ${e.version} is not supported (supported: ${SUPPORTED_WIRE_VERSIONS.join(', ')})`)
  }
  const id = checkMessageId(e.id, 'envelope id')
  checkPeerId(e.recipient, 'envelope recipient')
  checkPeerId(e.sender, 'envelope sender')
  checkSafeInteger(e.timestamp, 'envelope timestamp', 1)
  checkSafeInteger(e.seq, 'envelope seq', 0)
  if (!ENVELOPE_KINDS.has(e.kind)) malformed(`envelope kind ${String(e.kind)} is not known`)
  if (e.kind === pb.Kind.BATCH) {
    if (e.seq === 0) malformed('a batch envelope announces no items')
    if (e.seq > MAX_BATCH_ITEMS) tooLarge(`a batch envelope announces ${e.seq} items, the limit is ${MAX_BATCH_ITEMS}`)
  }
  if (!Number.isInteger(e.cipherType) || e.cipherType < 1 || e.cipherType > MAX_UINT32) {
    malformed(`envelope cipherType ${e.cipherType} is not a libsignal message type`)
  }
  if (!(e.ciphertext instanceof Uint8Array) || e.ciphertext.byteLength === 0) malformed('envelope ciphertext is empty')
  if (e.ciphertext.byteLength > MAX_CIPHERTEXT_BYTES) {
    tooLarge(`envelope ciphertext is ${e.ciphertext.byteLength} bytes, the limit is ${MAX_CIPHERTEXT_BYTES}`)
  }
  return {
    version: e.version,
    id,
    recipient: e.recipient,
    sender: e.sender,
    timestamp: e.timestamp,
    seq: e.seq,
    kind: e.kind,
    cipherType: e.cipherType,
    ciphertext: e.ciphertext.slice()
  }
}

function checkAck (a: Ack): Ack {
  const id = checkMessageId(a.id, 'ack id')
  if (!ACK_STATUSES.has(a.status)) malformed(`ack status ${String(a.status)} is not known`)
  const reason = a.reason ?? ''
  if (typeof reason !== 'string') malformed('ack reason is not a string')
  const reasonBytes = Buffer.byteLength(reason, 'utf8')
  if (reasonBytes > MAX_ACK_REASON_BYTES) tooLarge(`ack reason is ${reasonBytes} bytes, the limit is ${MAX_ACK_REASON_BYTES}`)
  return { id, status: a.status, reason }
}

/** Validates; `copy`: return byte fields as copies (decoding: not pinning the frame's buffer). */
function checkBatch (items: BatchItem[], copy = true): BatchItem[] {
  if (!Array.isArray(items) || items.length === 0) malformed('batch holds no items')
  if (items.length > MAX_BATCH_ITEMS) tooLarge(`batch holds ${items.length} items, the limit is ${MAX_BATCH_ITEMS}`)
  return items.map((item, i) => {
    const id = checkMessageId(item.id, `batch item ${i} id`)
    if (!BATCH_ITEM_KINDS.has(item.kind)) malformed(`batch item ${i} kind ${String(item.kind)} is not allowed in a batch`)
    checkSafeInteger(item.timestamp, `batch item ${i} timestamp`, 1)
    checkSafeInteger(item.seq, `batch item ${i} seq`, 0)
    if (!(item.plaintext instanceof Uint8Array)) malformed(`batch item ${i} plaintext is not bytes`)
    if (item.plaintext.byteLength > MAX_PLAINTEXT_BYTES) {
      tooLarge(`batch item ${i} plaintext is ${item.plaintext.byteLength} bytes, the limit is ${MAX_PLAINTEXT_BYTES}`)
    }
    return { id, kind: item.kind, timestamp: item.timestamp, seq: item.seq, plaintext: copy ? item.plaintext.slice() : item.plaintext }
  })
}

function checkReceipt (r: Receipt): Receipt {
  if (!RECEIPT_TYPES.has(r.type)) malformed(`receipt type ${String(r.type)} is not known`)
  if (!Array.isArray(r.ids) || r.ids.length === 0) malformed('receipt lists no message ids')
  if (r.ids.length > MAX_RECEIPT_IDS) tooLarge(`receipt lists ${r.ids.length} message ids, the limit is ${MAX_RECEIPT_IDS}`)
  return { type: r.type, ids: r.ids.map((id, i) => checkMessageId(id, `receipt id ${i}`)) }
}

function checkPlaintext (p: Plaintext): Plaintext {
  if (typeof p.text !== 'string') malformed('plaintext text is not a string')
  const textBytes = Buffer.byteLength(p.text, 'utf8')
  if (textBytes > MAX_TEXT_BYTES) tooLarge(`text is ${textBytes} bytes, the limit is ${MAX_TEXT_BYTES}`)
  checkSafeInteger(p.seq, 'plaintext seq', 0)
  checkSafeInteger(p.sentAt, 'plaintext sentAt', 1)
  return { text: p.text, seq: p.seq, sentAt: p.sentAt }
}

function checkMessageId (id: Uint8Array, field: string): MessageId {
  if (!(id instanceof Uint8Array) || id.byteLength !== MESSAGE_ID_BYTES) {
    malformed(`${field} must be ${MESSAGE_ID_BYTES} bytes, got ${id instanceof Uint8Array ? id.byteLength : typeof id}`)
  }
  return id.slice()
}

function checkPeerId (value: string, field: string): void {
  if (typeof value !== 'string' || !isPeerIdString(value)) {
    malformed(`${field} is not a PeerId: ${JSON.stringify(String(value).slice(0, MAX_PEER_ID_CHARS))}`)
  }
}

function checkSafeInteger (value: number, field: string, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) malformed(`${field} must be an integer from ${min} to 2^53-1, got ${value}`)
}

function uint64ToNumber (value: bigint, field: string): number {
  if (value > MAX_SAFE) malformed(`${field} ${value} is larger than 2^53-1`)
  return Number(value)
}
