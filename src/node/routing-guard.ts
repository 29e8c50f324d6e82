import { setTimeout as sleep } from 'node:timers/promises'
import type { AbortOptions, PeerInfo } from '@libp2p/interface'
import { EMPTY_QUERY_PAUSE } from './constants.js'

interface ClosestPeers {
  getClosestPeers: (key: Uint8Array, options?: AbortOptions) => AsyncIterable<PeerInfo>
}

/**
 * With `allowQueryWithZeroPeers` (src/node/index.ts), a DHT query from an empty
 * routing table ends at once, in microtasks, without touching the network.
 * libp2p's random walk, which relay discovery runs while a node behind a NAT
 * has fewer relays than it wants, queries in a loop: from an empty table (a
 * node that lost all its peers, or has not met one yet) that loop never yields
 * to the event loop, and timers, sockets and the API all stop. A query that
 * found nobody therefore returns after a pause; one that found peers, at once.
 */
export function pauseEmptyQueries (routing: ClosestPeers): void {
  const getClosestPeers = routing.getClosestPeers.bind(routing)
  routing.getClosestPeers = async function * (key, options) {
    let found = 0
    for await (const peer of getClosestPeers(key, options)) {
      found++
      yield peer
    }
    if (found === 0) await sleep(EMPTY_QUERY_PAUSE, undefined, { signal: options?.signal }).catch(() => {})
  }
}
