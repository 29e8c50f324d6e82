import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { LocalSubnets, dialAddressSorter } from '../../../src/node/addresses.js'
import { isCircuitHolder, isWebRTC, stunServerFor, upgradesTo, webRTCAddressOver } from '../../../src/node/webrtc.js'
import { loadDaemonConfig } from '../../../src/config.js'

const RELAY = '12D3KooWLENd2G4shUGkNBs5Q9GhUhXsoLxShgGzwUnHL5qWmsTx'
const PEER = '12D3KooWFP3BawvfQRqPfMPeMwsbFdSLRLzr9LfzVxvk39Y1pfUr'

describe('WebRTC addresses', () => {
  it('builds the relayed WebRTC address from a relayed connection\'s address', () => {
    const relayed = multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`)
    expect(webRTCAddressOver(relayed, peerIdFromString(PEER)).toString())
      .toBe(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`)
    expect(() => webRTCAddressOver(multiaddr('/ip4/198.18.1.1/tcp/4001'), peerIdFromString(PEER))).toThrow(/not a relayed address/)
  })

  it('tells WebRTC addresses (either side\'s) from relayed and WebRTC-direct ones', () => {
    expect(isWebRTC(multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`))).toBe(true)
    expect(isWebRTC(multiaddr(`/webrtc/p2p/${PEER}`))).toBe(true)
    expect(isWebRTC(multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).toBe(false)
    expect(isCircuitHolder(multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).toBe(true)
    expect(isCircuitHolder(multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`))).toBe(false)
  })

  it('exactly one side of a pair upgrades, whatever the keys', async () => {
    const ids = await Promise.all(Array.from({ length: 24 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    fc.assert(fc.property(fc.integer({ min: 0, max: ids.length - 1 }), fc.integer({ min: 0, max: ids.length - 1 }), (i, j) => {
      fc.pre(i !== j)
      const [x, y] = [ids[i]!, ids[j]!]
      expect(upgradesTo(x, y)).not.toBe(upgradesTo(y, x))
    }))
    expect(upgradesTo(ids[0]!, ids[0]!)).toBe(false)
  })

  it('asks one STUN server, the first usable IP, and never falls back to a third party', () => {
    expect(stunServerFor([multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit`), multiaddr('/ip4/198.18.1.2/tcp/1')]))
      .toEqual([{ urls: ['stun:198.18.1.1:3478'] }])
    expect(stunServerFor([multiaddr('/ip6/2001:db8::1/tcp/1')], 3479)).toEqual([{ urls: ['stun:[2001:db8::1]:3479'] }])
    expect(stunServerFor([multiaddr('/dns4/example.org/tcp/1')])).toEqual([])
  })

  it('dials a peer\'s plain relayed address before its relayed WebRTC one', () => {
    const sort = dialAddressSorter(new LocalSubnets(), () => false)
    const webrtc = { multiaddr: multiaddr(`/ip4/198.18.1.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc`), isCertified: false }
    const circuit = { multiaddr: multiaddr(`/ip4/198.18.1.2/tcp/4001/p2p/${RELAY}/p2p-circuit`), isCertified: false }
    expect([webrtc, circuit].sort(sort)).toEqual([circuit, webrtc])
  })
})

describe('WebRTC settings', () => {
  it('WebRTC is off by default, STUN on 3478; OCTET_WEBRTC and the STUN port set them', () => {
    const dataDir = '/nonexistent/octet-webrtc-test'
    expect(loadDaemonConfig({ dataDir }, {})).toMatchObject({ webrtc: false, stunPort: 3478 })
    expect(loadDaemonConfig({ dataDir }, { OCTET_WEBRTC: 'true', OCTET_STUN_PORT: '0' })).toMatchObject({ webrtc: true, stunPort: 0 })
    expect(loadDaemonConfig({ dataDir, webrtc: false }, { OCTET_WEBRTC: 'true' }).webrtc).toBe(false)
    expect(() => loadDaemonConfig({ dataDir, stunPort: '70000' }, {})).toThrow(/STUN port/)
  })
})
