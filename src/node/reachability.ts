/**
 * Where this node stands: can peers dial it (`public`), is it behind a NAT
 * (`private`), or is it too early to say (`unknown`)?
 *
 * - `public`: AutoNAT v2 (`@libp2p/autonat-v2`) had peers in four different
 *   /8s dial one of our public addresses back, and libp2p's address manager
 *   marked it verified; or the operator said so (`--reachability public`).
 * - `private`: peers observe us (identify's observed address) at an IP that
 *   is none of this host's own: something between us and them translates
 *   addresses, and no public address of ours was verified; or the operator
 *   said so.
 * - `unknown`: neither, e.g. a LAN or a local testnet, where peers see us at
 *   our own address and nothing is public.
 *
 * AutoNAT by design tests only globally routable addresses, so in a lab
 * network on private ranges (the NAT testnet) the public hosts are declared;
 * test/integration/autonat.test.ts builds a lab on public ranges instead.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ReachabilityMode } from '../config.js'
import { ipOf, isCircuit, isLoopback, isPublicAddress, type LocalSubnets } from './addresses.js'

export type Reachability = 'public' | 'private' | 'unknown'

export interface ReachabilityStatus {
  reachability: Reachability
  /** how it was decided: `declared` by the operator, or found by `autonat` / `nat-detection` */
  source: 'declared' | 'autonat' | 'nat-detection' | 'none'
  /** our addresses that AutoNAT confirmed peers can dial */
  confirmedAddresses: string[]
  /** the addresses peers saw our connections come from, when they differ from ours */
  observedAddresses: string[]
}

/** What the tracker reads from the node: kept to plain data so it is testable alone. */
export interface ReachabilitySource {
  /** our addresses with AutoNAT's verdict on each */
  addresses: () => Array<{ multiaddr: Multiaddr, verified: boolean }>
}


/** Observed addresses kept, newest last: enough to show, bounded against a peer that lies. */
const MAX_OBSERVED = 8

export class ReachabilityTracker {
  private readonly observed: string[] = []
  private last: Reachability
  private readonly listeners: Array<(status: ReachabilityStatus) => void> = []

  constructor (
    private readonly mode: ReachabilityMode,
    private readonly source: ReachabilitySource,
    private readonly subnets: LocalSubnets
  ) {
    this.last = this.status().reachability
  }

  /**
   * Identify told us the address a peer saw our connection come from. A
   * loopback peer sees us on loopback, and a peer behind the same NAT sees our
   * LAN address: neither says anything about the internet, and neither is a
   * translated address.
   */
  onObservedAddress (observed: Multiaddr, remote: Multiaddr): void {
    if (isCircuit(remote) || isLoopback(remote) || isCircuit(observed)) return
    const ip = ipOf(observed)
    if (ip == null || this.subnets.isOwnIp(ip)) return
    // interfaces may have changed (DHCP, VPN up) since we last looked
    this.subnets.refresh()
    if (this.subnets.isOwnIp(ip)) return
    const text = observed.toString()
    if (!this.observed.includes(text)) {
      this.observed.push(text)
      this.observed.splice(0, Math.max(0, this.observed.length - MAX_OBSERVED))
    }
    this.check()
  }

  /** Call when our addresses may have changed (libp2p's self:peer:update). */
  check (): void {
    const status = this.status()
    if (status.reachability !== this.last) {
      this.last = status.reachability
      for (const listener of this.listeners) listener(status)
    }
  }

  onChange (listener: (status: ReachabilityStatus) => void): void {
    this.listeners.push(listener)
  }

  get reachability (): Reachability {
    return this.last
  }

  status (): ReachabilityStatus {
    const confirmedAddresses = this.source.addresses()
      .filter(a => a.verified && isPublicAddress(a.multiaddr))
      .map(a => a.multiaddr.toString())
    const observedAddresses = [...this.observed]
    if (this.mode !== 'auto') return { reachability: this.mode, source: 'declared', confirmedAddresses, observedAddresses }
    if (confirmedAddresses.length > 0) return { reachability: 'public', source: 'autonat', confirmedAddresses, observedAddresses }
    if (observedAddresses.length > 0) return { reachability: 'private', source: 'nat-detection', confirmedAddresses, observedAddresses }
    return { reachability: 'unknown', source: 'none', confirmedAddresses, observedAddresses }
  }
}
