import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { persistentPeerStore } from '@libp2p/peer-store'
import { defaultLogger } from '@libp2p/logger'
import { TypedEventEmitter } from 'main-event'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerRecordCache } from '../../../src/node/peer-record-cache.js'

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
const text = (value: Uint8Array): string => new TextDecoder().decode(value)
const peerKey = (name: string): Key => new Key(`/peers/${name}`)

async function collect<T> (source: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const items: T[] = []
  for await (const item of source) items.push(item)
  return items
}

describe('PeerRecordCache', () => {
  let dir: string
  let level: LevelDatastore

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'octet-peer-cache-'))
    level = new LevelDatastore(join(dir, 'libp2p'))
    await level.open()
  })

  afterEach(async () => {
    await level.close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps peer records in memory and writes them to LevelDB at the flush, not before', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 60_000 })
    await cache.put(peerKey('a'), bytes('one'))
    await cache.put(peerKey('a'), bytes('two'))
    expect(text(await cache.get(peerKey('a')))).toBe('two')
    expect(await level.has(peerKey('a'))).toBe(false)
    await cache.flush()
    expect(text(await level.get(peerKey('a')))).toBe('two')
    await cache.close()
  })

  it('writes on its own after the flush interval', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 20 })
    await cache.put(peerKey('a'), bytes('one'))
    await expect.poll(async () => await level.has(peerKey('a')), { timeout: 2000, interval: 10 }).toBe(true)
    await cache.close()
  })

  it('passes every other key straight through', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 60_000 })
    await cache.put(new Key('/dht/record/x'), bytes('record'))
    expect(text(await level.get(new Key('/dht/record/x')))).toBe('record')
    await cache.delete(new Key('/dht/record/x'))
    expect(await level.has(new Key('/dht/record/x'))).toBe(false)
    await cache.close()
  })

  it('answers a query with what is only in memory too (it flushes first)', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 60_000 })
    await level.put(peerKey('old'), bytes('stored'))
    await cache.put(peerKey('new'), bytes('pending'))
    const pairs = await collect(cache.query({ prefix: '/peers/' }))
    expect(pairs.map(p => [p.key.toString(), text(p.value)]).sort()).toEqual([['/peers/new', 'pending'], ['/peers/old', 'stored']])
    const keys = await collect(cache.queryKeys({ prefix: '/peers/' }))
    expect(keys.map(k => k.toString()).sort()).toEqual(['/peers/new', '/peers/old'])
    await cache.close()
  })

  it('reads a record it does not hold from LevelDB, and a delete removes it from both', async () => {
    await level.put(peerKey('a'), bytes('stored'))
    const cache = new PeerRecordCache(level, { flushInterval: 60_000 })
    expect(await cache.has(peerKey('a'))).toBe(true)
    expect(text(await cache.get(peerKey('a')))).toBe('stored')
    await cache.put(peerKey('a'), bytes('newer'))
    await cache.delete(peerKey('a'))
    await expect(cache.get(peerKey('a'))).rejects.toThrow()
    await cache.close()
    expect(await level.has(peerKey('a'))).toBe(false)
  })

  it('evicts least recently used clean records beyond its size and reads them back from LevelDB', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 60_000, maxEntries: 2 })
    for (const name of ['a', 'b', 'c', 'd']) await cache.put(peerKey(name), bytes(name))
    // dirty records are never evicted: all four are readable, and all reach LevelDB
    await cache.flush()
    for (const name of ['a', 'b', 'c', 'd']) expect(text(await level.get(peerKey(name)))).toBe(name)
    await level.put(peerKey('a'), bytes('changed behind the cache'))
    // touching c and d after the flush evicts the clean a and b: a is read again from LevelDB
    await cache.get(peerKey('c'))
    await cache.get(peerKey('d'))
    await cache.put(peerKey('e'), bytes('e'))
    expect(text(await cache.get(peerKey('a')))).toBe('changed behind the cache')
    await cache.close()
  })

  it('after close, writes go straight to LevelDB: a peer-store update libp2p settles late is neither lost nor left to a timer', async () => {
    const cache = new PeerRecordCache(level, { flushInterval: 60_000 })
    await cache.put(peerKey('a'), bytes('before'))
    await cache.close()
    expect(text(await level.get(peerKey('a')))).toBe('before')
    await cache.put(peerKey('b'), bytes('late'))
    expect(text(await level.get(peerKey('b')))).toBe('late')
  })

  it('keeps records whose write failed and writes them at the next flush', async () => {
    const errors: Error[] = []
    const cache = new PeerRecordCache(level, { flushInterval: 60_000, onFlushError: err => { errors.push(err) } })
    await cache.put(peerKey('a'), bytes('one'))
    await level.close()
    await expect(cache.flush()).rejects.toThrow()
    expect(errors).toHaveLength(1)
    await level.open()
    await cache.flush()
    expect(text(await level.get(peerKey('a')))).toBe('one')
    await cache.close()
  })

  it("under libp2p's peer store: many updates of a peer cost one write, and a restart finds them", async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const components = { peerId: self, datastore: new PeerRecordCache(level, { flushInterval: 60_000 }), events: new TypedEventEmitter(), logger: defaultLogger() }
    const store = persistentPeerStore(components)
    for (let i = 0; i < 100; i++) await store.merge(other, { protocols: [`/proto/${i % 5}`] })
    await store.merge(other, { multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')] })
    const raw = await collect(level.query({ prefix: '/peers/' }))
    expect(raw).toHaveLength(0)
    await components.datastore.close()

    const again = persistentPeerStore({ ...components, datastore: new PeerRecordCache(level) })
    const peer = await again.get(other)
    expect(peer.protocols.sort()).toEqual(['/proto/0', '/proto/1', '/proto/2', '/proto/3', '/proto/4'])
    expect(peer.addresses.map(a => a.multiaddr.toString())).toEqual(['/ip4/127.0.0.1/tcp/4001'])
  })
})
