import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { pino } from 'pino'
import type { Uint8ArrayList } from 'uint8arraylist'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import { DmTransport } from '../../src/messaging/dm-protocol.js'
import { Counters } from '../../src/messaging/stats.js'
import { Refusals } from '../../src/refusals.js'
import { MAX_CONNECTIONS, MAX_STREAM_WINDOW } from '../../src/node/constants.js'
import { RELAYED_CONNECTIONS_OK, type OctetNode } from '../../src/node/index.js'
import { FrameReader, HIGH_WATER_BYTES, writeFrames } from '../../src/wire/framing.js'
import { KiB } from '../../src/units.js'
import { until } from '../helpers/daemon.js'
import { startTestNode } from '../helpers/node.js'
import { makeEnvelope } from '../unit/wire/helpers.js'

// Bounds a peer cannot talk its way past, on real libp2p nodes over TCP on 127.0.0.1: how much
// a stream reader holds, how long an idle DM stream lives, how many connections loopback gets.
const cleanups: Array<() => Promise<void>> = []
let a: OctetNode
let b: OctetNode

async function start (): Promise<OctetNode> {
  return await startTestNode(cleanups)
}

beforeAll(async () => {
  a = await start()
  b = await start()
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** Resolves once the stream closed, reset or aborted; rejects after `ms`. */
async function closed (stream: Stream, ms: number): Promise<void> {
  if (stream.status !== 'open' && stream.status !== 'closing') return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`stream still ${stream.status} after ${ms} ms`)) }, ms)
    stream.addEventListener('close', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

describe('FrameReader', () => {
  it('pauses the stream on bytes held, so a peer sending large frames waits instead of filling memory', async () => {
    const PROTOCOL = '/octet-test/hold/1.0.0'
    const FRAME = 60 * KiB
    const COUNT = 300 // 18 MiB: far beyond what the reader may hold
    let reader: FrameReader | undefined
    const inbound = new Promise<FrameReader>(resolve => {
      void b.libp2p.handle(PROTOCOL, stream => { reader = new FrameReader(stream, 64 * KiB); resolve(reader) })
    })
    cleanups.push(async () => { reader?.dispose(); await b.libp2p.unhandle(PROTOCOL) })
    const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs()[0]!, PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const held = await inbound

    // the writer hands over all 18 MiB at once (the stream queues what it cannot send yet);
    // then bytes flow until the reader stops taking them: wait until nothing moves for a second
    const writing = writeFrames(stream, Array.from({ length: COUNT }, (_, i) => new Uint8Array(FRAME).fill(i % 256)), AbortSignal.timeout(60_000))
    let state = ''
    let unchangedSince = Date.now()
    while (Date.now() - unchangedSince < 1000) {
      await new Promise(resolve => setTimeout(resolve, 100))
      const now = `${held.bufferedBytes} ${stream.writeBufferLength}`
      if (now !== state) { state = now; unchangedSince = Date.now() }
    }
    expect(held.bufferedBytes).toBeGreaterThanOrEqual(HIGH_WATER_BYTES)
    // 1 MiB, plus what the muxer handed over in one go before the pause took effect (at most a
    // receive window): far below the 18 MiB that a pause after 1,024 frames let in
    expect(held.bufferedBytes).toBeLessThanOrEqual(HIGH_WATER_BYTES + MAX_STREAM_WINDOW)
    // the rest waits at the writer (yamux gives it no window while the reader is paused)
    expect(stream.writeBufferLength).toBeGreaterThan(0)
    expect(stream.status).toBe('open')

    // reading lets the writer go on; every frame arrives, in order, in batches within the bound
    let received = 0
    while (received < COUNT) {
      const batch = await held.nextBatch(AbortSignal.timeout(30_000))
      expect(batch.reduce((n, f) => n + f.byteLength, 0)).toBeLessThanOrEqual(HIGH_WATER_BYTES + MAX_STREAM_WINDOW)
      for (const frame of batch) {
        expect(frame.byteLength).toBe(FRAME)
        expect(frame.get(0)).toBe(received % 256)
        received++
      }
    }
    await writing
  }, 120_000)
})

describe('an idle inbound DM stream', () => {
  it('is reset when the peer does not close its side in turn, so it cannot be held open', async () => {
    const counters = new Counters()
    const log = pino({ level: 'silent' })
    const transport = new DmTransport({
      libp2p: b.libp2p,
      log,
      refusals: new Refusals(counters, log),
      onEnvelopes: async () => [],
      idleTimeout: 300
    })
    await transport.start()
    cleanups.push(async () => { await transport.stop() })
    // a peer that opens a DM stream, says nothing and never closes it
    const stream = await a.libp2p.dialProtocol(b.libp2p.getMultiaddrs()[0]!, DM_PROTOCOL, { signal: AbortSignal.timeout(10_000), ...RELAYED_CONNECTIONS_OK })
    await closed(stream, 10_000)
    expect(stream.status).toBe('reset')
    expect(counters.get('dm.reset.close-timeout')).toBe(1)
    const atB = b.libp2p.getConnections(a.libp2p.peerId).flatMap(c => c.streams).filter(s => s.protocol === DM_PROTOCOL)
    expect(atB).toEqual([])
  }, 30_000)
})

describe('waiting for acks', () => {
  it('ends at once when the sender aborts, with the abort\'s reason, while the peer reads and never acks', async () => {
    const log = pino({ level: 'silent' })
    const transport = new DmTransport({ libp2p: a.libp2p, log, refusals: new Refusals(new Counters(), log), onEnvelopes: async () => [] })
    await transport.start()
    cleanups.push(async () => { await transport.stop() })
    // a peer that takes DM frames and answers none
    const silent = await start()
    let received = 0
    await silent.libp2p.handle(DM_PROTOCOL, stream => {
      const reader = new FrameReader(stream, 64 * KiB)
      void (async () => {
        for (;;) {
          const frames = await reader.nextBatch().catch((): Uint8ArrayList[] => [])
          if (frames.length === 0) return
          received += frames.length
        }
      })()
    }, RELAYED_CONNECTIONS_OK)
    await a.libp2p.dial(silent.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(10_000) })

    const controller = new AbortController()
    const [ack] = await transport.sendBatch(silent.peerId, [{ envelope: makeEnvelope(a.libp2p.peerId, silent.libp2p.peerId) }], controller.signal)
    await until('the peer to read the envelope', () => received === 1)
    const reason = new Error('the sender stops')
    controller.abort(reason)
    // the ack timer (ACK_TIMEOUT, 15 s) would reject with TIMEOUT: this is the abort, at once
    await expect(ack).rejects.toBe(reason)
  }, 30_000)
})

describe('the connection cap', () => {
  it(`holds for loopback peers too: at most ${MAX_CONNECTIONS} connections, however many are dialled`, async () => {
    // one client that opens a new connection for every dial (force), with room for all of them
    const client: Libp2p = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { maxConnections: 10_000, maxParallelDials: 100 }
    })
    cleanups.push(async () => { await client.stop() })
    const target = b.libp2p.getMultiaddrs()[0]!
    const ROUNDS = 8
    const PER_ROUND = 50 // under the per-second inbound rate of a local node: only the cap refuses
    let opened = 0
    for (let round = 0; round < ROUNDS; round++) {
      const started = Date.now()
      // one after another: dials to one address at once would share one connection
      for (let i = 0; i < PER_ROUND; i++) {
        if (await client.dial(target, { force: true, signal: AbortSignal.timeout(20_000) }).then(() => true, () => false)) opened++
      }
      // the rate limit counts per second
      await new Promise(resolve => setTimeout(resolve, Math.max(0, 1100 - (Date.now() - started))))
    }
    const atB = b.libp2p.getConnections().length
    expect(atB).toBeLessThanOrEqual(MAX_CONNECTIONS)
    expect(atB).toBeGreaterThanOrEqual(MAX_CONNECTIONS - 10)
    expect(client.getConnections(b.libp2p.peerId).length).toBeLessThanOrEqual(MAX_CONNECTIONS)
    expect(opened).toBeLessThan(ROUNDS * PER_ROUND)
  }, 120_000)
})
