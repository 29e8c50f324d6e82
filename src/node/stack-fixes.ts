import { LengthPrefixedDecoder } from '@libp2p/utils'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Two fixes to the libp2p stack, carried here until they are made upstream.
 * Both are about CPU per frame, and both change only how often work is done,
 * never what is sent or received. Measured in the 20-node group benchmark
 * (npm run bench -- groups), where every node handles every message.
 */

/**
 * 1. @libp2p/utils 7.4.1: `LengthPrefixedDecoder.decode` (what Noise uses to
 * cut the byte stream of every connection into its frames) reads frames until
 * its length decoder throws a RangeError, and it always asks once more after
 * the last whole frame of a chunk, on an empty buffer. Noise's 2-byte length
 * decoder then throws from inside DataView, so every chunk off every
 * connection created an Error with its stack trace: 5.6 % of all CPU.
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

/**
 * 2. @chainsafe/libp2p-yamux 8: a stream answers every data frame it reads
 * with a window update, a frame of its own (Noise-encrypted, one more socket
 * write), although its receive window (256 KiB or more) is nowhere near used
 * up by a chat message. An established stream now sends one only once half
 * of its window is used, as go-yamux and rust-yamux do; the peer still always
 * has at least half a window to send into, so it never waits for one. Every
 * other case (opening flags, a paused or closing stream) goes the library's
 * way. Measured, same build with and without: CPU of the group phase 1.6 →
 * 1.46 and 1.74 → 1.6 cores, group p50 (send → stored at all members)
 * 23.9 → 20.0 and 30.2 → 23.3 ms.
 */
const sendWindowUpdate = YamuxStream.prototype.sendWindowUpdate
YamuxStream.prototype.sendWindowUpdate = function (this: YamuxStream) {
  const stream = this as unknown as StreamWindow
  if (stream.state === StreamState.Established && stream.recvWindowCapacity > stream.recvWindow / 2) return
  sendWindowUpdate.call(this)
}

/** The stream's own fields, private in its typings */
interface StreamWindow {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}
