import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_RELAY_LIMITS, type ReachabilityMode, type RelayLimits } from '../../src/config.js'
import type { OctetNode } from '../../src/node/index.js'
import { startTestNode } from '../helpers/node.js'

// Circuit relay v2 as octet runs it, on loopback: who offers the hop protocol, what a relay
// refuses beyond its limits, and a node that reserves on two relays and replaces one that
// goes away. Crossing real NATs is in nat.test.ts (network namespaces, root only).
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function start (reachability: ReachabilityMode, relayService?: RelayLimits, bootstrap: string[] = []): Promise<OctetNode> {
  return await startTestNode(cleanups, { reachability, relayService, bootstrap })
}

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** circuit relay v2 HopMessage fields, encoded by hand: the package keeps its codec to itself */
const RESERVE = Uint8Array.from([0x08, 0x00])
function connectTo (peer: OctetNode): Uint8Array {
  const id = peer.libp2p.peerId.toMultihash().bytes
  // type = CONNECT (1); peer = { id }
  return Uint8Array.from([0x08, 0x01, 0x12, id.length + 2, 0x0a, id.length, ...id])
}
/** Status names of the answers this test expects (circuit v2 spec). */
const STATUS: Record<number, string> = { 100: 'OK', 200: 'RESERVATION_REFUSED', 201: 'RESOURCE_LIMIT_EXCEEDED', 202: 'PERMISSION_DENIED', 203: 'CONNECTION_FAILED', 204: 'NO_RESERVATION' }

/** Field 5 (status) of a HopMessage: the only field these answers need read. */
function statusOf (message: Uint8Array): string {
  let i = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; ; shift += 7) {
      const byte = message[i++] ?? 0
      value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return value
    }
  }
  while (i < message.length) {
    const key = varint()
    const field = key >> 3
    const wire = key & 7
    if (wire === 0) {
      const value = varint()
      if (field === 5) return STATUS[value] ?? String(value)
    } else if (wire === 2) {
      const length = varint()
      i += length
    } else throw new Error(`unexpected wire type ${wire}`)
  }
  return 'none'
}

/** Sends one hop request from `from` to `relay` and returns the status of the answer; the stream stays open (a circuit lives on it). */
async function hop (from: OctetNode, relay: OctetNode, request: Uint8Array): Promise<string> {
  const stream = await from.libp2p.dialProtocol(relay.libp2p.getMultiaddrs()[0]!, RELAY_V2_HOP_CODEC, { signal: AbortSignal.timeout(10_000) })
  cleanups.push(async () => { stream.abort(new Error('test over')) })
  const lp = lpStream(stream)
  await lp.write(request, { signal: AbortSignal.timeout(10_000) })
  return statusOf((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())
}

async function speaksHop (from: OctetNode, to: OctetNode): Promise<boolean> {
  try {
    const stream = await from.libp2p.dialProtocol(to.libp2p.getMultiaddrs()[0]!, RELAY_V2_HOP_CODEC, { signal: AbortSignal.timeout(10_000) })
    stream.abort(new Error('only asking'))
    return true
  } catch (err) {
    if ((err as Error).name === 'UnsupportedProtocolError') return false
    throw err
  }
}

describe('circuit relay', () => {
  it('is offered by a public node only, and never by one that turned it off', async () => {
    const client = await start('auto')
    const publicRelay = await start('public', DEFAULT_RELAY_LIMITS)
    const publicNoRelay = await start('public')
    const undecided = await start('auto', DEFAULT_RELAY_LIMITS)
    expect(await speaksHop(client, publicRelay)).toBe(true)
    expect(await speaksHop(client, publicNoRelay)).toBe(false)
    // on loopback nothing is public: a relay here would hand out addresses nobody outside can dial
    expect(await speaksHop(client, undecided)).toBe(false)
    expect(publicRelay.standing()).toMatchObject({ reachability: 'public', source: 'declared', relayService: { offered: true } })
    expect(publicNoRelay.standing().relayService).toEqual({ offered: false, disabled: true })
    expect(undecided.standing()).toMatchObject({ reachability: 'unknown', relayService: { offered: false } })
  })

  it('refuses reservations beyond its limit', async () => {
    const relay = await start('public', { ...DEFAULT_RELAY_LIMITS, maxReservations: 2 })
    const peers = await Promise.all([1, 2, 3].map(async () => await start('auto')))
    expect(await hop(peers[0]!, relay, RESERVE)).toBe('OK')
    expect(await hop(peers[1]!, relay, RESERVE)).toBe('OK')
    expect(await hop(peers[2]!, relay, RESERVE)).toBe('RESERVATION_REFUSED')
    // a peer that holds a reservation may renew it
    expect(await hop(peers[0]!, relay, RESERVE)).toBe('OK')
    expect(relay.standing().relayService).toMatchObject({ reservations: 2 })
  })

  it('refuses circuits beyond its limits, per peer and in total, and counts them free again when they close', async () => {
    const relay = await start('public', { ...DEFAULT_RELAY_LIMITS, maxCircuits: 3, maxCircuitsPerPeer: 2 })
    // the destinations keep a reservation through the relay transport's own RESERVE
    const [b, c] = await Promise.all([start('private', undefined, [relay.libp2p.getMultiaddrs()[0]!.toString()]), start('private', undefined, [relay.libp2p.getMultiaddrs()[0]!.toString()])])
    await until('both destinations hold a reservation', () => b!.standing().relayAddresses.length > 0 && c!.standing().relayAddresses.length > 0)
    const [x, y] = await Promise.all([start('auto'), start('auto')])

    expect(await hop(x!, relay, connectTo(b!))).toBe('OK')
    expect(await hop(x!, relay, connectTo(c!))).toBe('OK')
    // x has 2 circuits open: its third is over the per-peer limit
    expect(await hop(x!, relay, connectTo(b!))).toBe('RESOURCE_LIMIT_EXCEEDED')
    expect(await hop(y!, relay, connectTo(b!))).toBe('OK')
    // 3 circuits open in total (b is at its own limit of 2 as well)
    expect(await hop(y!, relay, connectTo(c!))).toBe('RESOURCE_LIMIT_EXCEEDED')
    expect(relay.standing().relayService).toMatchObject({ circuits: 3, refusedCircuits: 2 })

    // the circuits close with x's connections: their slots come back
    await x!.libp2p.hangUp(relay.libp2p.peerId)
    await until('the relay counted the closed circuits', () => (relay.standing().relayService as { circuits: number }).circuits === 1)
    expect(await hop(y!, relay, connectTo(c!))).toBe('OK')
  })

  it('keeps reservations on two relays, announces them, and replaces a relay that goes away', async () => {
    const relays = await Promise.all([1, 2, 3].map(async () => await start('public', DEFAULT_RELAY_LIMITS)))
    const [r1, r2, r3] = relays as [OctetNode, OctetNode, OctetNode]
    const natted = await start('private', undefined, [r1, r2].map(r => r.libp2p.getMultiaddrs()[0]!.toString()))
    const relaysOf = (): string[] => [...new Set(natted.standing().relayAddresses.map(a => multiaddr(a).getComponents().find(c => c.name === 'p2p')?.value ?? ''))].sort()
    await until('reservations on both bootstrap relays', () => relaysOf().length === 2)
    expect(relaysOf()).toEqual([r1.peerId, r2.peerId].sort())
    // identify announces the circuit addresses: the relay's peer store has them
    await until('the relay learnt the circuit addresses', async () => (await r1.libp2p.peerStore.get(natted.libp2p.peerId)).addresses.some(a => a.multiaddr.toString().includes('/p2p-circuit')))

    // r3 becomes known to the natted node; r2 goes away
    await natted.libp2p.dial(r3.libp2p.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })
    await r2.stop()
    await until('a reservation on r3 replaced r2', () => relaysOf().length === 2 && relaysOf().includes(r3.peerId) && !relaysOf().includes(r2.peerId), 30_000)
  })
})
