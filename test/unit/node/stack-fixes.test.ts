import fc from 'fast-check'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import * as varint from 'uint8-varint'
import '../../../src/node/stack-fixes.js'

/** Noise's length decoder (@chainsafe/libp2p-noise encoder.ts): a 2-byte big-endian prefix. */
const uint16BEDecode = (data: Uint8ArrayList): number => {
  if (data.byteLength < 2) throw new RangeError('Could not decode int16BE')
  return data.getUint16(0)
}

function frame16 (payload: Uint8Array): Uint8Array {
  return Uint8Array.from([payload.length >> 8, payload.length & 0xff, ...payload])
}

function frameVarint (payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint.encode(payload.length), ...payload])
}

/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function chunks (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map(c => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    out.push(bytes.subarray(from, point))
    from = point
  }
  return out
}

function decodeAll (decoder: LengthPrefixedDecoder, parts: Uint8Array[]): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (const part of parts) for (const frame of decoder.decode(part)) frames.push(frame.subarray())
  return frames
}

describe('the length-prefixed decoder fix', () => {
  const payloads = fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 })
  const cuts = fc.array(fc.nat(), { maxLength: 20 })

  it('cuts any byte stream of 2-byte-prefixed frames (Noise) into the same frames, however it arrives', () => {
    fc.assert(fc.property(payloads, cuts, (frames, at) => {
      const stream = Uint8Array.from(frames.flatMap(f => [...frame16(f)]))
      const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 })
      expect(decodeAll(decoder, chunks(stream, at))).toEqual(frames)
    }))
  })

  it('does the same for varint prefixes, the default', () => {
    fc.assert(fc.property(payloads, cuts, (frames, at) => {
      const stream = Uint8Array.from(frames.flatMap(f => [...frameVarint(f)]))
      expect(decodeAll(new LengthPrefixedDecoder(), chunks(stream, at))).toEqual(frames)
    }))
  })

  it('is active: the length decoder it wraps never sees the empty buffer after the last whole frame (a renamed private field would leave it unwrapped)', () => {
    const seen: number[] = []
    const spy = (data: Uint8ArrayList): number => { seen.push(data.byteLength); return uint16BEDecode(data) }
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: spy, encodingLength: () => 2 })
    expect(decodeAll(decoder, [Uint8Array.from([...frame16(Uint8Array.of(1)), ...frame16(Uint8Array.of(2, 3))])])).toEqual([Uint8Array.of(1), Uint8Array.of(2, 3)])
    expect(seen.length).toBeGreaterThan(0)
    expect(seen).not.toContain(0)
  })

  it('still refuses a frame over the limit, and errors of the length decoder that are not RangeErrors', () => {
    const small = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2, maxDataLength: 10 })
    expect(() => decodeAll(small, [frame16(new Uint8Array(11))])).toThrow(/length/i)
    const broken = new LengthPrefixedDecoder({ lengthDecoder: () => { throw new TypeError('broken prefix') } })
    expect(() => decodeAll(broken, [Uint8Array.of(1, 2)])).toThrow('broken prefix')
  })
})
