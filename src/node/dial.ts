import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { OctetLibp2p } from './index.js'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { LocalSubnets, dialRank, isCircuit, isLoopback } from './addresses.js'
import { RELAYED_CONNECTIONS_OK } from './constants.js'
import { dhtOf } from './dht.js'

/** Ranks up to here (own LAN, public, relayed) can work from anywhere; beyond, only by luck. */
const PROMISING_RANK = 2

let subnets: LocalSubnets | undefined

/**
 * Opens a stream of an octet protocol to a peer, over a relayed connection if
 * that is all there is.
 *
 * - An open connection is used, a direct one first. libp2p's own dial never
 *   reuses a limited (relayed) connection: it would open a new circuit for
 *   every stream, each counted against the relay's limits.
 * - Otherwise the addresses that can work are dialled, and only those. libp2p
 *   tries a peer's addresses one after another, each for up to 6 s; a peer
 *   store may hold none or only stale ones — a LAN address of another network,
 *   learnt before the peer had a relay — and then the peer's current addresses
 *   are looked up in the DHT first (its relays announce its circuit addresses).
 * - A dial that fails anyway uses a connection that opened meanwhile, or
 *   looks the peer up and is tried once more.
 */
export async function dialProtocolFindingPeer (libp2p: OctetLibp2p, peer: PeerId, protocol: string, signal: AbortSignal): Promise<Stream> {
  const options = { signal, ...RELAYED_CONNECTIONS_OK }
  const onOpenConnection = await streamOnOpenConnection(libp2p, peer, protocol, options)
  if (onOpenConnection != null) return onOpenConnection

  const known = await knownAddresses(libp2p, peer)
  let promising = promisingAddresses(libp2p, peer, known)
  if (promising.length === 0) promising = promisingAddresses(libp2p, peer, await lookUp(libp2p, peer, signal) ?? [])
  try {
    return await libp2p.dialProtocol(promising.length > 0 ? promising : peer, protocol, options)
  } catch (err) {
    if (signal.aborted) throw err
    // a circuit can close while it opens (the relay or the peer dropped a duplicate when both
    // ends dialled at once): the connection that won may be there now, or a second try works
    const meanwhile = await streamOnOpenConnection(libp2p, peer, protocol, options)
    if (meanwhile != null) return meanwhile
    const fresh = promisingAddresses(libp2p, peer, await lookUp(libp2p, peer, signal) ?? [])
    const retry = fresh.length > 0 ? fresh : promising
    // nobody knows a way that can work: the first error says what went wrong
    if (retry.length === 0) throw err
    return await libp2p.dialProtocol(retry, protocol, options)
  }
}

async function streamOnOpenConnection (libp2p: Libp2p, peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream | undefined> {
  for (const connection of openConnections(libp2p, peer)) {
    try {
      return await connection.newStream(protocol, { ...options, ...RELAYED_CONNECTIONS_OK })
    } catch (err) {
      if (options.signal.aborted) throw err
    }
  }
  return undefined
}

function openConnections (libp2p: Libp2p, peer: PeerId): Connection[] {
  return libp2p.getConnections(peer)
    .filter(c => c.status === 'open')
    .sort((a, b) => Number(a.limits != null) - Number(b.limits != null))
}

async function knownAddresses (libp2p: Libp2p, peer: PeerId): Promise<Multiaddr[]> {
  try {
    return (await libp2p.peerStore.get(peer)).addresses.map(a => a.multiaddr)
  } catch {
    return []
  }
}

/**
 * The peer's addresses in the DHT, merged into the peer store; undefined when
 * the lookup failed. Nodes that answer may know the peer from before it had a
 * relay: the walk goes on past answers with nothing that can work from here,
 * until one has such an address or the walk ends.
 */
async function lookUp (libp2p: OctetLibp2p, peer: PeerId, signal: AbortSignal): Promise<Multiaddr[] | undefined> {
  const found = new Map<string, Multiaddr>()
  try {
    for await (const addrs of dhtOf(libp2p).findPeer(peer, signal)) {
      for (const addr of addrs) found.set(addr.toString(), addr)
      if (promisingAddresses(libp2p, peer, addrs).length > 0) break
    }
  } catch {
    // a lookup that ends in an error may still have found something on the way
  }
  if (found.size === 0) return undefined
  const addrs = [...found.values()]
  await libp2p.peerStore.merge(peer, { multiaddrs: addrs })
  return addrs
}

/** The addresses that can work from here, best first, each ending in the peer's /p2p/ part as a dial by address needs. */
function promisingAddresses (libp2p: Libp2p, peer: PeerId, addrs: Multiaddr[]): Multiaddr[] {
  subnets ??= new LocalSubnets()
  const local = subnets
  const onLoopback = libp2p.getMultiaddrs().filter(a => !isCircuit(a)).every(isLoopback)
  const suffix = `/p2p/${peer.toString()}`
  return addrs
    .map(addr => ({ addr, rank: dialRank(addr, local, onLoopback) }))
    .filter(({ rank }) => rank <= PROMISING_RANK)
    .sort((a, b) => a.rank - b.rank)
    .map(({ addr }) => addr.toString().endsWith(suffix) ? addr : multiaddr(addr.toString() + suffix))
}
