import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterAll, describe, expect, it } from 'vitest'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import { Kind, decodeDmFrame, encodeDmFrame, type Envelope } from '../../src/wire/codec.js'
import { newMessageId } from '../../src/wire/ids.js'
import { WIRE_VERSION } from '../../src/wire/limits.js'
import { Cleanup, DaemonProcess } from '../helpers/daemon.js'

/*
 * Issue #11: a refused envelope was a warning line each (~320 B), with no
 * limit: 80,000 garbage envelopes made a 25.5 MB log. A real daemon process,
 * flooded over TCP by a real libp2p node with envelopes that claim another
 * sender: every one is counted in /v1/stats, and the log holds a few lines
 * with counts.
 */

const cleanup = new Cleanup()
const FLOOD = 5_000
const CHUNK = 250

afterAll(async () => { await cleanup.run() })

interface LogLine { msg?: string, counter?: string, repeats?: number }

describe('a flood of refused envelopes', () => {
  it('is counted in /v1/stats one by one and logged as a few lines with counts', async () => {
    const daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir('octet-logflood-') }, cleanup)
    const flooder = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    cleanup.add(async () => { await flooder.stop() })
    const someoneElse = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const stream = await flooder.dialProtocol(multiaddr(daemon.tcpAddress), DM_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
    const forged = (): Envelope => ({
      version: WIRE_VERSION, id: newMessageId(), recipient: daemon.info.peerId, sender: someoneElse, timestamp: Date.now(), seq: 1, kind: Kind.TEXT, cipherType: 1, ciphertext: new Uint8Array(64)
    })
    let acked = 0
    for (let sent = 0; sent < FLOOD; sent += CHUNK) {
      await lp.writeV(Array.from({ length: CHUNK }, () => encodeDmFrame({ envelope: forged() })))
      for (let i = 0; i < CHUNK; i++) {
        if (decodeDmFrame(await lp.read({ signal: AbortSignal.timeout(10_000) })).ack != null) acked++
      }
    }
    expect(acked).toBe(FLOOD)
    await stream.close()

    const { body } = await daemon.api<{ counters: Record<string, number> }>('GET', '/v1/stats')
    const refused = Object.entries(body.counters).filter(([name]) => name.startsWith('dm.rejected.'))
    expect(refused.reduce((sum, [, n]) => sum + n, 0)).toBe(FLOOD)
    expect(body.counters['dm.rejected.FORGED_SENDER']).toBeGreaterThan(0)

    // stopping writes the counts not logged yet
    expect(await daemon.stop()).toBe(0)
    const lines = daemon.output.join('').split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as LogLine)
    const about = lines.filter(l => l.counter?.startsWith('dm.rejected.') === true)
    // per kind of refusal: its first line, and one line with the count of the rest per 10 s
    expect(about.length).toBeGreaterThanOrEqual(2)
    expect(about.length).toBeLessThanOrEqual(2 * refused.length * 2)
    expect(about.reduce((sum, l) => sum + (l.repeats ?? 1), 0)).toBe(FLOOD)
    expect(about.some(l => (l.repeats ?? 0) > 1_000 && /more like it/.test(l.msg ?? ''))).toBe(true)
  }, 90_000)
})
