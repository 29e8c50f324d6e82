import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until } from '../helpers/daemon.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MessageType, type QueryEvent, type Validators } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { LevelDatastore } from 'datastore-level'
import { pino } from 'pino'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { signBundle } from '../../src/crypto/bundle.js'
import { DAY } from '../../src/units.js'
import { SignalCrypto, type VerifiedBundle } from '../../src/crypto/index.js'
import { createNode, type OctetLibp2p, type OctetNode } from '../../src/node/index.js'
import { ONE_TIME_PREKEY_BURST } from '../../src/prekeys/constants.js'
import { PREKEY_PROTOCOL, PrekeyService, prekeyRecordKey, prekeySelectors, prekeyValidators } from '../../src/prekeys/index.js'
import { validatePrekeyRecord } from '../../src/prekeys/records.js'
import { Store } from '../../src/store/database.js'
import { PrekeyBundle, SignedPrekeyBundle } from '../../src/wire/prekeys.pb.js'

/** Everything started is undone in afterAll, last first, even when a start failed halfway. */
const cleanups: Array<() => Promise<void>> = []
const silent = pino({ level: 'silent' })

interface TestNode {
  name: string
  privateKey: Ed25519PrivateKey
  peerId: string
  node: OctetNode
  libp2p: OctetLibp2p
  crypto: SignalCrypto
  prekeys: PrekeyService
  stop: () => Promise<void>
}

async function startNode (name: string, bootstrap: Multiaddr[], dhtValidators: Validators = prekeyValidators): Promise<TestNode> {
  const dir = await mkdtemp(join(tmpdir(), `octet-prekeys-${name}-`))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const privateKey = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  const store = await Store.open(dir)
  cleanups.push(async () => { await store.close() })
  const datastore = new LevelDatastore(join(dir, 'libp2p'))
  await datastore.open()
  cleanups.push(async () => { await datastore.close() })
  const node = await createNode({
    privateKey,
    listen: [multiaddr('/ip4/127.0.0.1/tcp/0')],
    bootstrap,
    mdns: false,
    datastore,
    dhtValidators,
    dhtSelectors: prekeySelectors
  })
  cleanups.push(async () => { await node.stop() })
  const crypto = await SignalCrypto.open({ store, privateKey, peerId })
  const prekeys = new PrekeyService({ libp2p: node.libp2p, dht: node.dht, crypto, log: silent })
  await prekeys.start()
  cleanups.push(async () => { await prekeys.stop() })
  const stop = async (): Promise<void> => {
    await prekeys.stop()
    await node.stop()
  }
  return { name, privateKey, peerId, node, libp2p: node.libp2p, crypto, prekeys, stop }
}


function routingTableSize (n: TestNode): number {
  return n.node.dht.routingTableSize()
}

function inRoutingTable (n: TestNode, other: TestNode): boolean {
  return n.node.dht.routingTablePeers().includes(other.peerId)
}

async function collect (events: AsyncIterable<QueryEvent>): Promise<QueryEvent[]> {
  const out: QueryEvent[] = []
  for await (const event of events) out.push(event)
  return out
}

/** Peers that answered a PUT_VALUE with the record: those that stored it. */
function storedBy (events: QueryEvent[], value: Uint8Array): string[] {
  return events.flatMap(e => e.name === 'PEER_RESPONSE' && e.messageType === MessageType.PUT_VALUE &&
    e.record != null && uint8ArrayEquals(e.record.value, value)
    ? [e.from.toString()]
    : [])
}

async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${String(err)}`
  }
  return 'no error'
}

/** Writes `total` random bytes in chunks, honouring backpressure; stops quietly when the server resets. */
async function sendGarbage (stream: Stream, total: number): Promise<void> {
  const chunk = 64 * 1024
  try {
    for (let sent = 0; sent < total; sent += chunk) {
      if (stream.status !== 'open') return
      if (!stream.send(randomBytes(Math.min(chunk, total - sent)))) await stream.onDrain({ signal: AbortSignal.timeout(5_000) })
    }
  } catch {
    // the server reset the stream: that is the expected outcome
  }
}

async function untilStreamEnds (stream: Stream): Promise<void> {
  await until('the stream to end', () => stream.status !== 'open', 5_000)
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)

async function exchange (from: TestNode, to: TestNode, bundle: VerifiedBundle): Promise<void> {
  await from.crypto.startSession(to.peerId, bundle)
  const hello = await from.crypto.encrypt(to.peerId, text(`hello ${to.name}`))
  expect(str(await to.crypto.decrypt(from.peerId, hello.type, hello.body))).toBe(`hello ${to.name}`)
  const reply = await to.crypto.encrypt(from.peerId, text(`hi ${from.name}`))
  expect(str(await from.crypto.decrypt(to.peerId, reply.type, reply.body))).toBe(`hi ${from.name}`)
}

// B is the bootstrap node; A, C and D join through it and find each other through the DHT
let A: TestNode, B: TestNode, C: TestNode, D: TestNode

beforeAll(async () => {
  B = await startNode('b', [])
  const boot = B.libp2p.getMultiaddrs()
  A = await startNode('a', boot)
  C = await startNode('c', boot)
  D = await startNode('d', boot)
  const all = [A, B, C, D]
  await until('every routing table to hold the 3 other nodes', () => all.every(n => routingTableSize(n) >= 3))
  // each node's own background publish has gone through at least once
  await until('every node to publish its bundle', () => all.every(n => n.prekeys.stats.publishes >= 1))
})

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('prekey distribution over /octet/prekeys/1.0.0 and the DHT', () => {
  it('fetches a fresh bundle with a one-time prekey from the peer, and a session built on it works', async () => {
    const bundle = await B.prekeys.fetchFromPeer(A.peerId)
    expect(bundle.peerId).toBe(A.peerId)
    expect(bundle.preKeyId).toBeTypeOf('number')
    expect(bundle.preKey).toBeInstanceOf(Uint8Array)
    await exchange(B, A, bundle)
    expect(A.prekeys.stats.bundlesServed).toBeGreaterThanOrEqual(1)
  })

  it('serves the published bundle from the DHT to a peer not connected to its owner', async () => {
    const stored = await A.prekeys.publish()
    expect(stored).toBeGreaterThanOrEqual(1)

    await D.node.hangUp(A.peerId)
    expect(D.libp2p.getConnections(A.libp2p.peerId)).toHaveLength(0)

    const bundle = await D.prekeys.fetchFromDht(A.peerId)
    expect(bundle.peerId).toBe(A.peerId)
    expect(bundle.preKeyId).toBeUndefined()
    expect(bundle.preKey).toBeUndefined()
    // the signed + last-resort Kyber prekeys alone set up a working session
    await exchange(D, A, bundle)
  })

  it('serves the bundle of a peer that went offline from the DHT', async () => {
    const E = await startNode('e', B.libp2p.getMultiaddrs())
    await until('E to publish its bundle', () => E.prekeys.stats.publishes >= 1)
    const identityKey = (await B.prekeys.fetchFromPeer(E.peerId)).identityKey
    await E.stop()

    expect(await codeOf(D.prekeys.fetchFromPeer(E.peerId))).toBe('PEER_UNREACHABLE')
    const bundle = await D.prekeys.fetchFromDht(E.peerId)
    expect(bundle.peerId).toBe(E.peerId)
    expect(bundle.preKeyId).toBeUndefined()
    expect(bundle.identityKey).toEqual(identityKey)
  })

  it('stops promptly and idempotently, aborting work in flight, and can start again', async () => {
    // work in flight: a fetch from a "peer" that accepts the TCP connection and then never
    // answers the Noise handshake, so the dial hangs until stop aborts it
    const G = await startNode('g', [])
    const sockets = new Set<Socket>()
    const silent = createServer(socket => { sockets.add(socket) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise(resolve => silent.close(resolve))
    })
    const silentPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await G.libp2p.peerStore.merge(silentPeer, { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${(silent.address() as AddressInfo).port}`)] })
    const connected = once(silent, 'connection')
    const fetching = codeOf(G.prekeys.fetchFromPeer(silentPeer.toString()))
    // in flight: the dial reached the silent peer and waits for its handshake
    await connected
    const started = Date.now()
    await Promise.all([G.prekeys.stop(), G.prekeys.stop()])
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(G.prekeys.isStarted()).toBe(false)
    expect(await fetching).toBe('UNAVAILABLE')
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await codeOf(G.prekeys.fetchFromDht(A.peerId))).toBe('UNAVAILABLE')

    // the protocol is no longer served
    await D.libp2p.dial(G.libp2p.getMultiaddrs())
    expect(await codeOf(D.prekeys.fetchFromPeer(G.peerId))).toBe('PEER_UNREACHABLE')

    await Promise.all([G.prekeys.start(), G.prekeys.start()])
    expect((await D.prekeys.fetchFromPeer(G.peerId)).peerId).toBe(G.peerId)
    await G.stop()
  })

  it('answers PEER_NOT_FOUND for a peer that never published', async () => {
    const nobody = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    expect(await codeOf(D.prekeys.fetchFromDht(nobody))).toBe('PEER_NOT_FOUND')
  })

  describe('refuses forged records under A\'s key', () => {
    const forgeries: Array<{ name: string, forge: () => Promise<Uint8Array> }> = [
      {
        name: 'C\'s own genuine bundle',
        forge: async () => await C.crypto.createBundle({ withOneTimePrekey: false })
      },
      {
        name: 'a bundle naming A, signed by C',
        forge: async () => {
          const body = PrekeyBundle.decode(SignedPrekeyBundle.decode(await C.crypto.createBundle({ withOneTimePrekey: false })).body)
          return await signBundle({ ...body, peerId: A.peerId }, C.privateKey)
        }
      },
      {
        name: 'an expired bundle really signed by A (a replay)',
        forge: async () => {
          const body = PrekeyBundle.decode(SignedPrekeyBundle.decode(await A.crypto.createBundle({ withOneTimePrekey: false })).body)
          const now = BigInt(Date.now())
          return await signBundle({ ...body, issuedAt: now - 20n * BigInt(DAY), expiresAt: now - 6n * BigInt(DAY) }, A.privateKey)
        }
      },
      {
        name: 'random bytes',
        forge: async () => new Uint8Array(randomBytes(2000))
      }
    ]

    for (const { name, forge } of forgeries) {
      it(name, async () => {
        const real = await D.prekeys.fetchFromDht(A.peerId)
        const forged = await forge()

        const events = await collect(C.libp2p.services.dht.put(prekeyRecordKey(A.peerId), forged, { signal: AbortSignal.timeout(10_000) }))
        expect(storedBy(events, forged)).toEqual([])
        // the closest peers were asked, and each refused
        expect(events.filter(e => e.name === 'QUERY_ERROR').length).toBeGreaterThanOrEqual(1)

        for (const reader of [B, D]) {
          const bundle = await reader.prekeys.fetchFromDht(A.peerId)
          expect(bundle.peerId).toBe(A.peerId)
          expect(bundle.identityKey).toEqual(real.identityKey)
          expect(bundle.issuedAt).toBeGreaterThanOrEqual(real.issuedAt)
        }
        // C holds the forgery in its own record store, yet even C's own get does not hand it out
        const fromC = await C.prekeys.fetchFromDht(A.peerId)
        expect(fromC.identityKey).toEqual(real.identityKey)
      })
    }
  })

  it('survives garbage on the prekey protocol and keeps serving', async () => {
    const before = A.prekeys.stats.badRequests

    // a few random bytes, as a confused client would send
    const small = await D.libp2p.dialProtocol(A.libp2p.peerId, PREKEY_PROTOCOL)
    await sendGarbage(small, 100)
    await untilStreamEnds(small)

    // a MiB of garbage: reset at the first chunk, never buffered
    const large = await D.libp2p.dialProtocol(A.libp2p.peerId, PREKEY_PROTOCOL)
    await sendGarbage(large, 1024 * 1024)
    await untilStreamEnds(large)

    // a stream reset by the client before it takes its bundle
    const reset = await D.libp2p.dialProtocol(A.libp2p.peerId, PREKEY_PROTOCOL)
    reset.abort(new Error('client gave up'))

    await until('A to count the bad streams', () => A.prekeys.stats.badRequests >= before + 2, 5_000)
    expect(A.libp2p.status).toBe('started')
    expect(small.status).not.toBe('closed')
    expect(large.status).not.toBe('closed')

    const bundle = await D.prekeys.fetchFromPeer(A.peerId)
    expect(bundle.peerId).toBe(A.peerId)
    expect(bundle.preKeyId).toBeTypeOf('number')
  })

  it('serves a peer beyond its budget bundles without one-time prekeys, and the pool is not drained', async () => {
    const fetcher = C
    const counts = await A.crypto.oneTimePrekeyCounts()
    const limitedBefore = A.prekeys.stats.rateLimited
    const requests = 40

    const bundles: VerifiedBundle[] = []
    for (let i = 0; i < requests; i++) bundles.push(await fetcher.prekeys.fetchFromPeer(A.peerId))

    const withOneTime = bundles.filter(b => b.preKeyId != null)
    expect(withOneTime).toHaveLength(ONE_TIME_PREKEY_BURST)
    expect(new Set(withOneTime.map(b => b.preKeyId)).size).toBe(ONE_TIME_PREKEY_BURST)
    expect(bundles.slice(ONE_TIME_PREKEY_BURST).every(b => b.preKeyId == null && b.peerId === A.peerId)).toBe(true)
    expect(A.prekeys.stats.rateLimited - limitedBefore).toBe(requests - ONE_TIME_PREKEY_BURST)

    const after = await A.crypto.oneTimePrekeyCounts()
    expect(after.issued - counts.issued).toBe(ONE_TIME_PREKEY_BURST)
    expect(after.available).toBeGreaterThanOrEqual(counts.available - ONE_TIME_PREKEY_BURST)

    // a bundle served beyond the budget still sets up a working session
    await exchange(fetcher, A, bundles[bundles.length - 1]!)
  })

  it('still finds the newest bundle when a peer holding an older one refuses the correction', async () => {
    // X stores what it is sent until told to refuse every put, as a broken or hostile peer would
    let refusePuts = false
    const X = await startNode('x', B.libp2p.getMultiaddrs(), {
      'octet-prekeys': async (key, value) => {
        if (refusePuts) throw new Error('refusing every put')
        await validatePrekeyRecord(key, value)
      }
    })
    // puts and gets go to the closest peers a node's own walk finds: make sure A's and D's include X
    await until('A and D to have X in their routing tables', () => inRoutingTable(A, X) && inRoutingTable(D, X))
    expect(await A.prekeys.publish()).toBeGreaterThanOrEqual(4)
    const older = await D.prekeys.fetchFromDht(A.peerId)

    refusePuts = true
    await new Promise(resolve => setTimeout(resolve, 5))
    expect(await A.prekeys.publish()).toBeGreaterThanOrEqual(3)

    // kad-dht's own get() picks the newest, tries to correct X, and throws away every record when X refuses
    const raw = collect(D.libp2p.services.dht.get(prekeyRecordKey(A.peerId), { signal: AbortSignal.timeout(10_000) }))
    await expect(raw).rejects.toThrow(/correction/)

    const newest = await D.prekeys.fetchFromDht(A.peerId)
    expect(newest.issuedAt).toBeGreaterThan(older.issuedAt)
    await X.stop()
  })
})
