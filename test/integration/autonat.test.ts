import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology } from '../../src/testnet/netns.js'
import { Cleanup, DaemonProcess, waitFor } from '../helpers/daemon.js'
import { skipUnlessNetns } from '../helpers/netns.js'

// AutoNAT decides, nobody declares: an internet of public hosts, each on an address libp2p
// counts as public and in a /8 of its own (AutoNAT takes one confirmation per first octet of
// the peer that gives it, and wants four), and one home behind a NAT router. No daemon is
// told its reachability: the public ones must find out that they are public from their peers'
// dial-backs (and then offer the relay service), the one at home that it is not.
const unavailable = skipUnlessNetns()

interface Identity {
  peerId: string
  reachability: string
  reachabilitySource: string
  publicAddresses: string[]
  relayAddresses: string[]
  relayService: { offered: boolean }
}

/** AutoNAT wants four confirmations from four /8s: each public node has five other public peers. */
const PUBLIC_HOSTS = 6

describe.skipIf(unavailable != null)(`AutoNAT on public addresses${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  const cleanup = new Cleanup()
  let topology: Topology
  let publicNodes: DaemonProcess[] = []
  let home: DaemonProcess

  const identity = async (d: DaemonProcess): Promise<Identity> => (await d.api<Identity>('GET', '/v1/identity')).body

  beforeAll(async () => {
    topology = await Topology.create({ publicHosts: PUBLIC_HOSTS, homes: [{ hosts: 1 }] }, { spreadPublic: true, signal: AbortSignal.timeout(10_000) })
    cleanup.add(async () => { await topology.destroy() })
    const first = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'pub0' } }, cleanup)
    const bootstrap = [first.tcpAddress]
    publicNodes = [first, ...await Promise.all(topology.publicHosts.slice(1).map(async host =>
      await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host }, bootstrap }, cleanup)))]
    home = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'home0-0' }, bootstrap, extraArgs: ['--no-webrtc'] }, cleanup)
  })
  afterAll(async () => { await cleanup.run() })

  it('every public node is confirmed public by AutoNAT, with its address, and offers the relay service', async () => {
    for (const [k, node] of publicNodes.entries()) {
      const address = topology.publicHosts[k]?.address ?? ''
      const id = await waitFor(async () => {
        const id = await identity(node)
        return id.reachability === 'public' ? id : undefined
      }, { what: `pub${k} confirmed public`, timeoutMs: 90_000, intervalMs: 250 })
      expect(id.reachabilitySource).toBe('autonat')
      expect(id.publicAddresses.some(a => a.startsWith(`/ip4/${address}/tcp/`))).toBe(true)
      await waitFor(async () => (await identity(node)).relayService.offered ? true : undefined, { what: `pub${k} relays`, timeoutMs: 10_000 })
    }
  })

  it('the node at home is never confirmed: it finds its NAT and takes a relay address instead', async () => {
    const id = await waitFor(async () => {
      const id = await identity(home)
      return id.reachability === 'private' && id.relayAddresses.length > 0 ? id : undefined
    }, { what: 'home node private with a relay address', timeoutMs: 60_000, intervalMs: 250 })
    expect(id.publicAddresses).toEqual([])
    expect(id.relayService.offered).toBe(false)
  })
})
