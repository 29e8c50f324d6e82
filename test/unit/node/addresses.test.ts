import { networkInterfaces } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { LocalSubnets, addressesWorthSharing, dhtPeerInfoMapper, dialAddressSorter, isBehindNat, isLoopbackOnly, networkPrefix } from '../../../src/node/addresses.js'

const RELAY = '12D3KooWKvBkCiJdZHsdNNruMcxxHWjvoUEdAiA7kdT5n2gobrh9'
const PEER = '12D3KooWRJ3CSBhu2aRU8Jw78Qe7ikiyqHQYh2rXuKKAk9hWoxT7'
const ma = (text: string): ReturnType<typeof multiaddr> => multiaddr(text)
const circuit = `/ip4/198.51.100.1/tcp/4710/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`

describe('addresses worth sharing', () => {
  it.each([
    ['a peer behind a NAT with a relay keeps its LAN address to its LAN', ['/ip4/192.168.1.20/tcp/4710', circuit], false, [circuit]],
    ['a public peer keeps its docker-bridge address to itself', ['/ip4/172.17.0.2/tcp/4710', '/ip4/1.2.3.4/tcp/4710'], false, ['/ip4/1.2.3.4/tcp/4710']],
    ['a peer that has nothing but LAN addresses keeps them (a LAN or a lab)', ['/ip4/10.1.0.2/tcp/4710', '/ip4/10.1.0.2/tcp/4711/ws'], false, ['/ip4/10.1.0.2/tcp/4710', '/ip4/10.1.0.2/tcp/4711/ws']],
    ['loopback goes out only from a loopback-only node (a local testnet)', ['/ip4/127.0.0.1/tcp/4710', '/ip4/10.1.0.2/tcp/4710'], false, ['/ip4/10.1.0.2/tcp/4710']],
    ['… and there it does', ['/ip4/127.0.0.1/tcp/4710'], true, ['/ip4/127.0.0.1/tcp/4710']]
  ])('%s', (_name, input, loopbackOnly, expected) => {
    expect(addressesWorthSharing(input.map(ma), loopbackOnly).map(String)).toEqual(expected)
  })

  it('tells a loopback-only node from one that listens elsewhere too', () => {
    expect(isLoopbackOnly([ma('/ip4/127.0.0.1/tcp/0'), ma('/ip4/127.0.0.1/tcp/0/ws')])).toBe(true)
    expect(isLoopbackOnly([ma('/ip4/127.0.0.1/tcp/0'), ma('/ip4/0.0.0.0/tcp/0')])).toBe(false)
    expect(isLoopbackOnly([])).toBe(false)
  })
})

describe('peers behind a NAT', () => {
  const lan = ma('/ip4/10.1.1.2/tcp/4710')
  it('is one whose connection comes from an address it does not announce (its router\'s)', () => {
    expect(isBehindNat([lan], [ma('/ip4/198.18.2.2/tcp/53122')])).toBe(true)
    expect(isBehindNat([lan], [ma('/ip4/10.1.1.2/tcp/53122')])).toBe(false)
    // through a relay we see the relay, not the peer
    expect(isBehindNat([lan], [ma(circuit)])).toBe(false)
    expect(isBehindNat([lan], [])).toBe(false)
  })

  it('has its LAN addresses kept out of the DHT, even before it has a relay', () => {
    const id = peerIdFromString(PEER)
    const mapper = dhtPeerInfoMapper(() => false, () => [ma('/ip4/198.18.2.2/tcp/53122')])
    expect(mapper({ id, multiaddrs: [lan] }).multiaddrs).toEqual([])
    expect(mapper({ id, multiaddrs: [lan, ma(circuit)] }).multiaddrs.map(String)).toEqual([circuit])
    // a peer seen at its own address keeps them: a LAN, or a lab on private ranges
    const direct = dhtPeerInfoMapper(() => false, () => [ma('/ip4/10.1.1.2/tcp/53122')])
    expect(direct({ id, multiaddrs: [lan] }).multiaddrs).toEqual([lan])
  })
})

describe('dial order', () => {
  const subnets = new LocalSubnets()
  const loopback = '/ip4/127.0.0.1/tcp/4710'
  // a neighbour on one of this machine's own subnets, when it has one besides loopback
  const own = Object.values(networkInterfaces()).flat().find(i => i?.family === 'IPv4' && !i.internal)
  const sort = (addrs: string[], onLoopback: boolean): string[] =>
    addrs.map(a => ({ multiaddr: ma(a), isCertified: false })).sort(dialAddressSorter(subnets, () => onLoopback)).map(a => a.multiaddr.toString())

  it('tries public addresses, then relays, then private addresses of other networks, and loopback only among loopback nodes', () => {
    const foreignLan = '/ip4/10.213.77.5/tcp/4710'
    expect(sort([foreignLan, circuit, '/ip4/1.2.3.4/tcp/4711/ws', '/ip4/1.2.3.4/tcp/4710', loopback], false))
      .toEqual(['/ip4/1.2.3.4/tcp/4710', '/ip4/1.2.3.4/tcp/4711/ws', circuit, foreignLan, loopback])
    expect(sort([circuit, loopback], true)).toEqual([loopback, circuit])
  })

  it.skipIf(own == null)('tries a neighbour on our own LAN before anything else', () => {
    const neighbour = `/ip4/${own?.address ?? ''}/tcp/4710`
    expect(sort(['/ip4/1.2.3.4/tcp/4710', circuit, neighbour], false)).toEqual([neighbour, '/ip4/1.2.3.4/tcp/4710', circuit])
  })
})

describe('the network prefix a connection comes from (per-prefix mailbox limits)', () => {
  it.each([
    ['IPv4 by its /24', '/ip4/203.0.113.77/tcp/4710', '203.0.113.0/24'],
    ['a neighbour in the same /24 shares it', '/ip4/203.0.113.5/tcp/1234', '203.0.113.0/24'],
    ['the next /24 does not', '/ip4/203.0.114.5/tcp/4710', '203.0.114.0/24'],
    ['loopback is a prefix like any other: a whole local testnet is one', '/ip4/127.0.0.1/tcp/4710', '127.0.0.0/24'],
    ['another loopback /24 is another prefix', '/ip4/127.0.1.9/tcp/4710', '127.0.1.0/24'],
    ['IPv6 by its /48', '/ip6/2001:db8:abcd:12:1::7/tcp/4710', '2001:db8:abcd::/48'],
    ['IPv6 written short', '/ip6/2001:db8::1/tcp/4710', '2001:db8:0::/48'],
    ['IPv6 loopback', '/ip6/::1/tcp/4710', '0:0:0::/48'],
    ['an IPv4-mapped IPv6 address as its IPv4', '/ip6/::ffff:198.51.100.7/tcp/4710', '198.51.100.0/24'],
    ['a relayed connection counts against its relay\'s prefix', circuit, '198.51.100.0/24'],
    ['no IP, no prefix of its own', '/dns4/example.org/tcp/4710', 'unknown']
  ])('%s', (_name, addr, prefix) => {
    expect(networkPrefix(ma(addr))).toBe(prefix)
  })
})
