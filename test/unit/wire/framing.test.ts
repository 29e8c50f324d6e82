import { streamPair } from '@libp2p/utils'
import { encode as encodeVarint } from 'uint8-varint'
import { describe, expect, it } from 'vitest'
import { FrameReader, writeFrames } from '../../../src/wire/framing.js'

const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill)

describe('FrameReader', () => {
  it('delivers frames in order, in batches, however the bytes are split', async () => {
    const [outbound, inbound] = await streamPair()
    const reader = new FrameReader(inbound, 1024)
    const frames = [bytes(1, 1), bytes(300, 2), bytes(0), bytes(1024, 3)]
    const wire = new Uint8Array(frames.reduce((n, f) => n + f.length + 2, 0))
    let offset = 0
    for (const f of frames) {
      const prefix = encodeVarint(f.length)
      wire.set(prefix, offset); offset += prefix.length
      wire.set(f, offset); offset += f.length
    }
    // one byte at a time: the worst split
    for (let i = 0; i < offset; i++) outbound.send(wire.subarray(i, i + 1))
    await outbound.close()
    const received: Uint8Array[] = []
    while (true) {
      const batch = await reader.nextBatch(AbortSignal.timeout(5000))
      if (batch.length === 0) break
      received.push(...batch.map(b => b.subarray()))
    }
    expect(received).toEqual(frames)
  })

  it('refuses a length prefix over the limit before the frame arrives', async () => {
    const [outbound, inbound] = await streamPair()
    const reader = new FrameReader(inbound, 1024)
    outbound.send(encodeVarint(10 * 1024 * 1024))
    await expect(reader.nextBatch(AbortSignal.timeout(5000))).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' })
  })

  it('refuses a length prefix that never ends', async () => {
    const [outbound, inbound] = await streamPair()
    const reader = new FrameReader(inbound, 1024)
    outbound.send(new Uint8Array(8).fill(0xff))
    await expect(reader.nextBatch(AbortSignal.timeout(5000))).rejects.toMatchObject({ code: 'MALFORMED_FRAME' })
  })

  it('gives up waiting when the signal fires (a silent peer)', async () => {
    const [, inbound] = await streamPair()
    const reader = new FrameReader(inbound, 1024)
    await expect(reader.nextBatch(AbortSignal.timeout(50))).rejects.toMatchObject({ name: 'TimeoutError' })
  })

  it('writeFrames and FrameReader agree', async () => {
    const [outbound, inbound] = await streamPair()
    const reader = new FrameReader(inbound, 64 * 1024)
    const frames = Array.from({ length: 100 }, (_, i) => bytes(i * 37, i))
    await writeFrames(outbound, frames)
    const received: Uint8Array[] = []
    while (received.length < frames.length) received.push(...(await reader.nextBatch(AbortSignal.timeout(5000))).map(b => b.subarray()))
    expect(received).toEqual(frames)
  })
})
