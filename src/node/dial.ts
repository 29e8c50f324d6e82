import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { RELAYED_CONNECTIONS_OK } from './constants.js'

/**
 * Opens a stream of an octet protocol to a peer, over a relayed connection if
 * that is all there is. libp2p dials the addresses its peer store holds and
 * asks the DHT only when it holds none; those it holds may be stale — a LAN
 * address learnt before the peer had a relay, a relay it has since lost. When
 * the dial fails, the peer's current addresses are looked up in the DHT (the
 * peer's relays announce its circuit addresses there) and the dial is tried
 * once more with them.
 */
export async function dialProtocolFindingPeer (libp2p: Libp2p, peer: PeerId, protocol: string, signal: AbortSignal): Promise<Stream> {
  try {
    return await libp2p.dialProtocol(peer, protocol, { signal, ...RELAYED_CONNECTIONS_OK })
  } catch (err) {
    if (signal.aborted) throw err
    let fresh
    try {
      fresh = await libp2p.peerRouting.findPeer(peer, { signal, useCache: false })
    } catch {
      // nobody knows more than we did: the first error says what went wrong
      throw err
    }
    if (fresh.multiaddrs.length === 0) throw err
    await libp2p.peerStore.merge(peer, { multiaddrs: fresh.multiaddrs })
    return await libp2p.dialProtocol(peer, protocol, { signal, ...RELAYED_CONNECTIONS_OK })
  }
}
