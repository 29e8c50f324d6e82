import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * A fix to @libp2p/utils 7.4.1, carried here until it is made upstream.
 *
 * `LengthPrefixedDecoder.decode` (what Noise uses to cut the byte stream of
 * every connection into its frames) reads frames until its length decoder
 * throws a RangeError, and it always asks once more after the last whole
 * frame of a chunk, on an empty buffer. Noise's 2-byte length decoder then
 * throws from inside DataView, so every chunk off every connection creates
 * an Error with its stack trace. Measured in the 20-node group benchmark:
 * 5.6 % of all CPU was that one function.
 *
 * The fix wraps each decoder's length decoder once: on an empty buffer it
 * throws one RangeError made in advance, which the loop takes as "wait for
 * more bytes" like any other — the same outcome, without the stack trace.
 * Any prefix needs at least one byte, so this holds for every length decoder.
 */
type LengthDecoder = (data: Uint8ArrayList) => number

/** The decoder's own field, private in its typings */
interface DecoderFields { lengthDecoder: LengthDecoder }

const NEEDS_MORE_BYTES = new RangeError('no length prefix in the buffer yet')
const guarded = new WeakSet<LengthDecoder>()

const decode = LengthPrefixedDecoder.prototype.decode
LengthPrefixedDecoder.prototype.decode = function (this: LengthPrefixedDecoder, buf: Uint8Array | Uint8ArrayList) {
  const fields = this as unknown as DecoderFields
  if (!guarded.has(fields.lengthDecoder)) {
    const decodeLength = fields.lengthDecoder
    const guardedDecodeLength: LengthDecoder = data => {
      if (data.byteLength === 0) throw NEEDS_MORE_BYTES
      return decodeLength(data)
    }
    guarded.add(guardedDecodeLength)
    fields.lengthDecoder = guardedDecodeLength
  }
  return decode.call(this, buf)
}
