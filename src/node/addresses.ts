/**
 * Which addresses a node hands out and which it dials first. Behind a NAT a
 * peer's LAN address is useless to anyone outside its LAN, and a dial tries a
 * peer's addresses one after another: an address that cannot work, tried
 * first, costs the whole per-address timeout before the one that works.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { isPrivate } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Address, PeerInfo } from '@libp2p/interface'

const CIRCUIT = '/p2p-circuit'

export function isCircuit (addr: Multiaddr): boolean {
  return addr.toString().includes(CIRCUIT)
}

/** The IP of an /ip4 or /ip6 address (the relay's for a circuit address); undefined for DNS and others. */
export function ipOf (addr: Multiaddr): string | undefined {
  const first = addr.getComponents()[0]
  return first != null && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

export function isLoopback (addr: Multiaddr): boolean {
  const ip = ipOf(addr)
  return ip != null && (ip.startsWith('127.') || ip === '::1')
}

/** Not globally routable: RFC 1918, link-local, CGNAT, documentation and lab ranges, loopback. */
export function isPrivateAddress (addr: Multiaddr): boolean {
  return ipOf(addr) != null && isPrivate(addr) === true
}

/** Routable on the internet, and not through a relay. */
export function isPublicAddress (addr: Multiaddr): boolean {
  return !isCircuit(addr) && ipOf(addr) != null && !isPrivateAddress(addr)
}

/**
 * The subnets of this machine's (or network namespace's) interfaces: a peer
 * address inside one of them is on our LAN and can be dialled directly.
 */
export class LocalSubnets {
  private list = new BlockList()
  private readonly ips = new Set<string>()

  constructor () {
    this.refresh()
  }

  refresh (): void {
    const list = new BlockList()
    this.ips.clear()
    for (const infos of Object.values(networkInterfaces())) {
      for (const info of infos ?? []) {
        const prefix = Number(info.cidr?.split('/')[1] ?? (info.family === 'IPv4' ? 32 : 128))
        const type = info.family === 'IPv4' ? 'ipv4' : 'ipv6'
        // link-local IPv6 addresses carry a zone; BlockList takes them without it
        const address = info.address.split('%')[0] ?? info.address
        list.addSubnet(address, prefix, type)
        this.ips.add(address)
      }
    }
    this.list = list
  }

  /** True when `ip` is one of this host's own addresses. */
  isOwnIp (ip: string): boolean {
    return this.ips.has(ip)
  }

  contains (addr: Multiaddr): boolean {
    const ip = ipOf(addr)
    if (ip == null) return false
    if (isIPv4(ip)) return this.list.check(ip, 'ipv4')
    if (isIPv6(ip)) return this.list.check(ip, 'ipv6')
    return false
  }
}

/**
 * Addresses worth handing out for a peer (through the DHT and in our own
 * identify): a peer that has a public or a relayed address keeps its private
 * ones to its LAN, where mDNS finds it; loopback addresses only make sense
 * among nodes of one machine (a local testnet), so they go out only from a
 * node that has nothing but loopback itself.
 */
export function addressesWorthSharing (addrs: Multiaddr[], selfIsLoopbackOnly: boolean): Multiaddr[] {
  const reachableElsewhere = addrs.some(a => isCircuit(a) || isPublicAddress(a))
  return addrs.filter(addr => {
    if (isCircuit(addr)) return true
    if (isLoopback(addr)) return selfIsLoopbackOnly
    if (isPrivateAddress(addr)) return !reachableElsewhere
    return true
  })
}

export function isLoopbackOnly (listen: Multiaddr[]): boolean {
  const direct = listen.filter(a => !isCircuit(a))
  return direct.length > 0 && direct.every(isLoopback)
}

/**
 * A peer is behind a NAT when our connection to it comes from an IP that is
 * none of the addresses it announces: its router's. Then its private
 * addresses are its home LAN's, of use to nobody we could hand them to.
 */
export function isBehindNat (announced: Multiaddr[], connectedFrom: Multiaddr[]): boolean {
  const announcedIps = new Set(announced.filter(a => !isCircuit(a)).map(ipOf).filter(ip => ip != null))
  return connectedFrom.some(remote => {
    if (isCircuit(remote)) return false
    const ip = ipOf(remote)
    return ip != null && !announcedIps.has(ip)
  })
}

/**
 * A kad-dht peerInfoMapper applying `addressesWorthSharing` to every peer it
 * hands out, and dropping the private addresses of a peer we see behind a NAT
 * (before it has a relay, its LAN address is all it announces; handed out, it
 * costs every dial a timeout). `connectedFrom` gives the remote addresses of
 * our open connections to a peer.
 */
export function dhtPeerInfoMapper (selfIsLoopbackOnly: () => boolean, connectedFrom: (peer: PeerInfo['id']) => Multiaddr[]): (info: PeerInfo) => PeerInfo {
  return info => {
    let multiaddrs = addressesWorthSharing(info.multiaddrs, selfIsLoopbackOnly())
    if (isBehindNat(info.multiaddrs, connectedFrom(info.id))) multiaddrs = multiaddrs.filter(a => isCircuit(a) || !isPrivateAddress(a))
    return { ...info, multiaddrs }
  }
}

/**
 * Rank of an address for dialling, lowest first: our own LAN (and loopback,
 * when we are on loopback too), then public addresses, then relayed ones, then
 * private addresses of other networks (they work only over a VPN or routed
 * private network, and otherwise fail slowly).
 */
export function dialRank (addr: Multiaddr, subnets: LocalSubnets, selfOnLoopback: boolean): number {
  if (isCircuit(addr)) return 2
  if (isLoopback(addr)) return selfOnLoopback ? 0 : 4
  if (subnets.contains(addr)) return 0
  if (isPublicAddress(addr)) return 1
  return 3
}

/**
 * TCP before WebSockets within a rank: the same reach, less framing. A relayed WebRTC
 * address (`…/p2p-circuit/webrtc`) after the plain relayed one: a first contact goes through
 * the relay, which always works, and is upgraded afterwards (src/node/webrtc.ts); dialled
 * first, a WebRTC address that cannot connect (symmetric NAT) would hold the dial for seconds.
 */
function transportRank (addr: Multiaddr): number {
  const text = addr.toString()
  if (text.includes('/webrtc')) return 2
  return text.includes('/ws') ? 1 : 0
}

/** A connection manager `addressSorter` built on `dialRank`. */
export function dialAddressSorter (subnets: LocalSubnets, selfOnLoopback: () => boolean): (a: Address, b: Address) => -1 | 0 | 1 {
  return (a, b) => {
    const loopback = selfOnLoopback()
    const order = (dialRank(a.multiaddr, subnets, loopback) - dialRank(b.multiaddr, subnets, loopback)) ||
      (transportRank(a.multiaddr) - transportRank(b.multiaddr))
    return Math.sign(order) as -1 | 0 | 1
  }
}

/**
 * The network a connection's bytes come from, for limits that fresh PeerIds
 * cannot dodge (a PeerId costs a key pair; an address block does not come
 * free): an IPv4 address by its /24, an IPv6 address by its /48 (what one
 * site is usually given), an IPv4-mapped IPv6 address as the IPv4 it
 * carries. One rule, no exceptions:
 * - a relayed connection comes from its relay's address, so it counts
 *   against the relay's prefix (the peer's own address is hidden behind
 *   the relay; the relay limits circuits per peer itself);
 * - loopback is a prefix like any other: every peer of a local testnet is
 *   127.0.0.1 and shares one prefix, whose limits are sized for that.
 * 'unknown' for an address without an IP (DNS, memory transports).
 */
export function networkPrefix (addr: Multiaddr): string {
  const ip = ipOf(addr)
  if (ip == null) return 'unknown'
  if (isIPv4(ip)) return ipv4Prefix(ip.split('.').map(Number))
  if (!isIPv6(ip)) return 'unknown'
  const groups = ipv6Groups(ip)
  // ::ffff:a.b.c.d
  if (groups.slice(0, 5).every(g => g === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6)
    return ipv4Prefix([high >> 8, high & 0xff, low >> 8, low & 0xff])
  }
  return `${groups.slice(0, 3).map(g => g.toString(16)).join(':')}::/48`
}

function ipv4Prefix (octets: number[]): string {
  return `${octets.slice(0, 3).join('.')}.0/24`
}

/** The 8 groups of an IPv6 address (a trailing dotted IPv4 part read as two groups). */
function ipv6Groups (ip: string): number[] {
  const text = ip.toLowerCase().split('%')[0] ?? ''
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  const plain = dotted == null
    ? text
    : text.slice(0, dotted.index) + [[1, 2], [3, 4]].map(([h = 0, l = 0]) => ((Number(dotted[h]) << 8) | Number(dotted[l])).toString(16)).join(':')
  const [head = '', tail] = plain.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail == null || tail === '' ? [] : tail.split(':')
  const groups = tail == null ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
  return groups.map(g => parseInt(g, 16))
}
