import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { LevelDatastore } from 'datastore-level'
import { createNode, type NodeInit, type OctetNode } from '../../src/node/index.js'

/**
 * One real libp2p node as octet builds it, in this process, on 127.0.0.1 over TCP with a fresh
 * key, mDNS off and its datastore in a temp dir. What it needs undone (the node, the datastore,
 * the dir) goes onto `cleanups`, to run in reverse order.
 */
export async function startTestNode (
  cleanups: Array<() => Promise<void>>,
  { bootstrap = [], ...init }: Partial<Omit<NodeInit, 'bootstrap'>> & { bootstrap?: string[] } = {}
): Promise<OctetNode> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-node-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const datastore = new LevelDatastore(join(dir, 'libp2p'))
  await datastore.open()
  cleanups.push(async () => { await datastore.close() })
  const node = await createNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: [multiaddr('/ip4/127.0.0.1/tcp/0')],
    mdns: false,
    datastore,
    ...init,
    bootstrap: bootstrap.map(a => multiaddr(a))
  })
  cleanups.push(async () => { await node.stop() })
  return node
}
