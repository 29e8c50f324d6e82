import { decodeMessage, encodeMessage, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface PrekeyBundle {
  peerId: string
  registrationId: number
  deviceId: number
  identityKey: Uint8Array<ArrayBuffer>
  signedPreKeyId: number
  signedPreKey: Uint8Array<ArrayBuffer>
  signedPreKeySignature: Uint8Array<ArrayBuffer>
  kyberPreKeyId: number
  kyberPreKey: Uint8Array<ArrayBuffer>
  kyberPreKeySignature: Uint8Array<ArrayBuffer>
  preKeyId?: number
  preKey?: Uint8Array<ArrayBuffer>
  issuedAt: bigint
  expiresAt: bigint
}

export namespace PrekeyBundle {
  let _codec: Codec<PrekeyBundle>

  export const codec = (): Codec<PrekeyBundle> => {
    if (_codec == null) {
      _codec = message<PrekeyBundle>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(10)
          w.string(obj.peerId)
        }

        if ((obj.registrationId != null && obj.registrationId !== 0)) {
          w.uint32(16)
          w.uint32(obj.registrationId)
        }

        if ((obj.deviceId != null && obj.deviceId !== 0)) {
          w.uint32(24)
          w.uint32(obj.deviceId)
        }

        if ((obj.identityKey != null && obj.identityKey.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.identityKey)
        }

        if ((obj.signedPreKeyId != null && obj.signedPreKeyId !== 0)) {
          w.uint32(40)
          w.uint32(obj.signedPreKeyId)
        }

        if ((obj.signedPreKey != null && obj.signedPreKey.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.signedPreKey)
        }

        if ((obj.signedPreKeySignature != null && obj.signedPreKeySignature.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.signedPreKeySignature)
        }

        if ((obj.kyberPreKeyId != null && obj.kyberPreKeyId !== 0)) {
          w.uint32(64)
          w.uint32(obj.kyberPreKeyId)
        }

        if ((obj.kyberPreKey != null && obj.kyberPreKey.byteLength > 0)) {
          w.uint32(74)
          w.bytes(obj.kyberPreKey)
        }

        if ((obj.kyberPreKeySignature != null && obj.kyberPreKeySignature.byteLength > 0)) {
          w.uint32(82)
          w.bytes(obj.kyberPreKeySignature)
        }

        if (obj.preKeyId != null) {
          w.uint32(88)
          w.uint32(obj.preKeyId)
        }

        if (obj.preKey != null) {
          w.uint32(98)
          w.bytes(obj.preKey)
        }

        if ((obj.issuedAt != null && obj.issuedAt !== 0n)) {
          w.uint32(104)
          w.uint64(obj.issuedAt)
        }

        if ((obj.expiresAt != null && obj.expiresAt !== 0n)) {
          w.uint32(112)
          w.uint64(obj.expiresAt)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: '',
          registrationId: 0,
          deviceId: 0,
          identityKey: uint8ArrayAlloc(0),
          signedPreKeyId: 0,
          signedPreKey: uint8ArrayAlloc(0),
          signedPreKeySignature: uint8ArrayAlloc(0),
          kyberPreKeyId: 0,
          kyberPreKey: uint8ArrayAlloc(0),
          kyberPreKeySignature: uint8ArrayAlloc(0),
          issuedAt: 0n,
          expiresAt: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.string()
              break
            }
            case 2: {
              obj.registrationId = reader.uint32()
              break
            }
            case 3: {
              obj.deviceId = reader.uint32()
              break
            }
            case 4: {
              obj.identityKey = reader.bytes()
              break
            }
            case 5: {
              obj.signedPreKeyId = reader.uint32()
              break
            }
            case 6: {
              obj.signedPreKey = reader.bytes()
              break
            }
            case 7: {
              obj.signedPreKeySignature = reader.bytes()
              break
            }
            case 8: {
              obj.kyberPreKeyId = reader.uint32()
              break
            }
            case 9: {
              obj.kyberPreKey = reader.bytes()
              break
            }
            case 10: {
              obj.kyberPreKeySignature = reader.bytes()
              break
            }
            case 11: {
              obj.preKeyId = reader.uint32()
              break
            }
            case 12: {
              obj.preKey = reader.bytes()
              break
            }
            case 13: {
              obj.issuedAt = reader.uint64()
              break
            }
            case 14: {
              obj.expiresAt = reader.uint64()
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
                field: `${prefix}.peerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.registrationId`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.deviceId`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.identityKey`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.signedPreKeyId`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.signedPreKey`,
                value: reader.bytes()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.signedPreKeySignature`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.kyberPreKeyId`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.kyberPreKey`,
                value: reader.bytes()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.kyberPreKeySignature`,
                value: reader.bytes()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.preKeyId`,
                value: reader.uint32()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.preKey`,
                value: reader.bytes()
              }
              break
            }
            case 13: {
              yield {
                field: `${prefix}.issuedAt`,
                value: reader.uint64()
              }
              break
            }
            case 14: {
              yield {
                field: `${prefix}.expiresAt`,
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

  export interface PrekeyBundlePeerIdFieldEvent {
    field: '$.peerId'
    value: string
  }

  export interface PrekeyBundleRegistrationIdFieldEvent {
    field: '$.registrationId'
    value: number
  }

  export interface PrekeyBundleDeviceIdFieldEvent {
    field: '$.deviceId'
    value: number
  }

  export interface PrekeyBundleIdentityKeyFieldEvent {
    field: '$.identityKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundleSignedPreKeyIdFieldEvent {
    field: '$.signedPreKeyId'
    value: number
  }

  export interface PrekeyBundleSignedPreKeyFieldEvent {
    field: '$.signedPreKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundleSignedPreKeySignatureFieldEvent {
    field: '$.signedPreKeySignature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundleKyberPreKeyIdFieldEvent {
    field: '$.kyberPreKeyId'
    value: number
  }

  export interface PrekeyBundleKyberPreKeyFieldEvent {
    field: '$.kyberPreKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundleKyberPreKeySignatureFieldEvent {
    field: '$.kyberPreKeySignature'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundlePreKeyIdFieldEvent {
    field: '$.preKeyId'
    value: number
  }

  export interface PrekeyBundlePreKeyFieldEvent {
    field: '$.preKey'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PrekeyBundleIssuedAtFieldEvent {
    field: '$.issuedAt'
    value: bigint
  }

  export interface PrekeyBundleExpiresAtFieldEvent {
    field: '$.expiresAt'
    value: bigint
  }

  export function encode (obj: Partial<PrekeyBundle>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PrekeyBundle.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PrekeyBundle>): PrekeyBundle {
    return decodeMessage(buf, PrekeyBundle.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PrekeyBundle>): Generator<PrekeyBundlePeerIdFieldEvent | PrekeyBundleRegistrationIdFieldEvent | PrekeyBundleDeviceIdFieldEvent | PrekeyBundleIdentityKeyFieldEvent | PrekeyBundleSignedPreKeyIdFieldEvent | PrekeyBundleSignedPreKeyFieldEvent | PrekeyBundleSignedPreKeySignatureFieldEvent | PrekeyBundleKyberPreKeyIdFieldEvent | PrekeyBundleKyberPreKeyFieldEvent | PrekeyBundleKyberPreKeySignatureFieldEvent | PrekeyBundlePreKeyIdFieldEvent | PrekeyBundlePreKeyFieldEvent | PrekeyBundleIssuedAtFieldEvent | PrekeyBundleExpiresAtFieldEvent> {
    return streamMessage(buf, PrekeyBundle.codec(), opts)
  }
}

export interface SignedPrekeyBundle {
  body: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace SignedPrekeyBundle {
  let _codec: Codec<SignedPrekeyBundle>

  export const codec = (): Codec<SignedPrekeyBundle> => {
    if (_codec == null) {
      _codec = message<SignedPrekeyBundle>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.body != null && obj.body.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.body)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          body: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.body = reader.bytes()
              break
            }
            case 2: {
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
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.body`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
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

  export interface SignedPrekeyBundleBodyFieldEvent {
    field: '$.body'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedPrekeyBundleSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SignedPrekeyBundle>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedPrekeyBundle.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPrekeyBundle>): SignedPrekeyBundle {
    return decodeMessage(buf, SignedPrekeyBundle.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedPrekeyBundle>): Generator<SignedPrekeyBundleBodyFieldEvent | SignedPrekeyBundleSignatureFieldEvent> {
    return streamMessage(buf, SignedPrekeyBundle.codec(), opts)
  }
}
