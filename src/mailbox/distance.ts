import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { xor as uint8ArrayXor } from 'uint8arrays/xor'
import { xorCompare as uint8ArrayXorCompare } from 'uint8arrays/xor-compare'

/**
 * Kademlia distance as kad-dht 16 measures it: XOR of the sha-256 of the
 * multihash bytes of a PeerId (kad-dht's convertPeerId / convertBuffer).
 */
export function kadId (peerId: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(peerIdFromString(peerId).toMultihash().bytes).digest())
}

/** The XOR distance between two kad ids. */
export function distance (a: Uint8Array, b: Uint8Array): Uint8Array {
  return uint8ArrayXor(a, b)
}

/** PeerId strings sorted by distance to `target`'s key, closest first. */
export function sortByDistance (target: string, peers: string[]): string[] {
  const key = kadId(target)
  return peers
    .map(peer => ({ peer, d: distance(key, kadId(peer)) }))
    .sort((a, b) => uint8ArrayXorCompare(a.d, b.d))
    .map(({ peer }) => peer)
}

/** Whether `a` is strictly closer to `target`'s key than `b`. */
export function isCloser (target: string, a: string, b: string): boolean {
  const key = kadId(target)
  return uint8ArrayXorCompare(distance(key, kadId(a)), distance(key, kadId(b))) < 0
}
