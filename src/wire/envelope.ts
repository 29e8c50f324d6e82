import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum Kind {
  KIND_UNSPECIFIED = 'KIND_UNSPECIFIED',
  TEXT = 'TEXT',
  RECEIPT = 'RECEIPT',
  GROUP_CONTROL = 'GROUP_CONTROL',
  SENDER_KEY = 'SENDER_KEY',
  GROUP_TEXT = 'GROUP_TEXT',
  BATCH = 'BATCH'
}

enum __KindValues {
  KIND_UNSPECIFIED = 0,
  TEXT = 1,
  RECEIPT = 2,
  GROUP_CONTROL = 3,
  SENDER_KEY = 4,
  GROUP_TEXT = 5,
  BATCH = 6
}

export namespace Kind {
  export const codec = (): Codec<Kind> => {
    return enumeration<Kind>(__KindValues)
  }
}

export interface Envelope {
  version: number
  id: Uint8Array<ArrayBuffer>
  recipient: string
  sender: string
  timestamp: bigint
  seq: bigint
  kind: Kind
  cipherType: number
  ciphertext: Uint8Array<ArrayBuffer>
}

export namespace Envelope {
  let _codec: Codec<Envelope>

  export const codec = (): Codec<Envelope> => {
    if (_codec == null) {
      _codec = message<Envelope>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.version != null && obj.version !== 0)) {
          w.uint32(8)
          w.uint32(obj.version)
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.id)
        }

        if ((obj.recipient != null && obj.recipient !== '')) {
          w.uint32(26)
          w.string(obj.recipient)
        }

        if ((obj.sender != null && obj.sender !== '')) {
          w.uint32(34)
          w.string(obj.sender)
        }

        if ((obj.timestamp != null && obj.timestamp !== 0n)) {
          w.uint32(40)
          w.uint64(obj.timestamp)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(48)
          w.uint64(obj.seq)
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(56)
          Kind.codec().encode(obj.kind, w)
        }

        if ((obj.cipherType != null && obj.cipherType !== 0)) {
          w.uint32(64)
          w.uint32(obj.cipherType)
        }

        if ((obj.ciphertext != null && obj.ciphertext.byteLength > 0)) {
          w.uint32(74)
          w.bytes(obj.ciphertext)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          version: 0,
          id: uint8ArrayAlloc(0),
          recipient: '',
          sender: '',
          timestamp: 0n,
          seq: 0n,
          kind: Kind.KIND_UNSPECIFIED,
          cipherType: 0,
          ciphertext: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.version = reader.uint32()
              break
            }
            case 2: {
              obj.id = reader.bytes()
              break
            }
            case 3: {
              obj.recipient = reader.string()
              break
            }
            case 4: {
              obj.sender = reader.string()
              break
            }
            case 5: {
              obj.timestamp = reader.uint64()
              break
            }
            case 6: {
              obj.seq = reader.uint64()
              break
            }
            case 7: {
              obj.kind = Kind.codec().decode(reader)
              break
            }
            case 8: {
              obj.cipherType = reader.uint32()
              break
            }
            case 9: {
              obj.ciphertext = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.recipient`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.sender`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.timestamp`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.kind`,
                value: Kind.codec().decode(reader)
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.cipherType`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.ciphertext`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface EnvelopeVersionFieldEvent {
    field: '$.version'
    value: number
  }

  export interface EnvelopeIdFieldEvent {
    field: '$.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface EnvelopeRecipientFieldEvent {
    field: '$.recipient'
    value: string
  }

  export interface EnvelopeSenderFieldEvent {
    field: '$.sender'
    value: string
  }

  export interface EnvelopeTimestampFieldEvent {
    field: '$.timestamp'
    value: bigint
  }

  export interface EnvelopeSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface EnvelopeKindFieldEvent {
    field: '$.kind'
    value: Kind
  }

  export interface EnvelopeCipherTypeFieldEvent {
    field: '$.cipherType'
    value: number
  }

  export interface EnvelopeCiphertextFieldEvent {
    field: '$.ciphertext'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Envelope>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Envelope.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Envelope>): Envelope {
    return decodeMessage(buf, Envelope.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Envelope>): Generator<EnvelopeVersionFieldEvent | EnvelopeIdFieldEvent | EnvelopeRecipientFieldEvent | EnvelopeSenderFieldEvent | EnvelopeTimestampFieldEvent | EnvelopeSeqFieldEvent | EnvelopeKindFieldEvent | EnvelopeCipherTypeFieldEvent | EnvelopeCiphertextFieldEvent> {
    return streamMessage(buf, Envelope.codec(), opts)
  }
}

export enum AckStatus {
  ACK_UNSPECIFIED = 'ACK_UNSPECIFIED',
  ACCEPTED = 'ACCEPTED',
  DUPLICATE = 'DUPLICATE',
  REJECTED = 'REJECTED',
  RATE_LIMITED = 'RATE_LIMITED',
  IDENTITY_CHANGED = 'IDENTITY_CHANGED'
}

enum __AckStatusValues {
  ACK_UNSPECIFIED = 0,
  ACCEPTED = 1,
  DUPLICATE = 2,
  REJECTED = 3,
  RATE_LIMITED = 4,
  IDENTITY_CHANGED = 5
}

export namespace AckStatus {
  export const codec = (): Codec<AckStatus> => {
    return enumeration<AckStatus>(__AckStatusValues)
  }
}

export interface Ack {
  id: Uint8Array<ArrayBuffer>
  status: AckStatus
  reason: string
}

export namespace Ack {
  let _codec: Codec<Ack>

  export const codec = (): Codec<Ack> => {
    if (_codec == null) {
      _codec = message<Ack>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if (obj.status != null && __AckStatusValues[obj.status] !== 0) {
          w.uint32(16)
          AckStatus.codec().encode(obj.status, w)
        }

        if ((obj.reason != null && obj.reason !== '')) {
          w.uint32(26)
          w.string(obj.reason)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          status: AckStatus.ACK_UNSPECIFIED,
          reason: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              obj.status = AckStatus.codec().decode(reader)
              break
            }
            case 3: {
              obj.reason = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.status`,
                value: AckStatus.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.reason`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface AckIdFieldEvent {
    field: '$.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AckStatusFieldEvent {
    field: '$.status'
    value: AckStatus
  }

  export interface AckReasonFieldEvent {
    field: '$.reason'
    value: string
  }

  export function encode (obj: Partial<Ack>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Ack.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Ack>): Ack {
    return decodeMessage(buf, Ack.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Ack>): Generator<AckIdFieldEvent | AckStatusFieldEvent | AckReasonFieldEvent> {
    return streamMessage(buf, Ack.codec(), opts)
  }
}

export interface DmFrame {
  envelope?: Envelope
  ack?: Ack
}

export namespace DmFrame {
  let _codec: Codec<DmFrame>

  export const codec = (): Codec<DmFrame> => {
    if (_codec == null) {
      _codec = message<DmFrame>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.envelope != null) {
          w.uint32(10)
          Envelope.codec().encode(obj.envelope, w)
        }

        if (obj.ack != null) {
          w.uint32(18)
          Ack.codec().encode(obj.ack, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {}

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.envelope = Envelope.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.envelope
              })
              break
            }
            case 2: {
              obj.ack = Ack.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.ack
              })
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield * Envelope.codec().stream(reader, reader.uint32(), `${prefix}.envelope`, {
                limits: opts.limits?.envelope
              })

              break
            }
            case 2: {
              yield * Ack.codec().stream(reader, reader.uint32(), `${prefix}.ack`, {
                limits: opts.limits?.ack
              })

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface DmFrameEnvelopeVersionFieldEvent {
    field: '$.envelope.version'
    value: number
  }

  export interface DmFrameEnvelopeIdFieldEvent {
    field: '$.envelope.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DmFrameEnvelopeRecipientFieldEvent {
    field: '$.envelope.recipient'
    value: string
  }

  export interface DmFrameEnvelopeSenderFieldEvent {
    field: '$.envelope.sender'
    value: string
  }

  export interface DmFrameEnvelopeTimestampFieldEvent {
    field: '$.envelope.timestamp'
    value: bigint
  }

  export interface DmFrameEnvelopeSeqFieldEvent {
    field: '$.envelope.seq'
    value: bigint
  }

  export interface DmFrameEnvelopeKindFieldEvent {
    field: '$.envelope.kind'
    value: Kind
  }

  export interface DmFrameEnvelopeCipherTypeFieldEvent {
    field: '$.envelope.cipherType'
    value: number
  }

  export interface DmFrameEnvelopeCiphertextFieldEvent {
    field: '$.envelope.ciphertext'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DmFrameAckIdFieldEvent {
    field: '$.ack.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DmFrameAckStatusFieldEvent {
    field: '$.ack.status'
    value: AckStatus
  }

  export interface DmFrameAckReasonFieldEvent {
    field: '$.ack.reason'
    value: string
  }

  export function encode (obj: Partial<DmFrame>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, DmFrame.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DmFrame>): DmFrame {
    return decodeMessage(buf, DmFrame.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DmFrame>): Generator<DmFrameEnvelopeVersionFieldEvent | DmFrameEnvelopeIdFieldEvent | DmFrameEnvelopeRecipientFieldEvent | DmFrameEnvelopeSenderFieldEvent | DmFrameEnvelopeTimestampFieldEvent | DmFrameEnvelopeSeqFieldEvent | DmFrameEnvelopeKindFieldEvent | DmFrameEnvelopeCipherTypeFieldEvent | DmFrameEnvelopeCiphertextFieldEvent | DmFrameAckIdFieldEvent | DmFrameAckStatusFieldEvent | DmFrameAckReasonFieldEvent> {
    return streamMessage(buf, DmFrame.codec(), opts)
  }
}

export enum ReceiptType {
  RECEIPT_UNSPECIFIED = 'RECEIPT_UNSPECIFIED',
  DELIVERED = 'DELIVERED',
  READ = 'READ'
}

enum __ReceiptTypeValues {
  RECEIPT_UNSPECIFIED = 0,
  DELIVERED = 1,
  READ = 2
}

export namespace ReceiptType {
  export const codec = (): Codec<ReceiptType> => {
    return enumeration<ReceiptType>(__ReceiptTypeValues)
  }
}

export interface Receipt {
  type: ReceiptType
  ids: Uint8Array<ArrayBuffer>[]
}

export namespace Receipt {
  let _codec: Codec<Receipt>

  export const codec = (): Codec<Receipt> => {
    if (_codec == null) {
      _codec = message<Receipt>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __ReceiptTypeValues[obj.type] !== 0) {
          w.uint32(8)
          ReceiptType.codec().encode(obj.type, w)
        }

        if (obj.ids != null && obj.ids.length > 0) {
          for (const value of obj.ids) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: ReceiptType.RECEIPT_UNSPECIFIED,
          ids: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = ReceiptType.codec().decode(reader)
              break
            }
            case 2: {
              if (opts.limits?.ids != null && obj.ids.length === opts.limits.ids) {
                throw new MaxLengthError('Decode error - repeated field "ids" had too many elements')
              }

              obj.ids.push(reader.bytes())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          ids: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: ReceiptType.codec().decode(reader)
              }
              break
            }
            case 2: {
              if (opts.limits?.ids != null && obj.ids === opts.limits.ids) {
                throw new MaxLengthError('Streaming decode error - repeated field "ids" had too many elements')
              }

              yield {
                field: `${prefix}.ids[]`,
                index: obj.ids,
                value: reader.bytes()
              }

              obj.ids++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptTypeFieldEvent {
    field: '$.type'
    value: ReceiptType
  }

  export interface ReceiptIdsFieldEvent {
    field: '$.ids[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Receipt>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Receipt.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Receipt {
    return decodeMessage(buf, Receipt.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Generator<ReceiptTypeFieldEvent | ReceiptIdsFieldEvent> {
    return streamMessage(buf, Receipt.codec(), opts)
  }
}

export interface Plaintext {
  text: Uint8Array<ArrayBuffer>
  seq: bigint
  sentAt: bigint
  padding?: Uint8Array<ArrayBuffer>
}

export namespace Plaintext {
  let _codec: Codec<Plaintext>

  export const codec = (): Codec<Plaintext> => {
    if (_codec == null) {
      _codec = message<Plaintext>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.text != null && obj.text.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.text)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(16)
          w.uint64(obj.seq)
        }

        if ((obj.sentAt != null && obj.sentAt !== 0n)) {
          w.uint32(24)
          w.uint64(obj.sentAt)
        }

        if (obj.padding != null) {
          w.uint32(34)
          w.bytes(obj.padding)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          text: uint8ArrayAlloc(0),
          seq: 0n,
          sentAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.text = reader.bytes()
              break
            }
            case 2: {
              obj.seq = reader.uint64()
              break
            }
            case 3: {
              obj.sentAt = reader.uint64()
              break
            }
            case 4: {
              obj.padding = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.text`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.sentAt`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.padding`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface PlaintextTextFieldEvent {
    field: '$.text'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PlaintextSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface PlaintextSentAtFieldEvent {
    field: '$.sentAt'
    value: bigint
  }

  export interface PlaintextPaddingFieldEvent {
    field: '$.padding'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Plaintext>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Plaintext.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Plaintext>): Plaintext {
    return decodeMessage(buf, Plaintext.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Plaintext>): Generator<PlaintextTextFieldEvent | PlaintextSeqFieldEvent | PlaintextSentAtFieldEvent | PlaintextPaddingFieldEvent> {
    return streamMessage(buf, Plaintext.codec(), opts)
  }
}

export interface BatchItem {
  id: Uint8Array<ArrayBuffer>
  kind: Kind
  timestamp: bigint
  seq: bigint
  plaintext: Uint8Array<ArrayBuffer>
}

export namespace BatchItem {
  let _codec: Codec<BatchItem>

  export const codec = (): Codec<BatchItem> => {
    if (_codec == null) {
      _codec = message<BatchItem>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.id != null && obj.id.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.id)
        }

        if (obj.kind != null && __KindValues[obj.kind] !== 0) {
          w.uint32(16)
          Kind.codec().encode(obj.kind, w)
        }

        if ((obj.timestamp != null && obj.timestamp !== 0n)) {
          w.uint32(24)
          w.uint64(obj.timestamp)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(32)
          w.uint64(obj.seq)
        }

        if ((obj.plaintext != null && obj.plaintext.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.plaintext)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          id: uint8ArrayAlloc(0),
          kind: Kind.KIND_UNSPECIFIED,
          timestamp: 0n,
          seq: 0n,
          plaintext: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.id = reader.bytes()
              break
            }
            case 2: {
              obj.kind = Kind.codec().decode(reader)
              break
            }
            case 3: {
              obj.timestamp = reader.uint64()
              break
            }
            case 4: {
              obj.seq = reader.uint64()
              break
            }
            case 5: {
              obj.plaintext = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.id`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.kind`,
                value: Kind.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.timestamp`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.plaintext`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface BatchItemIdFieldEvent {
    field: '$.id'
    value: Uint8Array<ArrayBuffer>
  }

  export interface BatchItemKindFieldEvent {
    field: '$.kind'
    value: Kind
  }

  export interface BatchItemTimestampFieldEvent {
    field: '$.timestamp'
    value: bigint
  }

  export interface BatchItemSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface BatchItemPlaintextFieldEvent {
    field: '$.plaintext'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<BatchItem>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BatchItem.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BatchItem>): BatchItem {
    return decodeMessage(buf, BatchItem.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BatchItem>): Generator<BatchItemIdFieldEvent | BatchItemKindFieldEvent | BatchItemTimestampFieldEvent | BatchItemSeqFieldEvent | BatchItemPlaintextFieldEvent> {
    return streamMessage(buf, BatchItem.codec(), opts)
  }
}

export interface Batch {
  items: BatchItem[]
}

export namespace Batch {
  let _codec: Codec<Batch>

  export const codec = (): Codec<Batch> => {
    if (_codec == null) {
      _codec = message<Batch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.items != null && obj.items.length > 0) {
          for (const value of obj.items) {
            w.uint32(10)
            BatchItem.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          items: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.items != null && obj.items.length === opts.limits.items) {
                throw new MaxLengthError('Decode error - repeated field "items" had too many elements')
              }

              obj.items.push(BatchItem.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.items$
              }))
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          items: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.items != null && obj.items === opts.limits.items) {
                throw new MaxLengthError('Streaming decode error - repeated field "items" had too many elements')
              }

              for (const evt of BatchItem.codec().stream(reader, reader.uint32(), `${prefix}.items[]`, {
                limits: opts.limits?.items$
              })) {
                yield {
                  ...evt,
                  index: obj.items
                }
              }

              obj.items++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface BatchItemsIdFieldEvent {
    field: '$.items[].id'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface BatchItemsKindFieldEvent {
    field: '$.items[].kind'
    value: Kind
    index: number
  }

  export interface BatchItemsTimestampFieldEvent {
    field: '$.items[].timestamp'
    value: bigint
    index: number
  }

  export interface BatchItemsSeqFieldEvent {
    field: '$.items[].seq'
    value: bigint
    index: number
  }

  export interface BatchItemsPlaintextFieldEvent {
    field: '$.items[].plaintext'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export function encode (obj: Partial<Batch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Batch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Batch>): Batch {
    return decodeMessage(buf, Batch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Batch>): Generator<BatchItemsIdFieldEvent | BatchItemsKindFieldEvent | BatchItemsTimestampFieldEvent | BatchItemsSeqFieldEvent | BatchItemsPlaintextFieldEvent> {
    return streamMessage(buf, Batch.codec(), opts)
  }
}
