import type { PeerId } from '@libp2p/interface'

/**
 * The one place octet reads kad-dht's routing table, which its public types
 * leave out (`KadDHT` has no `routingTable`; the implementation has it). The
 * view is checked at run time: an upstream rename makes it undefined here,
 * where callers decide what that means, instead of a TypeError somewhere else.
 */
export interface RoutingTableView {
  size: number
  closestPeers: (kadId: Uint8Array, options: { count: number, exclude: PeerId[] }) => PeerId[]
}

export function routingTableOf (dht: unknown): RoutingTableView | undefined {
  const table = (dht as { routingTable?: Partial<RoutingTableView> } | undefined)?.routingTable
  return typeof table?.closestPeers === 'function' && typeof table.size === 'number' ? table as RoutingTableView : undefined
}
