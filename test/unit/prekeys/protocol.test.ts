import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { streamPair } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { MAX_BUNDLE_BYTES } from '../../../src/crypto/constants.js'
import { readBundle, serveBundle } from '../../../src/prekeys/protocol.js'
import { untilClosed } from '../../../src/wire/framing.js'

const BUNDLE = new Uint8Array(randomBytes(2400))
const produce = async (): Promise<Uint8Array> => BUNDLE

async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${(err as Error).name}`
  }
  return 'no error'
}

/** An unsigned LEB128 varint, as lpStream writes lengths. */
function varint (value: number): Uint8Array {
  const out: number[] = []
  do {
    let byte = value % 128
    value = Math.floor(value / 128)
    if (value > 0) byte |= 0x80
    out.push(byte)
  } while (value > 0)
  return new Uint8Array(out)
}

function frame (bytes: Uint8Array, length = bytes.byteLength): Uint8Array {
  const prefix = varint(length)
  const out = new Uint8Array(prefix.byteLength + bytes.byteLength)
  out.set(prefix, 0)
  out.set(bytes, prefix.byteLength)
  return out
}

async function ended (stream: Stream): Promise<string> {
  await untilClosed(stream, AbortSignal.timeout(2_000))
  return stream.status
}

describe('serving a bundle on /octet/prekeys/1.0.0', () => {
  it('writes one frame and closes; the dialer reads it and the stream ends cleanly on both sides', async () => {
    const [dialer, server] = await streamPair()
    const [served, read] = await Promise.all([serveBundle(server, produce), readBundle(dialer, AbortSignal.timeout(2_000))])
    expect(served).toBeUndefined()
    expect(read).toEqual(BUNDLE)
    expect(await ended(server)).toBe('closed')
    expect(await ended(dialer)).toBe('closed')
  })

  it('resets a dialer that sends bytes (the protocol has no request)', async () => {
    for (const size of [1, 100, 1024 * 1024]) {
      const [dialer, server] = await streamPair()
      const serving = serveBundle(server, produce)
      dialer.send(randomBytes(size))
      expect(await codeOf(serving), `${size} bytes`).toBe('MALFORMED_FRAME')
      expect(server.status).toBe('aborted')
      expect(await ended(dialer)).toBe('reset')
    }
  })

  it('resets a dialer that never closes its end, after the timeout', async () => {
    const [dialer, server] = await streamPair()
    // the dialer takes the bundle but never closes: the stream would stay half-open
    expect(await codeOf(serveBundle(server, produce, 200))).toBe('TIMEOUT')
    expect(server.status).toBe('aborted')
    expect(await ended(dialer)).toBe('reset')
  })

  it('resets the stream when no bundle can be made', async () => {
    const [dialer, server] = await streamPair()
    const failure = Object.assign(new Error('store closed'), { code: 'INTERNAL' })
    const [served, read] = await Promise.all([
      codeOf(serveBundle(server, async () => { throw failure })),
      codeOf(readBundle(dialer, AbortSignal.timeout(2_000)))
    ])
    expect(served).toBe('INTERNAL')
    expect(read).toBe('PEER_UNREACHABLE')
  })

  it('gives up on a dialer that resets the stream', async () => {
    const [dialer, server] = await streamPair()
    const serving = serveBundle(server, async () => {
      dialer.abort(new Error('gone'))
      await new Promise(resolve => setTimeout(resolve, 50))
      return BUNDLE
    })
    await expect(serving).rejects.toBeDefined()
    expect(server.status).not.toBe('open')
  })
})

describe('reading a bundle from /octet/prekeys/1.0.0', () => {
  it('refuses a frame announced larger than MAX_BUNDLE_BYTES before reading it', async () => {
    const [dialer, server] = await streamPair()
    server.send(varint(MAX_BUNDLE_BYTES + 1))
    expect(await codeOf(readBundle(dialer, AbortSignal.timeout(2_000)))).toBe('BAD_BUNDLE')
    expect(dialer.status).toBe('aborted')
  })

  it('refuses a huge length prefix, a truncated frame and an empty answer as BAD_BUNDLE', async () => {
    const cases: Array<[string, Uint8Array]> = [
      ['a 10-byte varint', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
      ['a truncated frame', frame(new Uint8Array(10), 100)],
      ['nothing', new Uint8Array(0)]
    ]
    for (const [name, bytes] of cases) {
      const [dialer, server] = await streamPair()
      if (bytes.byteLength > 0) server.send(bytes)
      await server.close()
      expect(await codeOf(readBundle(dialer, AbortSignal.timeout(2_000))), name).toBe('BAD_BUNDLE')
    }
  })

  it('refuses a server that streams a MiB of garbage', async () => {
    const [dialer, server] = await streamPair()
    const reading = codeOf(readBundle(dialer, AbortSignal.timeout(2_000)))
    for (let i = 0; i < 16 && server.status === 'open'; i++) {
      try {
        if (!server.send(randomBytes(64 * 1024))) await server.onDrain({ signal: AbortSignal.timeout(1_000) })
      } catch {
        break
      }
    }
    expect(await reading).toBe('BAD_BUNDLE')
  })

  it('stops at the signal when the server stalls', async () => {
    const [dialer] = await streamPair()
    const reason = new Error('deadline')
    const controller = new AbortController()
    setTimeout(() => { controller.abort(reason) }, 100)
    await expect(readBundle(dialer, controller.signal)).rejects.toBe(reason)
    expect(dialer.status).toBe('aborted')
  })

  it('returns the bundle and cuts off a server that keeps the stream open after it', async () => {
    const [dialer, server] = await streamPair()
    server.send(frame(BUNDLE))
    expect(await readBundle(dialer, AbortSignal.timeout(2_000), 200)).toEqual(BUNDLE)
    // the server never closes: the dialer did not wait for it (had it waited out the 200 ms
    // grace, the stream would be aborted by now, not open), and resets it after the grace period
    expect(dialer.status).toBe('open')
    expect(await ended(dialer)).toBe('aborted')
    expect(await ended(server)).toBe('reset')
  })
})
