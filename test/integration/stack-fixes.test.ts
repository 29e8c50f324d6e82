import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OctetNode } from '../../src/node/index.js'
import { FrameReader, writeFrames } from '../../src/wire/framing.js'
import { KiB, MiB } from '../../src/units.js'
import { startTestNode } from '../helpers/node.js'

// The libp2p stack with octet's fixes to it (src/node/stack-fixes.ts) moves every byte, in
// order, over a real connection: many small frames (one per chat message, where a window
// update is no longer sent for each) and a transfer of many receive windows (where the
// sender must never wait for one).
const PROTOCOL = '/octet-test/digest/1.0.0'
const cleanups: Array<() => Promise<void>> = []
let a: OctetNode
let b: OctetNode

async function start (): Promise<OctetNode> {
  const node = await startTestNode(cleanups)
  await node.libp2p.start()
  return node
}

beforeAll(async () => {
  a = await start()
  b = await start()
  // b answers each stream with the SHA-256 of every frame it read, in order, once a closes its side
  await b.libp2p.handle(PROTOCOL, async stream => {
    const reader = new FrameReader(stream, 128 * KiB)
    const hash = createHash('sha256')
    let frames = 0
    for (let batch = await reader.nextBatch(); batch.length > 0; batch = await reader.nextBatch()) {
      for (const frame of batch) hash.update(frame.subarray())
      frames += batch.length
    }
    reader.dispose()
    await writeFrames(stream, [new TextEncoder().encode(`${frames} ${hash.digest('hex')}`)])
    await stream.close()
  })
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function sendAll (frames: Uint8Array[], inOneGo: boolean): Promise<string> {
  const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs()[0]!, PROTOCOL, { signal: AbortSignal.timeout(10_000) })
  const reader = new FrameReader(stream, 1 * KiB)
  if (inOneGo) await writeFrames(stream, frames, AbortSignal.timeout(30_000))
  else for (const frame of frames) await writeFrames(stream, [frame], AbortSignal.timeout(10_000))
  // our side is done; the answer still comes back on the other half
  await stream.close({ signal: AbortSignal.timeout(30_000) })
  const [answer] = await reader.nextBatch(AbortSignal.timeout(30_000))
  reader.dispose()
  return new TextDecoder().decode(answer?.subarray())
}

function expected (frames: Uint8Array[]): string {
  const hash = createHash('sha256')
  for (const frame of frames) hash.update(frame)
  return `${frames.length} ${hash.digest('hex')}`
}

describe('the libp2p stack with octet\'s fixes', () => {
  it('delivers 3,000 small frames written one at a time, all of them, in order', async () => {
    const frames = Array.from({ length: 3000 }, (_, i) => randomBytes(1 + (i % 1500)))
    expect(await sendAll(frames, false)).toBe(expected(frames))
  })

  it('delivers 16 MiB, many receive windows, written at once without stalling', async () => {
    const frames = Array.from({ length: (16 * MiB) / (64 * KiB) }, () => randomBytes(64 * KiB))
    expect(await sendAll(frames, true)).toBe(expected(frames))
  })
})
