import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface Membership {
  groupId: string
  version: bigint
  name: string
  members: string[]
  admins: string[]
  prevHash: Uint8Array<ArrayBuffer>
  author: string
  keyEpoch: bigint
  createdAt: bigint
  signature: Uint8Array<ArrayBuffer>
}

export namespace Membership {
  let _codec: Codec<Membership>

  export const codec = (): Codec<Membership> => {
    if (_codec == null) {
      _codec = message<Membership>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId !== '')) {
          w.uint32(10)
          w.string(obj.groupId)
        }

        if ((obj.version != null && obj.version !== 0n)) {
          w.uint32(16)
          w.uint64(obj.version)
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(26)
          w.string(obj.name)
        }

        if (obj.members != null && obj.members.length > 0) {
          for (const value of obj.members) {
            w.uint32(34)
            w.string(value)
          }
        }

        if (obj.admins != null && obj.admins.length > 0) {
          for (const value of obj.admins) {
            w.uint32(42)
            w.string(value)
          }
        }

        if ((obj.prevHash != null && obj.prevHash.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.prevHash)
        }

        if ((obj.author != null && obj.author !== '')) {
          w.uint32(58)
          w.string(obj.author)
        }

        if ((obj.keyEpoch != null && obj.keyEpoch !== 0n)) {
          w.uint32(64)
          w.uint64(obj.keyEpoch)
        }

        if ((obj.createdAt != null && obj.createdAt !== 0n)) {
          w.uint32(72)
          w.uint64(obj.createdAt)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(82)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: '',
          version: 0n,
          name: '',
          members: [],
          admins: [],
          prevHash: uint8ArrayAlloc(0),
          author: '',
          keyEpoch: 0n,
          createdAt: 0n,
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.string()
              break
            }
            case 2: {
              obj.version = reader.uint64()
              break
            }
            case 3: {
              obj.name = reader.string()
              break
            }
            case 4: {
              if (opts.limits?.members != null && obj.members.length === opts.limits.members) {
                throw new MaxLengthError('Decode error - repeated field "members" had too many elements')
              }

              obj.members.push(reader.string())
              break
            }
            case 5: {
              if (opts.limits?.admins != null && obj.admins.length === opts.limits.admins) {
                throw new MaxLengthError('Decode error - repeated field "admins" had too many elements')
              }

              obj.admins.push(reader.string())
              break
            }
            case 6: {
              obj.prevHash = reader.bytes()
              break
            }
            case 7: {
              obj.author = reader.string()
              break
            }
            case 8: {
              obj.keyEpoch = reader.uint64()
              break
            }
            case 9: {
              obj.createdAt = reader.uint64()
              break
            }
            case 10: {
              obj.signature = reader.bytes()
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
          members: 0,
          admins: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.version`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 4: {
              if (opts.limits?.members != null && obj.members === opts.limits.members) {
                throw new MaxLengthError('Streaming decode error - repeated field "members" had too many elements')
              }

              yield {
                field: `${prefix}.members[]`,
                index: obj.members,
                value: reader.string()
              }

              obj.members++

              break
            }
            case 5: {
              if (opts.limits?.admins != null && obj.admins === opts.limits.admins) {
                throw new MaxLengthError('Streaming decode error - repeated field "admins" had too many elements')
              }

              yield {
                field: `${prefix}.admins[]`,
                index: obj.admins,
                value: reader.string()
              }

              obj.admins++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.prevHash`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.author`,
                value: reader.string()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.keyEpoch`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.createdAt`,
                value: reader.uint64()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.signature`,
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

  export interface MembershipGroupIdFieldEvent {
    field: '$.groupId'
    value: string
  }

  export interface MembershipVersionFieldEvent {
    field: '$.version'
    value: bigint
  }

  export interface MembershipNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface MembershipMembersFieldEvent {
    field: '$.members[]'
    index: number
    value: string
  }

  export interface MembershipAdminsFieldEvent {
    field: '$.admins[]'
    index: number
    value: string
  }

  export interface MembershipPrevHashFieldEvent {
    field: '$.prevHash'
    value: Uint8Array<ArrayBuffer>
  }

  export interface MembershipAuthorFieldEvent {
    field: '$.author'
    value: string
  }

  export interface MembershipKeyEpochFieldEvent {
    field: '$.keyEpoch'
    value: bigint
  }

  export interface MembershipCreatedAtFieldEvent {
    field: '$.createdAt'
    value: bigint
  }

  export interface MembershipSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<Membership>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Membership.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Membership>): Membership {
    return decodeMessage(buf, Membership.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Membership>): Generator<MembershipGroupIdFieldEvent | MembershipVersionFieldEvent | MembershipNameFieldEvent | MembershipMembersFieldEvent | MembershipAdminsFieldEvent | MembershipPrevHashFieldEvent | MembershipAuthorFieldEvent | MembershipKeyEpochFieldEvent | MembershipCreatedAtFieldEvent | MembershipSignatureFieldEvent> {
    return streamMessage(buf, Membership.codec(), opts)
  }
}

export interface GroupMessage {
  groupId: string
  sender: string
  seq: bigint
  sentAt: bigint
  epoch: bigint
  ciphertext: Uint8Array<ArrayBuffer>
}

export namespace GroupMessage {
  let _codec: Codec<GroupMessage>

  export const codec = (): Codec<GroupMessage> => {
    if (_codec == null) {
      _codec = message<GroupMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId !== '')) {
          w.uint32(10)
          w.string(obj.groupId)
        }

        if ((obj.sender != null && obj.sender !== '')) {
          w.uint32(18)
          w.string(obj.sender)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(24)
          w.uint64(obj.seq)
        }

        if ((obj.sentAt != null && obj.sentAt !== 0n)) {
          w.uint32(32)
          w.uint64(obj.sentAt)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(40)
          w.uint64(obj.epoch)
        }

        if ((obj.ciphertext != null && obj.ciphertext.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.ciphertext)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: '',
          sender: '',
          seq: 0n,
          sentAt: 0n,
          epoch: 0n,
          ciphertext: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.string()
              break
            }
            case 2: {
              obj.sender = reader.string()
              break
            }
            case 3: {
              obj.seq = reader.uint64()
              break
            }
            case 4: {
              obj.sentAt = reader.uint64()
              break
            }
            case 5: {
              obj.epoch = reader.uint64()
              break
            }
            case 6: {
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
                field: `${prefix}.groupId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.sender`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.sentAt`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.epoch`,
                value: reader.uint64()
              }
              break
            }
            case 6: {
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

  export interface GroupMessageGroupIdFieldEvent {
    field: '$.groupId'
    value: string
  }

  export interface GroupMessageSenderFieldEvent {
    field: '$.sender'
    value: string
  }

  export interface GroupMessageSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface GroupMessageSentAtFieldEvent {
    field: '$.sentAt'
    value: bigint
  }

  export interface GroupMessageEpochFieldEvent {
    field: '$.epoch'
    value: bigint
  }

  export interface GroupMessageCiphertextFieldEvent {
    field: '$.ciphertext'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<GroupMessage>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GroupMessage.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupMessage>): GroupMessage {
    return decodeMessage(buf, GroupMessage.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupMessage>): Generator<GroupMessageGroupIdFieldEvent | GroupMessageSenderFieldEvent | GroupMessageSeqFieldEvent | GroupMessageSentAtFieldEvent | GroupMessageEpochFieldEvent | GroupMessageCiphertextFieldEvent> {
    return streamMessage(buf, GroupMessage.codec(), opts)
  }
}

export interface GroupPlaintext {
  text: Uint8Array<ArrayBuffer>
  seq: bigint
  sentAt: bigint
  padding?: Uint8Array<ArrayBuffer>
}

export namespace GroupPlaintext {
  let _codec: Codec<GroupPlaintext>

  export const codec = (): Codec<GroupPlaintext> => {
    if (_codec == null) {
      _codec = message<GroupPlaintext>((obj, w, opts = {}) => {
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

  export interface GroupPlaintextTextFieldEvent {
    field: '$.text'
    value: Uint8Array<ArrayBuffer>
  }

  export interface GroupPlaintextSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface GroupPlaintextSentAtFieldEvent {
    field: '$.sentAt'
    value: bigint
  }

  export interface GroupPlaintextPaddingFieldEvent {
    field: '$.padding'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<GroupPlaintext>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GroupPlaintext.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupPlaintext>): GroupPlaintext {
    return decodeMessage(buf, GroupPlaintext.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupPlaintext>): Generator<GroupPlaintextTextFieldEvent | GroupPlaintextSeqFieldEvent | GroupPlaintextSentAtFieldEvent | GroupPlaintextPaddingFieldEvent> {
    return streamMessage(buf, GroupPlaintext.codec(), opts)
  }
}

export interface SenderKey {
  groupId: string
  epoch: bigint
  distribution: Uint8Array<ArrayBuffer>
  nextSeq: bigint
}

export namespace SenderKey {
  let _codec: Codec<SenderKey>

  export const codec = (): Codec<SenderKey> => {
    if (_codec == null) {
      _codec = message<SenderKey>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId !== '')) {
          w.uint32(10)
          w.string(obj.groupId)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(16)
          w.uint64(obj.epoch)
        }

        if ((obj.distribution != null && obj.distribution.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.distribution)
        }

        if ((obj.nextSeq != null && obj.nextSeq !== 0n)) {
          w.uint32(32)
          w.uint64(obj.nextSeq)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: '',
          epoch: 0n,
          distribution: uint8ArrayAlloc(0),
          nextSeq: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.string()
              break
            }
            case 2: {
              obj.epoch = reader.uint64()
              break
            }
            case 3: {
              obj.distribution = reader.bytes()
              break
            }
            case 4: {
              obj.nextSeq = reader.uint64()
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
                field: `${prefix}.groupId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.epoch`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.distribution`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.nextSeq`,
                value: reader.uint64()
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

  export interface SenderKeyGroupIdFieldEvent {
    field: '$.groupId'
    value: string
  }

  export interface SenderKeyEpochFieldEvent {
    field: '$.epoch'
    value: bigint
  }

  export interface SenderKeyDistributionFieldEvent {
    field: '$.distribution'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SenderKeyNextSeqFieldEvent {
    field: '$.nextSeq'
    value: bigint
  }

  export function encode (obj: Partial<SenderKey>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SenderKey.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SenderKey>): SenderKey {
    return decodeMessage(buf, SenderKey.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SenderKey>): Generator<SenderKeyGroupIdFieldEvent | SenderKeyEpochFieldEvent | SenderKeyDistributionFieldEvent | SenderKeyNextSeqFieldEvent> {
    return streamMessage(buf, SenderKey.codec(), opts)
  }
}

export enum ControlType {
  CONTROL_UNSPECIFIED = 'CONTROL_UNSPECIFIED',
  MEMBERSHIP = 'MEMBERSHIP',
  INVITE = 'INVITE',
  ACCEPT = 'ACCEPT',
  DECLINE = 'DECLINE',
  LEAVE = 'LEAVE'
}

enum __ControlTypeValues {
  CONTROL_UNSPECIFIED = 0,
  MEMBERSHIP = 1,
  INVITE = 2,
  ACCEPT = 3,
  DECLINE = 4,
  LEAVE = 5
}

export namespace ControlType {
  export const codec = (): Codec<ControlType> => {
    return enumeration<ControlType>(__ControlTypeValues)
  }
}

export interface GroupControl {
  type: ControlType
  groupId: string
  chain: Membership[]
}

export namespace GroupControl {
  let _codec: Codec<GroupControl>

  export const codec = (): Codec<GroupControl> => {
    if (_codec == null) {
      _codec = message<GroupControl>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __ControlTypeValues[obj.type] !== 0) {
          w.uint32(8)
          ControlType.codec().encode(obj.type, w)
        }

        if ((obj.groupId != null && obj.groupId !== '')) {
          w.uint32(18)
          w.string(obj.groupId)
        }

        if (obj.chain != null && obj.chain.length > 0) {
          for (const value of obj.chain) {
            w.uint32(26)
            Membership.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: ControlType.CONTROL_UNSPECIFIED,
          groupId: '',
          chain: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = ControlType.codec().decode(reader)
              break
            }
            case 2: {
              obj.groupId = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.chain != null && obj.chain.length === opts.limits.chain) {
                throw new MaxLengthError('Decode error - repeated field "chain" had too many elements')
              }

              obj.chain.push(Membership.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.chain$
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
          chain: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: ControlType.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if (opts.limits?.chain != null && obj.chain === opts.limits.chain) {
                throw new MaxLengthError('Streaming decode error - repeated field "chain" had too many elements')
              }

              for (const evt of Membership.codec().stream(reader, reader.uint32(), `${prefix}.chain[]`, {
                limits: opts.limits?.chain$
              })) {
                yield {
                  ...evt,
                  index: obj.chain
                }
              }

              obj.chain++

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

  export interface GroupControlTypeFieldEvent {
    field: '$.type'
    value: ControlType
  }

  export interface GroupControlGroupIdFieldEvent {
    field: '$.groupId'
    value: string
  }

  export interface GroupControlChainGroupIdFieldEvent {
    field: '$.chain[].groupId'
    value: string
    index: number
  }

  export interface GroupControlChainVersionFieldEvent {
    field: '$.chain[].version'
    value: bigint
    index: number
  }

  export interface GroupControlChainNameFieldEvent {
    field: '$.chain[].name'
    value: string
    index: number
  }

  export interface GroupControlChainMembersFieldEvent {
    field: '$.chain[].members[]'
    index: number
    value: string
  }

  export interface GroupControlChainAdminsFieldEvent {
    field: '$.chain[].admins[]'
    index: number
    value: string
  }

  export interface GroupControlChainPrevHashFieldEvent {
    field: '$.chain[].prevHash'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface GroupControlChainAuthorFieldEvent {
    field: '$.chain[].author'
    value: string
    index: number
  }

  export interface GroupControlChainKeyEpochFieldEvent {
    field: '$.chain[].keyEpoch'
    value: bigint
    index: number
  }

  export interface GroupControlChainCreatedAtFieldEvent {
    field: '$.chain[].createdAt'
    value: bigint
    index: number
  }

  export interface GroupControlChainSignatureFieldEvent {
    field: '$.chain[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export function encode (obj: Partial<GroupControl>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, GroupControl.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupControl>): GroupControl {
    return decodeMessage(buf, GroupControl.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<GroupControl>): Generator<GroupControlTypeFieldEvent | GroupControlGroupIdFieldEvent | GroupControlChainGroupIdFieldEvent | GroupControlChainVersionFieldEvent | GroupControlChainNameFieldEvent | GroupControlChainMembersFieldEvent | GroupControlChainAdminsFieldEvent | GroupControlChainPrevHashFieldEvent | GroupControlChainAuthorFieldEvent | GroupControlChainKeyEpochFieldEvent | GroupControlChainCreatedAtFieldEvent | GroupControlChainSignatureFieldEvent> {
    return streamMessage(buf, GroupControl.codec(), opts)
  }
}

export interface SenderPosition {
  sender: string
  seq: bigint
}

export namespace SenderPosition {
  let _codec: Codec<SenderPosition>

  export const codec = (): Codec<SenderPosition> => {
    if (_codec == null) {
      _codec = message<SenderPosition>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.sender != null && obj.sender !== '')) {
          w.uint32(10)
          w.string(obj.sender)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(16)
          w.uint64(obj.seq)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          sender: '',
          seq: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.sender = reader.string()
              break
            }
            case 2: {
              obj.seq = reader.uint64()
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
                field: `${prefix}.sender`,
                value: reader.string()
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

  export interface SenderPositionSenderFieldEvent {
    field: '$.sender'
    value: string
  }

  export interface SenderPositionSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export function encode (obj: Partial<SenderPosition>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SenderPosition.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SenderPosition>): SenderPosition {
    return decodeMessage(buf, SenderPosition.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SenderPosition>): Generator<SenderPositionSenderFieldEvent | SenderPositionSeqFieldEvent> {
    return streamMessage(buf, SenderPosition.codec(), opts)
  }
}

export interface HistoryRequest {
  groupId: string
  known: SenderPosition[]
  limit: number
}

export namespace HistoryRequest {
  let _codec: Codec<HistoryRequest>

  export const codec = (): Codec<HistoryRequest> => {
    if (_codec == null) {
      _codec = message<HistoryRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.groupId != null && obj.groupId !== '')) {
          w.uint32(10)
          w.string(obj.groupId)
        }

        if (obj.known != null && obj.known.length > 0) {
          for (const value of obj.known) {
            w.uint32(18)
            SenderPosition.codec().encode(value, w)
          }
        }

        if ((obj.limit != null && obj.limit !== 0)) {
          w.uint32(24)
          w.uint32(obj.limit)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          groupId: '',
          known: [],
          limit: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.groupId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.known != null && obj.known.length === opts.limits.known) {
                throw new MaxLengthError('Decode error - repeated field "known" had too many elements')
              }

              obj.known.push(SenderPosition.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.known$
              }))
              break
            }
            case 3: {
              obj.limit = reader.uint32()
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
          known: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.groupId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.known != null && obj.known === opts.limits.known) {
                throw new MaxLengthError('Streaming decode error - repeated field "known" had too many elements')
              }

              for (const evt of SenderPosition.codec().stream(reader, reader.uint32(), `${prefix}.known[]`, {
                limits: opts.limits?.known$
              })) {
                yield {
                  ...evt,
                  index: obj.known
                }
              }

              obj.known++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.limit`,
                value: reader.uint32()
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

  export interface HistoryRequestGroupIdFieldEvent {
    field: '$.groupId'
    value: string
  }

  export interface HistoryRequestKnownSenderFieldEvent {
    field: '$.known[].sender'
    value: string
    index: number
  }

  export interface HistoryRequestKnownSeqFieldEvent {
    field: '$.known[].seq'
    value: bigint
    index: number
  }

  export interface HistoryRequestLimitFieldEvent {
    field: '$.limit'
    value: number
  }

  export function encode (obj: Partial<HistoryRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HistoryRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HistoryRequest>): HistoryRequest {
    return decodeMessage(buf, HistoryRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HistoryRequest>): Generator<HistoryRequestGroupIdFieldEvent | HistoryRequestKnownSenderFieldEvent | HistoryRequestKnownSeqFieldEvent | HistoryRequestLimitFieldEvent> {
    return streamMessage(buf, HistoryRequest.codec(), opts)
  }
}

export enum HistoryStatus {
  HISTORY_UNSPECIFIED = 'HISTORY_UNSPECIFIED',
  HISTORY_OK = 'HISTORY_OK',
  HISTORY_NOT_A_MEMBER = 'HISTORY_NOT_A_MEMBER',
  HISTORY_UNKNOWN_GROUP = 'HISTORY_UNKNOWN_GROUP',
  HISTORY_BAD_REQUEST = 'HISTORY_BAD_REQUEST',
  HISTORY_RATE_LIMITED = 'HISTORY_RATE_LIMITED'
}

enum __HistoryStatusValues {
  HISTORY_UNSPECIFIED = 0,
  HISTORY_OK = 1,
  HISTORY_NOT_A_MEMBER = 2,
  HISTORY_UNKNOWN_GROUP = 3,
  HISTORY_BAD_REQUEST = 4,
  HISTORY_RATE_LIMITED = 5
}

export namespace HistoryStatus {
  export const codec = (): Codec<HistoryStatus> => {
    return enumeration<HistoryStatus>(__HistoryStatusValues)
  }
}

export interface HistoryResponse {
  status: HistoryStatus
  reason: string
  messages: Uint8Array<ArrayBuffer>[]
  more: boolean
}

export namespace HistoryResponse {
  let _codec: Codec<HistoryResponse>

  export const codec = (): Codec<HistoryResponse> => {
    if (_codec == null) {
      _codec = message<HistoryResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.status != null && __HistoryStatusValues[obj.status] !== 0) {
          w.uint32(8)
          HistoryStatus.codec().encode(obj.status, w)
        }

        if ((obj.reason != null && obj.reason !== '')) {
          w.uint32(18)
          w.string(obj.reason)
        }

        if (obj.messages != null && obj.messages.length > 0) {
          for (const value of obj.messages) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if ((obj.more != null && obj.more !== false)) {
          w.uint32(32)
          w.bool(obj.more)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          status: HistoryStatus.HISTORY_UNSPECIFIED,
          reason: '',
          messages: [],
          more: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.status = HistoryStatus.codec().decode(reader)
              break
            }
            case 2: {
              obj.reason = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.messages != null && obj.messages.length === opts.limits.messages) {
                throw new MaxLengthError('Decode error - repeated field "messages" had too many elements')
              }

              obj.messages.push(reader.bytes())
              break
            }
            case 4: {
              obj.more = reader.bool()
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
          messages: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.status`,
                value: HistoryStatus.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.reason`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if (opts.limits?.messages != null && obj.messages === opts.limits.messages) {
                throw new MaxLengthError('Streaming decode error - repeated field "messages" had too many elements')
              }

              yield {
                field: `${prefix}.messages[]`,
                index: obj.messages,
                value: reader.bytes()
              }

              obj.messages++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.more`,
                value: reader.bool()
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

  export interface HistoryResponseStatusFieldEvent {
    field: '$.status'
    value: HistoryStatus
  }

  export interface HistoryResponseReasonFieldEvent {
    field: '$.reason'
    value: string
  }

  export interface HistoryResponseMessagesFieldEvent {
    field: '$.messages[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HistoryResponseMoreFieldEvent {
    field: '$.more'
    value: boolean
  }

  export function encode (obj: Partial<HistoryResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, HistoryResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HistoryResponse>): HistoryResponse {
    return decodeMessage(buf, HistoryResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<HistoryResponse>): Generator<HistoryResponseStatusFieldEvent | HistoryResponseReasonFieldEvent | HistoryResponseMessagesFieldEvent | HistoryResponseMoreFieldEvent> {
    return streamMessage(buf, HistoryResponse.codec(), opts)
  }
}
