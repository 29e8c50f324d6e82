import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { SignalCrypto } from '../../../src/crypto/index.js'
import { Counters, EventLog, Messenger, type BundleSource, type MessageRecord, type OctetEvent } from '../../../src/messaging/index.js'
import { MessagingStore } from '../../../src/messaging/records.js'
import type { OctetNode } from '../../../src/node/index.js'
import { PrekeyService } from '../../../src/prekeys/index.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { Store } from '../../../src/store/database.js'
import { startTestNode } from '../../helpers/node.js'

/**
 * The Messenger at its boundary: two real Messengers, each on its own store,
 * commit pipeline, Signal state and libp2p node on 127.0.0.1, assembled as
 * daemon.ts does. Only outcomes are asserted: what the other side stored,
 * the events, the statuses, what is on disk after a restart.
 */

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const run of cleanups.splice(0).reverse()) await run().catch(() => {}) })

/**
 * Errors logged, and anything that met a closed database: a stop must leave nothing failing
 * behind. (Warnings are not: a transport that stops aborts its inbound streams and says so.)
 */
const complaints: string[] = []
const log = pino({ level: 'warn' }, {
  write: (line: string) => {
    const { level } = JSON.parse(line) as { level: number }
    if (level >= 50 || /not open|UNAVAILABLE/i.test(line)) complaints.push(line)
  }
})
afterEach(() => { complaints.length = 0 })

interface Peer {
  dir: string
  key: PrivateKey
  port: number
  node: OctetNode
  store: Store
  pipeline: CommitPipeline
  events: EventLog
  messenger: Messenger
  /** every event, in the order published */
  published: OctetEvent[]
  /** stops as the daemon does: messenger, prekeys, node, pipeline, store; idempotent */
  stop: () => Promise<void>
  /** as close to a crash as one process gets: the database closes under everything, then the rest stops */
  crash: () => Promise<void>
}

/**
 * Starts (or starts again, on the same data directory, key and port) one peer. `writeDelay`:
 * every database batch waits this long first, so a crash finds one under way.
 */
async function startPeer ({ dir, key, port = 0, bundles, writeDelay }: { dir?: string, key?: PrivateKey, port?: number, bundles?: (prekeys: PrekeyService) => BundleSource, writeDelay?: number } = {}): Promise<Peer> {
  if (dir == null) {
    const made = await mkdtemp(join(tmpdir(), 'octet-messenger-'))
    cleanups.push(async () => { await rm(made, { recursive: true, force: true }) })
    dir = made
  }
  key ??= await generateKeyPair('Ed25519')
  const nodeCleanups: Array<() => Promise<void>> = []
  const node = await startTestNode(nodeCleanups, { privateKey: key, listen: [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)] })
  const store = await Store.open(dir)
  if (writeDelay != null) {
    const batch = store.batch.bind(store)
    store.batch = async ops => { await new Promise(resolve => setTimeout(resolve, writeDelay)); await batch(ops) }
  }
  const pipeline = new CommitPipeline(store)
  const crypto = await SignalCrypto.open({ store, pipeline, privateKey: key, peerId: node.peerId })
  const prekeys = new PrekeyService({ libp2p: node.libp2p, dht: node.dht, crypto, log })
  await prekeys.start()
  const events = await EventLog.open(pipeline)
  const messenger = new Messenger({ peerId: node.peerId, store, crypto, bundles: bundles?.(prekeys) ?? prekeys, libp2p: node.libp2p, events, counters: new Counters(), log })
  const published: OctetEvent[] = []
  events.subscribe(event => { published.push(event) })
  await messenger.start()
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      await messenger.stop()
      await prekeys.stop()
      for (const run of nodeCleanups.reverse()) await run()
      await pipeline.close()
      await store.close()
    })()
    await stopping
  }
  cleanups.push(stop)
  const crash = async (): Promise<void> => {
    stopping = (async () => {
      await store.close()
      await messenger.stop().catch(() => {})
      await prekeys.stop().catch(() => {})
      for (const run of nodeCleanups.reverse()) await run().catch(() => {})
      await pipeline.close()
    })()
    await stopping
  }
  const bound = node.listenAddresses().map(a => multiaddr(a).getComponents().find(c => c.name === 'tcp')?.value).find(p => p != null)
  return { dir, key, port: Number(bound), node, store, pipeline, events, messenger, published, stop, crash }
}

async function connect (from: Peer, to: Peer): Promise<void> {
  await from.node.libp2p.dial(multiaddr(to.node.listenAddresses()[0] as string))
}

async function inbox (at: Peer, from: Peer): Promise<MessageRecord[]> {
  return await at.messenger.history(from.node.peerId, { limit: 1000 })
}

async function until<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const texts = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix} ${String(i).padStart(4, '0')}`)

/** Sends one after another: the order they were accepted is the order they must arrive in. */
async function sendAll (from: Peer, to: Peer, all: string[]): Promise<MessageRecord[]> {
  const sent: MessageRecord[] = []
  for (const text of all) sent.push((await from.messenger.send({ to: to.node.peerId, text })).message)
  return sent
}

describe('Messenger between two real nodes', () => {
  it('delivers decrypted, once each, in order; receipts turn the sender\'s statuses to delivered and read', async () => {
    const a = await startPeer()
    const b = await startPeer()
    await connect(a, b)
    const sent = await sendAll(a, b, texts(200, 'hello'))

    const got = await until('200 messages at B', async () => {
      const messages = await inbox(b, a)
      return messages.length >= 200 ? messages : undefined
    })
    expect(got.map(m => [m.id, m.text, m.seq, m.direction])).toEqual(sent.map(m => [m.id, m.text, m.seq, 'in']))
    const received = b.published.flatMap(e => e.type === 'message.received' ? [e.data.message.id] : [])
    expect(received).toEqual(sent.map(m => m.id))

    // the sender hears of each delivery: every status on disk and in the events
    await until('all delivered at A', async () => (await inbox(a, b)).every(m => m.status === 'delivered') ? true : undefined)
    const statuses = (status: string): string[] => a.published.flatMap(e => e.type === 'message.status' && e.data.status === status ? [e.data.id] : [])
    expect(new Set(statuses('delivered'))).toEqual(new Set(sent.map(m => m.id)))

    // a read receipt goes back through B's outbox
    await b.messenger.markRead(sent[0]!.id)
    await until('read at A', async () => (await a.messenger.message(sent[0]!.id)).status === 'read' ? true : undefined)
    expect(statuses('read')).toEqual([sent[0]!.id])
    // writing to B made it A's contact, and A's events said so once, before the first message
    const contactEvents = a.published.filter(e => e.type === 'contact.updated')
    expect(contactEvents.map(e => e.type === 'contact.updated' && [e.data.contact.peerId, e.data.contact.state])).toEqual([[b.node.peerId, 'accepted']])
    expect(a.published.findIndex(e => e.type === 'contact.updated')).toBeLessThan(a.published.findIndex(e => e.type === 'message.sent'))
    // events are numbered without gaps, in the order they were published
    for (const peer of [a, b]) expect(peer.published.map(e => e.id)).toEqual(peer.published.map((_, i) => i + 1))
    expect(complaints).toEqual([])
  })

  it.each(['stop', 'crash'] as const)('a restart of the receiver mid-burst (%s) loses nothing: everything arrives once, in order', async (how) => {
    const a = await startPeer()
    // a slow disk: a batch is being written whenever the receiver stops or crashes
    let b = await startPeer({ writeDelay: 20 })
    await connect(a, b)
    const all = texts(600, 'burst')
    const sending = sendAll(a, b, all)
    // awaited below; a test that fails before that must not leave it unhandled
    sending.catch(() => {})
    await until('the burst under way at B', async () => (await inbox(b, a)).length >= 20 ? true : undefined)
    await b[how]()
    b = await startPeer({ dir: b.dir, key: b.key, port: b.port })
    const sent = await sending
    const got = await until('all 600 at B after its restart', async () => {
      const messages = await inbox(b, a)
      return messages.length >= all.length ? messages : undefined
    }, 15_000)
    expect(got.map(m => m.id)).toEqual(sent.map(m => m.id))
    expect(got.map(m => m.text)).toEqual(all)
    await until('all delivered at A', async () => (await inbox(a, b)).every(m => m.status === 'delivered') ? true : undefined, 15_000)
  })

  it('a sender stopped during a burst has finished its passes when stop returns: after its restart each message is sent once or still queued', async () => {
    // a slow disk: the stop finds a pass with work to finish
    const a = await startPeer({ writeDelay: 20 })
    const b = await startPeer()
    await connect(a, b)
    const all = texts(1000, 'stop')
    const sent = await Promise.all(all.map(async text => (await a.messenger.send({ to: b.node.peerId, text })).message))
    await until('the burst under way at B', async () => (await inbox(b, a)).length > 0 ? true : undefined)
    // the store closes right after the messenger stopped, as the daemon's shutdown does
    await a.stop()

    const reopened = await Store.open(a.dir)
    const db = new MessagingStore(reopened)
    const queued = new Set((await db.outboxFor(b.node.peerId)).flatMap(({ entry }) => entry.payload.kind === 'text' ? [entry.payload.messageId] : []))
    const atB = new Set((await inbox(b, a)).map(m => m.id))
    const records = await db.messagesById(sent.map(m => m.id))
    await reopened.close()
    for (const [i, message] of sent.entries()) {
      // delivered ones left the outbox; the others wait in it (none is lost, none given up)
      const record = records[i]
      expect(record?.status === 'delivered' ? atB.has(message.id) : queued.has(message.id)).toBe(true)
    }
    expect(complaints).toEqual([])

    // after a restart the rest goes, and B has each once, in the order accepted
    const again = await startPeer({ dir: a.dir, key: a.key, port: a.port })
    await connect(again, b)
    const got = await until('all 1000 at B', async () => {
      const messages = await inbox(b, again)
      return messages.length >= all.length ? messages : undefined
    }, 15_000)
    expect(new Set(got.map(m => m.id)).size).toBe(all.length)
    expect(got.map(m => m.seq)).toEqual(sent.map(m => m.seq).sort((x, y) => x - y))
  })

  it('sends what waits in backoff for a peer as soon as that peer writes to us, not when the timer says', async () => {
    const a = await startPeer()
    const b = await startPeer()
    await connect(a, b)
    await sendAll(a, b, ['before'])
    await until('the first message at B', async () => (await inbox(b, a)).length === 1 ? true : undefined)
    await b.stop()
    const { message } = await a.messenger.send({ to: b.node.peerId, text: 'while you were away' })
    // four failed tries: the next one is 8 s (± 25 %) after the last
    const outbox = new MessagingStore(a.store)
    const waiting = await until('four failed tries at A', async () => (await outbox.outboxFor(b.node.peerId)).find(e => e.entry.attempts >= 4), 30_000)

    const back = await startPeer({ dir: b.dir, key: b.key, port: b.port })
    await connect(back, a)
    await back.messenger.send({ to: a.node.peerId, text: 'I am back' })
    const arrived = await until('the waiting message at B', async () => (await inbox(back, a)).find(m => m.id === message.id), 15_000)
    // it came because B wrote to A: seconds before A's timer would have sent it
    expect(arrived.receivedAt).toBeLessThan(waiting.entry.nextAttemptAt - 2000)
    expect((await inbox(back, a)).filter(m => m.direction === 'in').map(m => m.text)).toEqual(['before', 'while you were away'])
  }, 60_000)

  it('stop waits for a pass in flight: a session set up while stopping is on disk when the store closes', async () => {
    let answered = 0
    let asked!: () => void
    const fetching = new Promise<void>(resolve => { asked = resolve })
    // a peer that is slow to serve its bundle, and answers even though the sender stopped meanwhile
    const slow = (prekeys: PrekeyService): BundleSource => ({
      fetchFromPeer: async (peer) => {
        asked()
        const bundle = await prekeys.fetchFromPeer(peer)
        await new Promise(resolve => setTimeout(resolve, 300))
        answered = Date.now()
        return bundle
      },
      fetchFromDht: async (peer, signal) => await prekeys.fetchFromDht(peer, signal)
    })
    const a = await startPeer({ bundles: slow })
    const b = await startPeer()
    await connect(a, b)
    await a.messenger.send({ to: b.node.peerId, text: 'first contact' })
    await fetching
    await a.messenger.stop()
    const stopped = Date.now()
    expect(answered).toBeGreaterThan(0)
    expect(stopped).toBeGreaterThanOrEqual(answered)
    await a.stop()
    expect(complaints).toEqual([])

    // the session made during the stop was written before the store closed: no second handshake
    const again = await startPeer({ dir: a.dir, key: a.key, port: a.port, bundles: () => ({
      fetchFromPeer: async () => { throw new Error('a second handshake') },
      fetchFromDht: async () => { throw new Error('a second handshake') }
    }) })
    await connect(again, b)
    await until('the first message at B', async () => (await inbox(b, again)).length === 1 ? true : undefined)
  })
})
