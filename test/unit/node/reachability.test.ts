import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { LocalSubnets } from '../../../src/node/addresses.js'
import { ReachabilityTracker, type ReachabilityStatus } from '../../../src/node/reachability.js'

const ma = (text: string): ReturnType<typeof multiaddr> => multiaddr(text)

function tracker (mode: 'auto' | 'public' | 'private', addresses: Array<{ multiaddr: ReturnType<typeof multiaddr>, verified: boolean }> = []): { t: ReachabilityTracker, changes: ReachabilityStatus[] } {
  const t = new ReachabilityTracker(mode, { addresses: () => addresses }, new LocalSubnets())
  const changes: ReachabilityStatus[] = []
  t.onChange(status => changes.push(status))
  return { t, changes }
}

describe('reachability', () => {
  it('is unknown until something is shown: a LAN or a local testnet', () => {
    const { t } = tracker('auto', [{ multiaddr: ma('/ip4/10.0.0.5/tcp/4710'), verified: true }])
    expect(t.status()).toMatchObject({ reachability: 'unknown', source: 'none' })
  })

  it('is private once a peer on the internet saw our connection come from an address that is not ours', () => {
    const { t, changes } = tracker('auto')
    t.onObservedAddress(ma('/ip4/198.51.100.7/tcp/61234'), ma('/ip4/198.51.100.1/tcp/4710'))
    expect(t.reachability).toBe('private')
    expect(changes.map(c => c.reachability)).toEqual(['private'])
    expect(t.status().observedAddresses).toEqual(['/ip4/198.51.100.7/tcp/61234'])
  })

  it('learns nothing from loopback peers, relayed connections or our own address', () => {
    const { t } = tracker('auto')
    t.onObservedAddress(ma('/ip4/198.51.100.7/tcp/61234'), ma('/ip4/127.0.0.1/tcp/4710'))
    t.onObservedAddress(ma('/ip4/198.51.100.7/tcp/61234'), ma(`/ip4/198.51.100.1/tcp/4710/p2p/12D3KooWKvBkCiJdZHsdNNruMcxxHWjvoUEdAiA7kdT5n2gobrh9/p2p-circuit`))
    t.onObservedAddress(ma('/ip4/127.0.0.1/tcp/4710'), ma('/ip4/198.51.100.1/tcp/4710'))
    expect(t.reachability).toBe('unknown')
  })

  it('is public once AutoNAT confirmed a public address, whatever NAT detection said', () => {
    const addresses = [{ multiaddr: ma('/ip4/1.2.3.4/tcp/4710'), verified: false }]
    const { t, changes } = tracker('auto', addresses)
    t.onObservedAddress(ma('/ip4/198.51.100.7/tcp/61234'), ma('/ip4/198.51.100.1/tcp/4710'))
    addresses[0]!.verified = true
    t.check()
    expect(t.status()).toMatchObject({ reachability: 'public', source: 'autonat', confirmedAddresses: ['/ip4/1.2.3.4/tcp/4710'] })
    expect(changes.map(c => c.reachability)).toEqual(['private', 'public'])
  })

  it('keeps at most a few observed addresses: a lying peer cannot grow it', () => {
    const { t } = tracker('auto')
    for (let i = 0; i < 100; i++) t.onObservedAddress(ma(`/ip4/198.51.100.${i}/tcp/1`), ma('/ip4/198.51.100.250/tcp/4710'))
    expect(t.status().observedAddresses.length).toBeLessThanOrEqual(8)
  })

  it('takes the operator at their word', () => {
    expect(tracker('public').t.status()).toMatchObject({ reachability: 'public', source: 'declared' })
    expect(tracker('private').t.status()).toMatchObject({ reachability: 'private', source: 'declared' })
  })
})
