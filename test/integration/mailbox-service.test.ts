import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until } from '../helpers/daemon.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { PrivateKey as SignalPrivateKey } from '@signalapp/libsignal-client'
import { LevelDatastore } from 'datastore-level'
import { pino } from 'pino'
import { seal, unseal } from '../../src/crypto/seal.js'
import { KiB } from '../../src/units.js'
import { isCloser, sortByDistance } from '../../src/mailbox/distance.js'
import { MAILBOX_PROTOCOL, MailboxService, type MailboxServiceOptions, type StoreResult } from '../../src/mailbox/index.js'
import { signProof } from '../../src/mailbox/proof.js'
import { callDelete, callFetch, callWatch, type Prover } from '../../src/mailbox/protocol-call.js'
import { envelopeId } from '../../src/mailbox/store.js'
import { createNode, type OctetLibp2p, type OctetNode } from '../../src/node/index.js'
import { Store, databasePaths } from '../../src/store/database.js'
import { MailboxStatus, SealedEnvelope } from '../../src/wire/mailbox.pb.js'

/** Everything started is undone in afterAll, last first, even when a start failed halfway. */
const cleanups: Array<() => Promise<void>> = []

const TTL = 60_000
const STORE_BURST = 20
/** STOREs a second per peer after the burst: slow, so that the flood is refused however slow the machine */
const STORE_RATE = 0.2

interface TestNode {
  name: string
  privateKey: Ed25519PrivateKey
  peerId: string
  dir: string
  node: OctetNode
  libp2p: OctetLibp2p
  store: Store
  mailbox: MailboxService
  /** this node's mailbox clock: tests move it forward */
  advance: (ms: number) => void
  /** every line the mailbox logged, at every level down to debug */
  logs: string[]
  stop: () => Promise<void>
}

async function startNode (name: string, bootstrap: Multiaddr[], privateKey?: Ed25519PrivateKey, options: MailboxServiceOptions = {}): Promise<TestNode> {
  const dir = await mkdtemp(join(tmpdir(), `octet-mailbox-${name}-`))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const key = privateKey ?? await generateKeyPair('Ed25519')
  const store = await Store.open(dir)
  cleanups.push(async () => { await store.close() })
  const datastore = new LevelDatastore(join(dir, 'libp2p'))
  await datastore.open()
  cleanups.push(async () => { await datastore.close() })
  const node = await createNode({ privateKey: key, listen: [multiaddr('/ip4/127.0.0.1/tcp/0')], bootstrap, mdns: false, datastore })
  cleanups.push(async () => { await node.stop() })
  let offset = 0
  const logs: string[] = []
  const mailbox = new MailboxService({
    libp2p: node.libp2p,
    dht: node.dht,
    store,
    privateKey: key,
    log: pino({ level: 'debug' }, { write: (line: string) => { logs.push(line) } }),
    options: {
      ttl: TTL,
      maxEnvelopesPerRecipient: 5,
      maxBytesPerRecipient: 100 * KiB,
      storeBurst: STORE_BURST,
      storeRatePerSecond: STORE_RATE,
      sweepInterval: 100,
      // handoff runs when a test asks for it
      handoffInterval: 60 * 60_000,
      now: () => Date.now() + offset,
      ...options
    }
  })
  await mailbox.start()
  cleanups.push(async () => { await mailbox.stop() })
  const stop = async (): Promise<void> => {
    await mailbox.stop()
    await node.stop()
  }
  return { name, privateKey: key, peerId: node.peerId, dir, node, libp2p: node.libp2p, store, mailbox, advance: ms => { offset += ms }, logs, stop }
}


function routingTableSize (n: TestNode): number {
  return n.node.dht.routingTableSize()
}

async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${String(err)}`
  }
  return 'no error'
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** A sealed envelope of `size` random bytes, for stores where the content does not matter. */
function filler (size = 200): Uint8Array {
  return SealedEnvelope.encode({ version: 1, ephemeralKey: new Uint8Array(randomBytes(33)), ciphertext: new Uint8Array(randomBytes(size)) })
}

async function newPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

/** Every byte of a Store's level database on disk (db/state), as one buffer. */
async function databaseBytes (n: TestNode): Promise<Buffer> {
  const path = databasePaths(n.dir).state
  const files = await readdir(path)
  return Buffer.concat(await Promise.all(files.map(async f => await readFile(join(path, f)).catch(() => Buffer.alloc(0)))))
}

/** Every key and raw value in the mailbox sublevels of a Store. */
async function mailboxRecords (n: TestNode): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const name of ['mailbox-env', 'mailbox-meta', 'mailbox-ids', 'mailbox-expiry']) {
    for await (const [key, value] of n.store.bytes(name).iterator()) parts.push(Buffer.from(key), Buffer.from(value))
  }
  return Buffer.concat(parts)
}

/** Dials `mailbox` on /octet/mailbox and runs a FETCH for `recipient` with whatever proof `prove` makes. */
async function rawFetch (from: TestNode, mailbox: TestNode, recipient: string, prove: Prover): Promise<{ status: MailboxStatus, ids: string[] }> {
  const stream = await from.libp2p.dialProtocol(mailbox.libp2p.peerId, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
  const result = await callFetch(stream, { recipient }, prove)
  return { status: result.response.status, ids: result.envelopes.map(e => hex(e.id)) }
}

async function rawDelete (from: TestNode, mailbox: TestNode, recipient: string, ids: Uint8Array[], prove: Prover): Promise<MailboxStatus> {
  const stream = await from.libp2p.dialProtocol(mailbox.libp2p.peerId, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
  return (await callDelete(stream, { recipient, ids }, prove)).status
}

const proverFor = (key: PrivateKey, mailbox: TestNode, recipient: string, op: 'FETCH' | 'DELETE', ids?: Uint8Array[]): Prover =>
  async nonce => await signProof(key, { mailbox: mailbox.peerId, recipient, op, nonce, ids })

// five mailbox nodes; R is the recipient, whose node starts later
let nodes: TestNode[]
let byId: Map<string, TestNode>
let rKey: Ed25519PrivateKey
let R: string
let rIdentity: SignalPrivateKey
/** the node farthest from R: it stores, and is not a holder */
let A: TestNode
let holders: TestNode[]
let sealed: Uint8Array
let rNode: TestNode | undefined
const MARKER = 'MARKER-plaintext-7f3a'

beforeAll(async () => {
  const first = await startNode('n0', [])
  const boot = first.libp2p.getMultiaddrs()
  nodes = [first, ...await Promise.all([1, 2, 3, 4].map(async i => await startNode(`n${i}`, boot)))]
  byId = new Map(nodes.map(n => [n.peerId, n]))
  // the first node knows everyone; the others know it, and find the rest through it when they walk the DHT
  await until('the bootstrap node to hold the 4 other nodes, and each of them it', () =>
    routingTableSize(first) >= 4 && nodes.every(n => routingTableSize(n) >= 1))

  rKey = await generateKeyPair('Ed25519')
  R = peerIdFromPrivateKey(rKey).toString()
  rIdentity = SignalPrivateKey.generate()
  const ranked = sortByDistance(R, nodes.map(n => n.peerId))
  A = byId.get(ranked.at(-1)!)!
  holders = ranked.slice(0, 3).map(id => byId.get(id)!)
}, 30_000)

afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('offline delivery through /octet/mailbox/1.0.0', () => {
  it('stores a sealed envelope for an offline recipient at the 3 peers closest to it', async () => {
    const closest = await A.mailbox.closestPeers(R, 3)
    expect(closest).toEqual(holders.map(h => h.peerId))
    expect(closest).not.toContain(A.peerId)

    const inner = new TextEncoder().encode(`from ${A.peerId}: ${MARKER}`)
    sealed = seal(inner, R, rIdentity.getPublicKey().serialize())
    for (const holder of holders) {
      expect(await A.mailbox.store(holder.peerId, R, sealed)).toEqual({ accepted: true, status: 'OK', reason: '', count: 1 })
      expect(holder.mailbox.stats()).toMatchObject({ envelopes: 1, recipients: 1 })
      expect(holder.mailbox.counters.storesAccepted).toBe(1)
    }
    // stored twice, kept once
    expect(await A.mailbox.store(holders[0]!.peerId, R, sealed)).toMatchObject({ accepted: true, count: 1 })
  })

  it('keeps neither the plaintext nor the storing peer in the mailbox database', async () => {
    for (const holder of holders) {
      for (const bytes of [await mailboxRecords(holder), await databaseBytes(holder)]) {
        // the envelope is there…
        expect(bytes.includes(Buffer.from(sealed.subarray(0, 64)))).toBe(true)
        // …but not what it says, nor who stored it (as a string or as bytes)
        expect(bytes.indexOf(MARKER)).toBe(-1)
        expect(bytes.indexOf(A.peerId)).toBe(-1)
        expect(bytes.indexOf(Buffer.from(A.libp2p.peerId.toMultihash().bytes))).toBe(-1)
        // …and (of course) the recipient it is for
        expect(bytes.indexOf(R)).toBeGreaterThanOrEqual(0)
      }
      // nor does it log who stored, at any level
      expect(holder.logs.filter(line => line.includes(A.peerId))).toEqual([])
    }
  })

  it('hands the envelope to the recipient alone: a replayed proof and a foreign key are refused', async () => {
    rNode = await startNode('r', nodes[0]!.libp2p.getMultiaddrs(), rKey)
    await until('R to find its closest peers', async () =>
      (await rNode!.mailbox.closestPeers(R, 3).catch((): string[] => [])).join() === holders.map(h => h.peerId).join())

    // R fetches once through the raw protocol, and we keep its proof
    const holder = holders[0]!
    let captured: Uint8Array | undefined
    const first = await rawFetch(rNode, holder, R, async nonce => {
      captured = await proverFor(rKey, holder, R, 'FETCH')(nonce)
      return captured
    })
    expect(first).toEqual({ status: MailboxStatus.OK, ids: [hex(envelopeId(sealed))] })

    // A replays it, forges with its own key, and tries to delete
    expect((await rawFetch(A, holder, R, async () => captured!)).status).toBe(MailboxStatus.UNAUTHORIZED)
    expect((await rawFetch(A, holder, R, proverFor(A.privateKey, holder, R, 'FETCH'))).status).toBe(MailboxStatus.UNAUTHORIZED)
    const ids = [envelopeId(sealed)]
    expect(await rawDelete(A, holder, R, ids, async () => captured!)).toBe(MailboxStatus.UNAUTHORIZED)
    expect(await rawDelete(A, holder, R, ids, proverFor(A.privateKey, holder, R, 'DELETE', ids))).toBe(MailboxStatus.UNAUTHORIZED)
    // R's proof for one holder is no good at another
    expect((await rawFetch(A, holders[1]!, R, async () => captured!)).status).toBe(MailboxStatus.UNAUTHORIZED)
    expect(holder.mailbox.counters.unauthorized).toBe(4)
    expect(holders[1]!.mailbox.counters.unauthorized).toBe(1)
    // through the service A only ever asks for its own envelopes: there are none
    expect(await A.mailbox.fetch(holder.peerId)).toEqual([])
    expect(holder.mailbox.stats().envelopes).toBe(1)
  })

  it('the recipient fetches the same envelope from every holder, opens it, deletes it; then nothing is left', async () => {
    const r = rNode!
    const fetched = await Promise.all(holders.map(async h => await r.mailbox.fetch(h.peerId)))
    for (const items of fetched) {
      expect(items).toHaveLength(1)
      expect(hex(items[0]!.id)).toBe(hex(envelopeId(sealed)))
      expect(items[0]!.sealed).toEqual(sealed)
    }
    expect(new TextDecoder().decode(unseal(fetched[0]![0]!.sealed, R, rIdentity))).toContain(MARKER)

    for (const holder of holders) {
      expect(await r.mailbox.delete(holder.peerId, [fetched[0]![0]!.id])).toBe(1)
      expect(await r.mailbox.fetch(holder.peerId)).toEqual([])
      expect(holder.mailbox.stats()).toEqual({ envelopes: 0, bytes: 0, recipients: 0 })
      expect(holder.mailbox.counters).toMatchObject({ deletes: 1, envelopesDeleted: 1 })
    }
  })

  it('refuses stores over quota with QUOTA_EXCEEDED and a reason naming the quota', async () => {
    const [byCount, byBytes] = [await newPeerId(), await newPeerId()]
    const from = holders[0]!
    for (let i = 0; i < 5; i++) expect((await from.mailbox.store(A.peerId, byCount, filler())).accepted).toBe(true)
    const overCount = await from.mailbox.store(A.peerId, byCount, filler())
    expect(overCount).toMatchObject({ accepted: false, status: 'QUOTA_EXCEEDED' })
    expect(overCount.reason).toMatch(/recipient envelope quota: 5 of 5/)

    expect((await from.mailbox.store(A.peerId, byBytes, filler(60 * KiB))).accepted).toBe(true)
    const overBytes = await from.mailbox.store(A.peerId, byBytes, filler(60 * KiB))
    expect(overBytes).toMatchObject({ accepted: false, status: 'QUOTA_EXCEEDED' })
    expect(overBytes.reason).toMatch(/recipient byte quota/)
    expect(A.mailbox.counters.storesRefused.QUOTA_EXCEEDED).toBe(2)
  })

  it('rate-limits a flood of stores from one peer while another still stores', async () => {
    const flooder = holders[1]!
    const results: StoreResult[] = []
    const started = Date.now()
    for (let i = 0; i < STORE_BURST + 10; i++) results.push(await flooder.mailbox.store(A.peerId, await newPeerId(), filler()))
    const seconds = (Date.now() - started) / 1000
    const limited = results.filter(r => r.status === 'RATE_LIMITED')
    const accepted = results.filter(r => r.accepted).length
    expect(accepted + limited.length).toBe(results.length)
    // the burst, plus what refilled while the flood ran
    expect(accepted).toBeLessThanOrEqual(STORE_BURST + Math.ceil(seconds * STORE_RATE) + 1)
    expect(limited.length).toBeGreaterThanOrEqual(1)
    expect(limited[0]!.reason).toMatch(/too many STOREs/)

    expect(await holders[2]!.mailbox.store(A.peerId, await newPeerId(), filler())).toMatchObject({ accepted: true })
    expect(A.mailbox.counters.storesRefused.RATE_LIMITED).toBe(limited.length)
  })

  it('never serves an expired envelope and sweeps it away', async () => {
    const r = rNode!
    const item = filler()
    expect((await holders[2]!.mailbox.store(A.peerId, R, item)).accepted).toBe(true)
    expect((await r.mailbox.fetch(A.peerId)).map(e => hex(e.id))).toEqual([hex(envelopeId(item))])
    const before = A.mailbox.stats().envelopes
    expect(before).toBeGreaterThan(1)

    A.advance(TTL)
    // everything at A is now at its expiry: not served, and the periodic sweep removes it all
    expect(await r.mailbox.fetch(A.peerId)).toEqual([])
    await until('the sweep to remove what expired', () => A.mailbox.stats().envelopes === 0, 5_000)
    expect(A.mailbox.stats()).toEqual({ envelopes: 0, bytes: 0, recipients: 0 })
    expect(A.mailbox.counters.expiredRemoved).toBe(before)
  })

  it('hands envelopes on to a peer that joined closer to the recipient', async () => {
    const r = rNode!
    const item = filler()
    for (const holder of holders) expect((await A.mailbox.store(holder.peerId, R, item)).accepted).toBe(true)
    const third = holders[2]!

    // a new node whose key is closer to R than the third holder's
    let key: Ed25519PrivateKey
    do key = await generateKeyPair('Ed25519')
    while (!isCloser(R, peerIdFromPrivateKey(key).toString(), third.peerId))
    const N = await startNode('new', nodes[0]!.libp2p.getMultiaddrs(), key)
    await Promise.all(nodes.map(async n => await N.libp2p.dial(n.libp2p.getMultiaddrs())))
    await until('the third holder to see the new node among the closest', async () =>
      (await third.mailbox.closestPeers(R, 3).catch((): string[] => [])).includes(N.peerId))

    // holders still among the 3 closest keep theirs
    expect(await holders[0]!.mailbox.handoff()).toEqual({ recipients: 1, moved: 0 })
    const report = await third.mailbox.handoff()
    expect(report).toEqual({ recipients: 1, moved: 1 })
    expect(third.mailbox.stats().envelopes).toBe(0)
    expect(third.mailbox.counters.handedOff).toBe(1)
    expect(N.mailbox.stats()).toMatchObject({ envelopes: 1, recipients: 1 })

    const now = await r.mailbox.closestPeers(R, 3)
    expect(now).toContain(N.peerId)
    expect(now).not.toContain(third.peerId)
    for (const peer of now) {
      expect((await r.mailbox.fetch(peer)).map(e => hex(e.id))).toEqual([hex(envelopeId(item))])
    }
    expect(await r.mailbox.fetch(third.peerId)).toEqual([])
  })

  it('resets a stream of garbage, counts it, and keeps serving', async () => {
    const holder = holders[1]!
    const before = holder.mailbox.counters.badFrames
    const garbage = [
      // a length prefix cut short
      Uint8Array.of(0x80),
      // a frame announced at 1 MiB
      Uint8Array.of(0x80, 0x80, 0x40),
      // a 3-byte frame that is no protobuf
      Uint8Array.of(0x03, 0xff, 0xff, 0xff)
    ]
    for (const bytes of garbage) {
      const stream = await A.libp2p.dialProtocol(holder.libp2p.peerId, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      stream.send(bytes)
      await stream.close().catch(() => {})
    }
    await until('the garbage to be counted', () => holder.mailbox.counters.badFrames === before + 3)
    expect((await A.mailbox.store(holder.peerId, await newPeerId(), filler())).accepted).toBe(true)
  })

  it('notifies a watching recipient as soon as one of its mailboxes stores for it', async () => {
    const r = rNode!
    const heard: Array<{ mailbox: string, count: number }> = []
    r.mailbox.watch(holders.map(h => h.peerId), (mailbox, count) => { heard.push({ mailbox, count }) })
    await until('R to watch its 3 mailboxes', () => r.mailbox.watching().length === 3)
    for (const h of holders) expect(h.mailbox.watcherCount()).toBe(1)
    // (what the mailboxes held when R registered was announced in their answers)
    heard.length = 0
    const holder = holders[1]!
    const sentBefore = holder.mailbox.counters.notifiesSent
    const started = Date.now()
    expect((await A.mailbox.store(holder.peerId, R, filler())).accepted).toBe(true)
    await until('R to hear of the store', () => heard.some(h => h.mailbox === holder.peerId), 2_000)
    expect(Date.now() - started).toBeLessThan(1_000)
    // one notify, carrying what the mailbox holds for R now (the handoff test left one there before)
    expect(heard).toEqual([{ mailbox: holder.peerId, count: 2 }])
    expect(holder.mailbox.counters.notifiesSent).toBe(sentBefore + 1)
    expect(r.mailbox.watchCounters).toMatchObject({ registered: 3, notifies: 1, failed: 0 })

    // the connection drops: the watch comes back by itself, and still notifies
    await holder.libp2p.hangUp(r.libp2p.peerId)
    await until('R to watch the mailbox again', () => r.mailbox.watchCounters.registered >= 4 && r.mailbox.watching().includes(holder.peerId) && holder.mailbox.watcherCount() === 1, 10_000)
    heard.length = 0
    expect((await A.mailbox.store(holder.peerId, R, filler())).accepted).toBe(true)
    await until('R to hear of the store on its new watch', () => heard.some(h => h.mailbox === holder.peerId), 2_000)
  })

  it('refuses a watch of someone else\'s mailbox, and resets garbage on a watch stream without disturbing other watches', async () => {
    const holder = holders[1]!
    const dial = async (): Promise<Stream> => await A.libp2p.dialProtocol(holder.libp2p.peerId, MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(5_000), runOnLimitedConnection: true })
    // A, on its own authenticated connection, asks to hear of R's envelopes
    const refusedBefore = holder.mailbox.counters.watchesRefused
    const theirs = await callWatch(await dial(), R)
    expect(theirs.response.status).toBe(MailboxStatus.UNAUTHORIZED)
    expect(theirs.response.reason).toContain(A.peerId)
    // (counted once the exchange is over, both ends closed)
    await until('the refusal to be counted', () => holder.mailbox.counters.watchesRefused === refusedBefore + 1)
    expect(holder.mailbox.watcherCount()).toBe(1)

    // A's watch of its own mailbox is fine, until it sends garbage on it
    const stream = await dial()
    const own = await callWatch(stream, A.peerId)
    expect(own.response.status).toBe(MailboxStatus.OK)
    expect(holder.mailbox.watcherCount()).toBe(2)
    const badBefore = holder.mailbox.counters.badFrames
    stream.send(Uint8Array.of(0x03, 0xff, 0xff, 0xff))
    await until('the garbage to be counted and the watch dropped', () => holder.mailbox.counters.badFrames === badBefore + 1 && holder.mailbox.watcherCount() === 1)
    // R still watches, and the mailbox still serves
    expect(rNode!.mailbox.watching()).toContain(holder.peerId)
    expect((await A.mailbox.store(holder.peerId, await newPeerId(), filler())).accepted).toBe(true)

    rNode!.mailbox.watch([], () => {})
    await until('R\'s watches to end at every mailbox', () => holders.every(h => h.mailbox.watcherCount() === 0))
  })

  it('stops promptly and idempotently, and refuses calls once stopped', async () => {
    const n = holders[0]!
    await Promise.all([n.mailbox.stop(), n.mailbox.stop()])
    expect(n.mailbox.isStarted()).toBe(false)
    expect(await codeOf(n.mailbox.fetch(A.peerId))).toBe('UNAVAILABLE')
    // the protocol is no longer served
    expect(await codeOf(A.mailbox.store(n.peerId, R, filler()))).toBe('PEER_UNREACHABLE')
    await Promise.all([n.mailbox.start(), n.mailbox.start()])
    expect((await A.mailbox.store(n.peerId, await newPeerId(), filler())).accepted).toBe(true)
  })
})
