import { describe, expect, it } from 'vitest'
import { UNIX_SOCKET_PATH_MAX, fitsUnixSocket } from '../../../src/api-socket.js'
import { Testnet } from '../../../src/testnet/index.js'
import { Topology } from '../../../src/testnet/netns.js'

describe('topology specs are checked before anything is built', () => {
  it.each([
    [{ publicHosts: -1, homes: [] }],
    [{ publicHosts: 1.5, homes: [] }],
    [{ publicHosts: 251, homes: [] }],
    [{ publicHosts: 1, homes: [{ hosts: 300 }] }]
  ])('%j is refused with INVALID_CONFIG', async spec => {
    await expect(Topology.create(spec)).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
  })

  it('a public net that is not two octets is refused', async () => {
    await expect(Topology.create({ publicHosts: 1, homes: [] }, { publicNet: '10.0.0' })).rejects.toMatchObject({ code: 'INVALID_CONFIG' })
  })
})

describe('Unix socket paths', () => {
  it(`fit up to ${UNIX_SOCKET_PATH_MAX} bytes, counted in UTF-8`, () => {
    expect(fitsUnixSocket('/'.padEnd(UNIX_SOCKET_PATH_MAX, 'a'))).toBe(true)
    expect(fitsUnixSocket('/'.padEnd(UNIX_SOCKET_PATH_MAX + 1, 'a'))).toBe(false)
    expect(fitsUnixSocket('/'.padEnd(UNIX_SOCKET_PATH_MAX - 1, 'a') + 'é')).toBe(false)
  })
})

describe('NAT testnet placement', () => {
  it('puts node-0 and a quarter of the others on public hosts, at least one', () => {
    expect([1, 2, 4, 5, 8, 10, 100].map(n => Testnet.publicShare(n))).toEqual([1, 1, 1, 2, 2, 3, 25])
  })
})
