import type { Uint8ArrayList } from 'uint8arraylist'
import { OctetError, errorMessage, isOctetError } from '../errors.js'

/**
 * Decoding input from peers: the size is checked before anything is parsed,
 * and whatever the protobuf decoder throws becomes FRAME_TOO_LARGE or
 * MALFORMED_FRAME, so callers only ever see those two codes. Shared by every
 * codec of octet's wire formats.
 */
export function malformed (message: string): never {
  throw new OctetError('MALFORMED_FRAME', message)
}

export function tooLarge (message: string): never {
  throw new OctetError('FRAME_TOO_LARGE', message)
}

export function decodeChecked<T> (what: string, bytes: Uint8Array | Uint8ArrayList, maxBytes: number, decode: (bytes: Uint8Array | Uint8ArrayList) => T): T {
  if (bytes.byteLength > maxBytes) tooLarge(`${what} is ${bytes.byteLength} bytes, the limit is ${maxBytes}`)
  try {
    return decode(bytes)
  } catch (err) {
    if (isOctetError(err)) throw err
    if (err instanceof Error && err.name === 'MaxLengthError') {
      throw new OctetError('FRAME_TOO_LARGE', `${what} exceeds a limit: ${err.message}`, { cause: err })
    }
    // truncated input, bad varints and wire types, unknown enum values, stack overflow from nested groups …
    throw new OctetError('MALFORMED_FRAME', `${what} could not be decoded: ${errorMessage(err)}`, { cause: err })
  }
}

/**
 * Texts travel as protobuf `bytes` holding UTF-8 (the same wire encoding as
 * `string`): Node's native UTF-8 codec instead of the decoder's JavaScript
 * loop, which showed at several percent of a message's cost. Invalid
 * sequences read as U+FFFD, as a lenient `string` decoder would.
 */
export function textToBytes (text: string): Uint8Array<ArrayBuffer> {
  const buffer = Buffer.from(text, 'utf8')
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) as Uint8Array<ArrayBuffer>
}

export function bytesToText (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}

/**
 * A peer's free-text reason, cut to at most `maxBytes` UTF-8 bytes (on a
 * character boundary, marked with '…'), so a long one cannot fill our logs
 * or answers.
 */
export function clipReason (reason: string, maxBytes: number): string {
  const bytes = Buffer.from(reason, 'utf8')
  if (bytes.byteLength <= maxBytes) return reason
  // a cut inside a multi-byte character would decode as U+FFFD: back up to its first byte
  let end = maxBytes
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString('utf8') + '…'
}
