import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { Store } from '../../../src/store/database.js'
import { SignalCrypto } from '../../../src/crypto/index.js'

/** A clock the test moves by hand. */
export class Clock {
  constructor (public time = Date.UTC(2030, 0, 1)) {}
  readonly now = (): number => this.time
  advance (ms: number): void { this.time += ms }
}

export interface Node {
  name: string
  privateKey: Ed25519PrivateKey
  peerId: string
  dataDir: string
  store: Store
  crypto: SignalCrypto
  clock: Clock
}

/** Creates nodes on fresh temp data dirs and removes them all in cleanup(). */
export class Nodes {
  private readonly dirs: string[] = []
  private readonly stores = new Set<Store>()

  async create (name: string, options: { privateKey?: Ed25519PrivateKey, clock?: Clock } = {}): Promise<Node> {
    const privateKey = options.privateKey ?? await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(privateKey).toString()
    const dataDir = await mkdtemp(join(tmpdir(), `octet-crypto-${name}-`))
    this.dirs.push(dataDir)
    const clock = options.clock ?? new Clock()
    const store = await Store.open(dataDir)
    this.stores.add(store)
    const crypto = await SignalCrypto.open({ store, privateKey, peerId, now: clock.now })
    return { name, privateKey, peerId, dataDir, store, crypto, clock }
  }

  /** Closes the node's store and opens it again, as a daemon restart would. */
  async reopen (node: Node): Promise<Node> {
    await node.store.close()
    this.stores.delete(node.store)
    const store = await Store.open(node.dataDir)
    this.stores.add(store)
    const crypto = await SignalCrypto.open({ store, privateKey: node.privateKey, peerId: node.peerId, now: node.clock.now })
    return { ...node, store, crypto }
  }

  async cleanup (): Promise<void> {
    for (const store of this.stores) await store.close()
    this.stores.clear()
    for (const dir of this.dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  }
}

/** Alice fetches Bob's bundle (online, with a one-time prekey) and starts a session. */
export async function connect (from: Node, to: Node, withOneTimePrekey = true): Promise<void> {
  const bundle = await to.crypto.createBundle({ withOneTimePrekey })
  const verified = await from.crypto.verifyBundle(bundle, to.peerId)
  await from.crypto.startSession(to.peerId, verified)
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s)
export const str = (b: Uint8Array): string => new TextDecoder().decode(b)

export async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${String(err)}`
  }
  return 'no error'
}
