import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { routingTableOf } from '../../src/node/dht.js'
import type { OctetNode } from '../../src/node/index.js'
import { kadId } from '../../src/mailbox/distance.js'
import { until } from '../helpers/daemon.js'
import { startTestNode } from '../helpers/node.js'

// The guard of src/node/dht.ts, octet's one adapter to kad-dht and its one reach into a private
// field (the routing table): on the kad-dht octet runs, every part of it works on three real nodes.
// An upstream rename fails here, not as a mailbox that silently takes no stores or a status that
// says 0 peers.
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => { for (const cleanup of cleanups.splice(0).reverse()) await cleanup() })

// kad-dht refuses records of a namespace without a validator; this one takes anything
const NAMESPACE = 'octet-dht-test'
const dhtValidators = { [NAMESPACE]: async () => {} }
const dhtSelectors = { [NAMESPACE]: () => 0 }
const key = (name: string): Uint8Array => new TextEncoder().encode(`/${NAMESPACE}/${name}`)

let a: OctetNode
let b: OctetNode
let c: OctetNode

beforeAll(async () => {
  a = await startTestNode(cleanups, { dhtValidators, dhtSelectors })
  const bootstrap = [a.announceAddresses()[0] as string]
  ;[b, c] = await Promise.all([startTestNode(cleanups, { bootstrap, dhtValidators, dhtSelectors }), startTestNode(cleanups, { bootstrap, dhtValidators, dhtSelectors })])
  await until('a to hold b and c in its routing table', () => a.dht.routingTableSize() >= 2)
  await until('b and c to hold a', () => b.dht.routingTableSize() >= 1 && c.dht.routingTableSize() >= 1)
})

describe('src/node/dht.ts on the running kad-dht', () => {
  it('reads the routing table: its size, its peers, the ones closest to a key', () => {
    expect(routingTableOf(a.libp2p.services.dht)).toBeDefined()
    expect(a.dht.routingTablePeers().sort()).toEqual([b.peerId, c.peerId].sort())
    expect(a.dht.routingTableSize()).toBe(2)
    // the status reports the same table
    expect(a.status().routingTableSize).toBe(2)
    const closest = a.dht.closestInTable(kadId(b.peerId), 5)
    // b is at distance 0 from its own key
    expect(closest?.[0]).toBe(b.peerId)
    expect(a.dht.closestInTable(kadId(b.peerId), 5, [b.peerId])).toEqual([c.peerId])
  })

  it('walks towards a key and hears from the peers on the way', async () => {
    const { answered, named } = await b.dht.walk(c.libp2p.peerId.toMultihash().bytes, AbortSignal.timeout(10_000))
    expect([...answered]).toContain(a.peerId)
    expect([...answered, ...named]).toContain(c.peerId)
  })

  it('puts a record that another node gets back, with every distinct value found', async () => {
    const value = new TextEncoder().encode('held for the test')
    const stored = await b.dht.put(key('one'), value, AbortSignal.timeout(10_000))
    expect(stored).toBeGreaterThan(0)
    const { values, failure } = await c.dht.getAll(key('one'), 4, AbortSignal.timeout(10_000))
    expect(failure).toBeUndefined()
    expect(values.map(v => new TextDecoder().decode(v))).toEqual(['held for the test'])
  })

  it('finds a peer\'s addresses through the others', async () => {
    const found: string[] = []
    for await (const addrs of b.dht.findPeer(c.libp2p.peerId, AbortSignal.timeout(10_000))) found.push(...addrs.map(String))
    expect(found.some(addr => c.listenAddresses().some(listen => listen.startsWith(addr)))).toBe(true)
  })

  it('waits for a routing table entry, and says when none came', async () => {
    expect(await a.dht.waitForRoutingTable(1000)).toBe(true)
    const alone = await startTestNode(cleanups)
    expect(await alone.dht.waitForRoutingTable(100)).toBe(false)
    // from an empty table a walk ends at once, with nobody
    const { answered } = await alone.dht.walk(a.libp2p.peerId.toMultihash().bytes, AbortSignal.timeout(5_000))
    expect(answered.size).toBe(0)
  })

  it('finds no routing table where the table is not what it expects', () => {
    expect(routingTableOf(undefined)).toBeUndefined()
    expect(routingTableOf({})).toBeUndefined()
    expect(routingTableOf({ routingTable: { size: 1, closestPeer: () => [] } })).toBeUndefined()
  })
})
