// Minimal reproduction for docs/upstream/length-prefixed-decoder.md, against the installed
// @libp2p/utils and nothing of octet: `npx node docs/upstream/repro-length-prefixed-decoder.mjs`.
// Feeds a LengthPrefixedDecoder with Noise's 2-byte length prefix 10,000 chunks that each hold
// whole frames (what a socket read usually is) and counts the RangeErrors its length decoder throws.
import { LengthPrefixedDecoder } from '@libp2p/utils'

let throws = 0
// @chainsafe/libp2p-noise's uint16BEDecode (src/encoder.ts), counting its throws
const uint16BEDecode = data => {
  if (data.length < 2) { throws++; throw RangeError('Could not decode int16BE') }
  return data.getUint16(0)
}
const frame = payload => Uint8Array.from([payload.length >> 8, payload.length & 0xff, ...payload])
const chunk = Uint8Array.from([...frame(new Uint8Array(100)), ...frame(new Uint8Array(200))])

const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 })
let frames = 0
const started = process.hrtime.bigint()
for (let i = 0; i < 10_000; i++) for (const _ of decoder.decode(chunk)) frames++
const ms = Number(process.hrtime.bigint() - started) / 1e6
console.log(`${frames} frames from 10000 chunks: the length decoder threw ${throws} RangeErrors (${ms.toFixed(1)} ms)`)
