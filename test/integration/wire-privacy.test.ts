import { randomBytes } from 'node:crypto'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { plaintext } from '@libp2p/plaintext'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import type { DaemonOverrides } from '../../src/daemon.js'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import { PREKEY_PROTOCOL } from '../../src/prekeys/index.js'
import { Cleanup, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

// In-process (test/helpers/inproc.ts), not `octet daemon` processes: the daemons run with a
// plaintext connection encrypter instead of Noise (overrides.connectionEncrypters), which no
// flag offers, so that the captured bytes show what the Signal layer alone hides.

/** What went through one proxied TCP connection, each direction on its own. */
interface Capture {
  /** dialer → target */
  outbound: Buffer[]
  /** target → dialer */
  inbound: Buffer[]
}

/**
 * A TCP proxy on 127.0.0.1 that forwards every connection to `targetPort`
 * and keeps every byte that passes, both ways.
 */
class RecordingProxy {
  readonly captures: Capture[] = []
  private readonly sockets = new Set<Socket>()

  private constructor (private readonly server: Server) {}

  static async start (targetPort: number, cleanup: Cleanup): Promise<RecordingProxy> {
    const server = createServer()
    const proxy = new RecordingProxy(server)
    server.on('connection', client => { proxy.forward(client, targetPort) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    cleanup.add(async () => { await proxy.close() })
    return proxy
  }

  get port (): number {
    const address = this.server.address()
    if (address == null || typeof address === 'string') throw new Error('the proxy is not listening')
    return address.port
  }

  /** Bytes seen so far, both directions, all connections. */
  get byteCount (): number {
    return this.captures.reduce((sum, c) => sum + [...c.outbound, ...c.inbound].reduce((n, b) => n + b.length, 0), 0)
  }

  /** Every direction of every connection as one buffer each: searched separately, no false joins. */
  streams (): Buffer[] {
    return this.captures.flatMap(c => [Buffer.concat(c.outbound), Buffer.concat(c.inbound)])
  }

  contains (needle: Buffer): boolean {
    return this.streams().some(stream => stream.indexOf(needle) >= 0)
  }

  private forward (client: Socket, targetPort: number): void {
    const capture: Capture = { outbound: [], inbound: [] }
    this.captures.push(capture)
    const target = createConnection({ host: '127.0.0.1', port: targetPort })
    this.sockets.add(client)
    this.sockets.add(target)
    client.on('data', (chunk: Buffer) => { capture.outbound.push(Buffer.from(chunk)); target.write(chunk) })
    target.on('data', (chunk: Buffer) => { capture.inbound.push(Buffer.from(chunk)); client.write(chunk) })
    const closeBoth = (): void => { client.destroy(); target.destroy() }
    client.on('close', closeBoth)
    target.on('close', closeBoth)
    client.on('error', closeBoth)
    target.on('error', closeBoth)
    client.on('close', () => this.sockets.delete(client))
    target.on('close', () => this.sockets.delete(target))
  }

  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }
}

/** The marker as it could leak: UTF-8, UTF-16 (both byte orders), hex, and base64 at each of the 3 alignments. */
function leakForms (marker: string): Array<{ form: string, bytes: Buffer }> {
  const forms = [
    { form: 'utf8', bytes: Buffer.from(marker, 'utf8') },
    { form: 'utf16le', bytes: Buffer.from(marker, 'utf16le') },
    { form: 'utf16be', bytes: Buffer.from(marker, 'utf16le').swap16() },
    { form: 'hex', bytes: Buffer.from(Buffer.from(marker).toString('hex')) }
  ]
  for (let shift = 0; shift < 3; shift++) {
    // the middle of the encoding is the same wherever the marker sits in a longer text;
    // the first and last 4 characters may mix with neighbouring bytes
    const encoded = Buffer.from('#'.repeat(shift) + marker).toString('base64')
    forms.push({ form: `base64+${shift}`, bytes: Buffer.from(encoded.slice(4, -4)) })
  }
  return forms
}

function portOf (address: string): number {
  const port = multiaddr(address).getComponents().find(c => c.name === 'tcp')?.value
  if (port == null) throw new Error(`no TCP port in ${address}`)
  return Number(port)
}

/**
 * What an observer on the wire between A and C sees. A's only connection to
 * C goes through a recording TCP proxy (A knows C only by the proxy's
 * address). The text must never show, whether the connection is Noise
 * encrypted or, with Noise swapped for plaintext, protected by the Signal
 * layer alone.
 */
describe('what crosses the wire is ciphertext', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  /** C, a proxy in front of it, and A bootstrapped through the proxy; A sends the marker to C. */
  const sendThroughProxy = async (overrides?: DaemonOverrides): Promise<{ proxy: RecordingProxy, marker: string }> => {
    const c = await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), ...(overrides != null ? { overrides } : {}) }, cleanup)
    const proxy = await RecordingProxy.start(portOf(c.tcpAddress), cleanup)
    const viaProxy = `/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${c.peerId}`
    const a = await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [viaProxy], ...(overrides != null ? { overrides } : {}) }, cleanup)

    const connectionsToC = async (): Promise<string[] | undefined> => {
      const { body } = await a.api<{ peers: Array<{ peerId: string, addresses: string[] }> }>('GET', '/v1/peers')
      return body.peers.find(p => p.peerId === c.peerId)?.addresses
    }
    // A dialled C through the proxy (its only address for C)
    const first = await waitFor(connectionsToC, { what: 'A connected to C' })
    expect(first.map(portOf)).toEqual([proxy.port])

    const marker = `PLAINTEXT-MARKER-${randomBytes(12).toString('hex')}`
    const sent = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: `before ${marker} after, ünïcödé` })
    expect(sent.status).toBe(202)
    await waitFor(async () => {
      const { body } = await a.api<{ message: MessageRecord }>('GET', `/v1/messages/${sent.body.message.id}`)
      return body.message.status === 'delivered' ? true : undefined
    }, { what: 'delivered' })
    // C really got the text: it was sealed, not lost
    const { body } = await c.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${a.peerId}/messages`)
    expect(body.messages.map(m => m.text)).toEqual([`before ${marker} after, ünïcödé`])

    // every connection A has to C is the proxied one: the message went through the capture
    const addresses = await connectionsToC()
    expect(addresses?.length).toBeGreaterThan(0)
    for (const address of addresses ?? []) expect(portOf(address)).toBe(proxy.port)
    expect(proxy.captures.length).toBeGreaterThan(0)
    expect(proxy.byteCount).toBeGreaterThan(0)
    return { proxy, marker }
  }

  const expectNoLeak = (proxy: RecordingProxy, marker: string): void => {
    const forms = leakForms(marker)
    // the needles are right: each encoding of a text around the marker contains one of them
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const text = Buffer.from(`${prefix}${marker} after`)
      for (const encoding of ['base64', 'hex'] as const) {
        expect(forms.some(({ bytes }) => Buffer.from(text.toString(encoding)).indexOf(bytes) >= 0)).toBe(true)
      }
    }
    for (const { form, bytes } of forms) {
      expect({ form, found: proxy.contains(bytes) }).toEqual({ form, found: false })
    }
  }

  it('with Noise: neither the text nor even the protocol names appear', async () => {
    const { proxy, marker } = await sendThroughProxy()
    // the capture is the libp2p connection: the encrypter is chosen in the clear
    expect(proxy.contains(Buffer.from('/noise'))).toBe(true)
    expectNoLeak(proxy, marker)
    for (const protocol of [DM_PROTOCOL, PREKEY_PROTOCOL, '/octet/kad/1.0.0']) {
      expect({ protocol, found: proxy.contains(Buffer.from(protocol)) }).toEqual({ protocol, found: false })
    }
  })

  it('with plaintext connections: the streams are readable, the text still is not (Signal layer alone)', async () => {
    const { proxy, marker } = await sendThroughProxy({ connectionEncrypters: [plaintext()] })
    // proof the capture sees the unencrypted stream layer, and that the DM stream used this connection
    expect(proxy.contains(Buffer.from('/plaintext/2.0.0'))).toBe(true)
    expect(proxy.contains(Buffer.from(DM_PROTOCOL))).toBe(true)
    expect(proxy.contains(Buffer.from(PREKEY_PROTOCOL))).toBe(true)
    expectNoLeak(proxy, marker)
  })
})
