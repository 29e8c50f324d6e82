import { setTimeout as sleep } from 'node:timers/promises'
import { MessageType, type KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { EMPTY_QUERY_PAUSE } from './constants.js'

/**
 * What octet needs from kad-dht, and the one module that talks to it: the
 * routing table (its size, the peers in it closest to a key), walks towards a
 * key, peer lookups, and putting and getting records. Everything else reaches
 * the DHT through `Dht` (`OctetNode.dht`, or `dhtOf(libp2p)` inside `node/`),
 * and apart from `findPeer` (for the dialler in `node/`) it speaks PeerId
 * strings and bytes, no libp2p types.
 */
export class Dht {
  constructor (private readonly dht: KadDHT) {}

  /** Peers in the routing table: what this node's lookups can start from (0 when it cannot be read). */
  routingTableSize (): number {
    return routingTableOf(this.dht)?.size ?? 0
  }

  /** The peers in the routing table (empty when it cannot be read). */
  routingTablePeers (): string[] {
    const table = routingTableOf(this.dht)
    return table?.closestPeers(new Uint8Array(32), { count: table.size, exclude: [] }).map(peer => peer.toString()) ?? []
  }

  /**
   * The `count` peers of the routing table closest to a Kademlia key (sha256 of
   * the multihash), closest first, without those in `exclude`; no network.
   * undefined when the table cannot be read (see `routingTableOf`).
   */
  closestInTable (kadId: Uint8Array, count: number, exclude: string[] = []): string[] | undefined {
    return routingTableOf(this.dht)?.closestPeers(kadId, { count, exclude: exclude.map(peer => peerIdFromString(peer)) }).map(peer => peer.toString())
  }

  /** Resolves true once the routing table holds a peer; false after `timeoutMs` or an abort. */
  async waitForRoutingTable (timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (this.routingTableSize() === 0) {
      if (Date.now() >= deadline || signal?.aborted === true) return false
      await sleep(25)
    }
    return true
  }

  /**
   * A FIND_NODE walk towards `key` (a multihash): the peers that answered, and
   * the peers named in answers (which the walk may not have queried). From an
   * empty routing table it returns at once with nothing: kad-dht would wait for
   * a first peer with no limit but the signal. Throws when the walk fails.
   */
  async walk (key: Uint8Array, signal?: AbortSignal): Promise<{ answered: Set<string>, named: Set<string> }> {
    const answered = new Set<string>()
    const named = new Set<string>()
    if (routingTableOf(this.dht)?.size === 0) return { answered, named }
    for await (const event of this.dht.getClosestPeers(key, { signal })) {
      if (event.name === 'FINAL_PEER') answered.add(event.peer.id.toString())
      if (event.name === 'PEER_RESPONSE') {
        answered.add(event.from.toString())
        for (const peer of event.closer) named.add(peer.id.toString())
      }
    }
    return { answered, named }
  }

  /** Addresses of `peer` as each node that knows it answers, in the order they come. */
  async * findPeer (peer: PeerId, signal?: AbortSignal): AsyncGenerator<Multiaddr[]> {
    for await (const event of this.dht.findPeer(peer, { signal, useCache: false })) {
      if (event.name === 'FINAL_PEER') yield event.peer.multiaddrs
    }
  }

  /**
   * Puts a record: kept in our own record store and sent to the peers closest
   * to its key. Returns how many peers stored this very value. A walk that
   * fails after some peer stored it still counts; one that fails before throws.
   */
  async put (key: Uint8Array, value: Uint8Array, signal?: AbortSignal): Promise<number> {
    let stored = 0
    try {
      for await (const event of this.dht.put(key, value, { signal })) {
        if (event.name === 'PEER_RESPONSE' && event.messageType === MessageType.PUT_VALUE && event.record != null && uint8ArrayEquals(event.record.value, value)) stored++
      }
    } catch (err) {
      if (stored === 0) throw err
    }
    return stored
  }

  /**
   * Every distinct value found for `key` (at most `max`), and the error the
   * lookup ended with, if any. kad-dht's get() reports only the record its
   * selector picks, and throws all of them away when a peer holding an older
   * one refuses the correction; its progress events carry every record found,
   * so one unhelpful peer cannot hide the others.
   */
  async getAll (key: Uint8Array, max: number, signal?: AbortSignal): Promise<{ values: Uint8Array[], failure?: unknown }> {
    const values: Uint8Array[] = []
    const collect = (value: Uint8Array): void => {
      if (values.length < max && !values.some(v => uint8ArrayEquals(v, value))) values.push(value)
    }
    try {
      for await (const event of this.dht.get(key, {
        signal,
        onProgress: (evt) => {
          if (evt.type === 'kad-dht:query:value') collect((evt.detail as { value: Uint8Array }).value)
        }
      })) {
        if (event.name === 'VALUE') collect(event.value)
      }
    } catch (failure) {
      return { values, failure }
    }
    return { values }
  }
}

const adapters = new WeakMap<KadDHT, Dht>()

/** The one `Dht` of a node's kad-dht service. */
export function dhtOf (libp2p: { services: { dht: KadDHT } }): Dht {
  const dht = libp2p.services.dht
  let adapter = adapters.get(dht)
  if (adapter == null) {
    adapter = new Dht(dht)
    adapters.set(dht, adapter)
  }
  return adapter
}

/**
 * kad-dht's routing table, which its public types leave out (`KadDHT` has no
 * `routingTable`; the implementation has it): the only private field octet
 * reads in kad-dht. The view is checked at run time: an upstream rename makes
 * it undefined here, where callers decide what that means, instead of a
 * TypeError somewhere else; test/integration/dht.test.ts fails on it.
 */
export interface RoutingTableView {
  size: number
  closestPeers: (kadId: Uint8Array, options: { count: number, exclude: PeerId[] }) => PeerId[]
}

export function routingTableOf (dht: unknown): RoutingTableView | undefined {
  const table = (dht as { routingTable?: Partial<RoutingTableView> } | undefined)?.routingTable
  return typeof table?.closestPeers === 'function' && typeof table.size === 'number' ? table as RoutingTableView : undefined
}

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
