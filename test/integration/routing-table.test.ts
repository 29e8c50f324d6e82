import { afterAll, describe, expect, it } from 'vitest'
import { routingTableOf, type OctetNode } from '../../src/node/index.js'
import { waitFor } from '../helpers/daemon.js'
import { startTestNode } from '../helpers/node.js'

// The guard of octet's one reach into kad-dht's private routing table (src/node/routing-table.ts):
// on the kad-dht octet runs, the view exists and reads the table as it fills. An upstream rename
// fails here, not as a mailbox that silently takes no stores or a status that says 0 peers.
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => { for (const cleanup of cleanups.splice(0).reverse()) await cleanup() })

async function start (bootstrap: string[] = []): Promise<OctetNode> {
  return await startTestNode(cleanups, { bootstrap })
}

describe("kad-dht's routing table as octet reads it", () => {
  it('exists on the running DHT and ranks the peer it holds as closest', async () => {
    const a = await start()
    const b = await start([a.announceAddresses()[0] as string])
    const table = routingTableOf(b.libp2p.services.dht)
    expect(table).toBeDefined()
    await waitFor(async () => (table?.size ?? 0) > 0 ? true : undefined, { what: 'a in b\'s routing table', timeoutMs: 10_000 })
    expect(b.routingTableSize()).toBe(table?.size)
    const kadId = new Uint8Array(32)
    const closest = table?.closestPeers(kadId, { count: 5, exclude: [] }).map(p => p.toString())
    expect(closest).toContain(a.peerId)
  })

  it('is undefined where the table is not what it expects', () => {
    expect(routingTableOf(undefined)).toBeUndefined()
    expect(routingTableOf({})).toBeUndefined()
    expect(routingTableOf({ routingTable: { size: 1, closestPeer: () => [] } })).toBeUndefined()
  })
})
