import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology } from '../../src/testnet/netns.js'
import { Cleanup, DaemonProcess, waitFor } from '../helpers/daemon.js'
import { skipUnlessNetns } from '../helpers/netns.js'

// What relay operators control, across real NATs: two homes behind their own routers, each of
// which wants reservations on two relays, and two public nodes. pub0 relays with room for one
// reservation only; pub1 turned the relay service off. Exactly one home gets pub0's one place,
// nobody gets a place on pub1, and the full relay keeps refusing the other home for as long as
// it asks. pub0 also takes one circuit per peer: a second one to the same home is refused (the
// message it was for still arrives, through mailboxes). Limits in detail: relay.test.ts.
const unavailable = skipUnlessNetns()

interface Identity {
  peerId: string
  reachability: string
  relayAddresses: string[]
  relayService: { offered: boolean, reservations?: number, circuits?: number, refusedCircuits?: number }
}
interface Message { id: string, status: string }

/** How long the full relay is watched refusing the second home, which keeps asking meanwhile (its relay discovery retries every few seconds). */
const WATCH_MS = 10_000

describe.skipIf(unavailable != null)(`relay limits across NATs${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  const cleanup = new Cleanup()
  let topology: Topology
  let relay: DaemonProcess
  let noRelay: DaemonProcess
  let homes: DaemonProcess[] = []
  let holder: Identity

  const identity = async (d: DaemonProcess): Promise<Identity> => (await d.api<Identity>('GET', '/v1/identity')).body
  const relaysOf = (id: Identity): string[] => [...new Set(id.relayAddresses.map(a => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)?.[1] ?? ''))].filter(p => p !== '')

  beforeAll(async () => {
    topology = await Topology.create({ publicHosts: 2, homes: [{ hosts: 1 }, { hosts: 1 }] }, { signal: AbortSignal.timeout(10_000) })
    cleanup.add(async () => { await topology.destroy() })
    // the lab's internet is a private range, which AutoNAT never tests: the public nodes say what they are
    relay = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'pub0' }, extraArgs: ['--reachability', 'public', '--relay-max-reservations', '1', '--relay-max-circuits-per-peer', '1'] }, cleanup)
    noRelay = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'pub1' }, bootstrap: [relay.tcpAddress], extraArgs: ['--reachability', 'public', '--no-relay-service'] }, cleanup)
    const bootstrap = [relay.tcpAddress, noRelay.tcpAddress]
    homes = await Promise.all(['home0-0', 'home1-0'].map(async host =>
      await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host }, bootstrap, extraArgs: ['--no-webrtc'] }, cleanup)))
  })
  afterAll(async () => { await cleanup.run() })

  it('a relay with room for one reservation gives it to one home and refuses the other; a node with the relay service off offers none', async () => {
    expect((await identity(noRelay)).relayService.offered).toBe(false)
    expect((await identity(relay)).relayService.offered).toBe(true)
    // both homes know they are behind a NAT, connected to both public nodes
    for (const home of homes) {
      await waitFor(async () => (await identity(home)).reachability === 'private' ? true : undefined, { what: 'home private', timeoutMs: 30_000 })
    }
    holder = await waitFor(async () => {
      const ids = await Promise.all(homes.map(identity))
      return ids.find(id => relaysOf(id).includes(relay.info.peerId))
    }, { what: 'a home holding a reservation on pub0', timeoutMs: 30_000, intervalMs: 200 })

    const watchUntil = Date.now() + WATCH_MS
    while (Date.now() < watchUntil) {
      const [relayId, ...homeIds] = await Promise.all([identity(relay), ...homes.map(identity)])
      expect(relayId.relayService.reservations).toBe(1)
      for (const id of homeIds) {
        expect(relaysOf(id)).not.toContain(noRelay.info.peerId)
        if (id.peerId !== holder.peerId) expect(relaysOf(id)).not.toContain(relay.info.peerId)
      }
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  })

  it('a relay with room for one circuit per peer refuses a second circuit to the same home; that message still arrives', async () => {
    const target = homes.find(h => h.info.peerId === holder.peerId) as DaemonProcess
    const other = homes.find(h => h.info.peerId !== holder.peerId) as DaemonProcess
    const send = async (from: DaemonProcess, text: string): Promise<Message> => {
      const res = await from.api<{ message: Message }>('POST', '/v1/messages', { to: target.info.peerId, text })
      expect(res.status).toBe(202)
      return res.body.message
    }
    const delivered = async (from: DaemonProcess, id: string): Promise<void> => {
      await waitFor(async () => (await from.api<{ message: Message }>('GET', `/v1/messages/${id}`)).body.message.status === 'delivered' ? true : undefined,
        { what: `message ${id} delivered`, timeoutMs: 30_000, intervalMs: 100 })
    }
    // the other home's circuit to the holder takes the holder's one place
    await delivered(other, (await send(other, 'through the relay')).id)
    expect((await identity(relay)).relayService.circuits).toBe(1)
    // pub1 cannot dial a home directly: its circuit through pub0 would be the holder's second
    await delivered(noRelay, (await send(noRelay, 'the relay has no room for this circuit')).id)
    const stats = (await identity(relay)).relayService
    expect(stats.refusedCircuits).toBeGreaterThanOrEqual(1)
    expect(stats.circuits).toBe(1)
  })
})
