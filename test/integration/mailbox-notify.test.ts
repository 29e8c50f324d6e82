import { peerIdFromString } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import type { DaemonOverrides } from '../../src/daemon.js'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import type { MessageRecord } from '../../src/messaging/index.js'
import { MINUTE } from '../../src/units.js'
import { Cleanup, until, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

// In-process (test/helpers/inproc.ts), not `octet daemon` processes: B is made unreachable by
// unhandling its DM protocol inside its libp2p node, its collect interval is an override, and
// the test reads which mailboxes A would store at and which B watches, none of which a process
// offers.

/**
 * Mailboxes that notify: B is online but A cannot reach it directly (B serves
 * no /octet/dm stream, as a peer behind a NAT that A cannot dial), so A's
 * message goes to B's mailbox peers; they tell B at once, and B collects
 * within a second or two, not at its next poll. B's periodic collect is set
 * to ten minutes, so only a notify can bring the message in time.
 */
describe('mailbox notify: an online recipient collects as soon as a mailbox stores for it', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  /** The test's bound on stored → in B's history: the requirement is "within a second" */
  const NOTIFY_BOUND_MS = 2_000
  const POLL_MS = 25

  async function network (bOverrides: DaemonOverrides): Promise<{ a: InProcessDaemon, b: InProcessDaemon, all: InProcessDaemon[] }> {
    const boot = await InProcessDaemon.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const started = await Promise.all(Array.from({ length: 5 }, async (_, i) => await InProcessDaemon.start({
      dataDir: await cleanup.tempDir(),
      bootstrap: [boot.tcpAddress],
      ...(i === 1 ? { overrides: bOverrides } : {})
    }, cleanup)))
    const [a, b] = started as [InProcessDaemon, InProcessDaemon]
    // a session, directly: A holds B's identity key, which mailbox envelopes are sealed to
    const hello = (await a.messenger.send({ to: b.peerId, text: 'hello' })).message.id
    await waitFor(async () => (await a.messenger.message(hello)).status === 'delivered' ? true : undefined, { what: 'hello delivered directly' })
    return { a, b, all: [boot, ...started] }
  }

  /**
   * B stops serving direct messages, and drops its connection to A (which
   * carries A's open DM stream): A's next attempt fails, and A deposits at
   * B's mailbox peers.
   */
  async function unreachable (b: InProcessDaemon, a: InProcessDaemon): Promise<void> {
    await b.daemon.node.libp2p.unhandle(DM_PROTOCOL)
    await b.daemon.node.libp2p.hangUp(peerIdFromString(a.peerId))
  }

  /** B watches every peer A will store at (A's view of B's closest peers). */
  async function watched (a: InProcessDaemon, b: InProcessDaemon): Promise<string[]> {
    let holders: string[] = []
    await until('B to watch the mailboxes A stores at', async () => {
      holders = await a.daemon.mailbox.closestPeers(b.peerId, 3).catch((): string[] => [])
      const watching = new Set(b.daemon.mailbox.watching())
      return holders.length === 3 && holders.every(h => watching.has(h))
    }, 30_000)
    return holders
  }

  /** A sends; resolves with when A saw the message stored at mailboxes, and when it was in B's history. */
  async function sendThroughMailboxes (a: InProcessDaemon, b: InProcessDaemon, text: string, deadlineMs: number): Promise<{ message: MessageRecord, storedAt: number, receivedAt: number | undefined }> {
    const id = (await a.messenger.send({ to: b.peerId, text })).message.id
    let receivedAt: number | undefined
    const inHistory = async (): Promise<boolean> => (await b.messenger.history(a.peerId, { limit: 100 })).some(m => m.id === id)
    const message = await waitFor(async () => {
      if (receivedAt == null && await inHistory()) receivedAt = Date.now()
      const m = await a.messenger.message(id)
      return m.status === 'stored' || m.status === 'delivered' ? m : undefined
    }, { what: 'the message stored at mailboxes', timeoutMs: 30_000, intervalMs: POLL_MS })
    const storedAt = Date.now()
    const deadline = storedAt + deadlineMs
    while (receivedAt == null && Date.now() < deadline) {
      if (await inHistory()) receivedAt = Date.now()
      else await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
    return { message, storedAt, receivedAt }
  }

  it('B, back online and unreachable for A, gets A\'s message within 2 s of it being stored', async () => {
    const net = await network({ collect: { interval: 10 * MINUTE } })
    const { a } = net
    let { b } = net
    // B goes away; A leaves a first message at B's mailboxes
    await b.stop()
    const first = (await a.messenger.send({ to: b.peerId, text: 'while you were away' })).message.id
    await waitFor(async () => (await a.messenger.message(first)).status === 'stored' ? true : undefined, { what: 'the first message stored', timeoutMs: 30_000 })

    // B comes back (unreachable for A): its first collect takes the first message and registers its watches
    b = await b.restart(cleanup)
    await unreachable(b, a)
    await waitFor(async () => (await b.messenger.history(a.peerId, { limit: 100 })).some(m => m.id === first) ? true : undefined, { what: 'B collects the first message on start', timeoutMs: 30_000 })
    const holders = await watched(a, b)

    const { message, storedAt, receivedAt } = await sendThroughMailboxes(a, b, 'while you are unreachable', NOTIFY_BOUND_MS)
    // A could not deliver it directly: it went through the mailboxes
    expect(message.status).toBe('stored')
    expect(receivedAt, 'B had the message within 2 s of it being stored (its poll is 10 minutes away)').toBeDefined()
    expect(receivedAt! - storedAt).toBeLessThanOrEqual(NOTIFY_BOUND_MS)
    if (process.env.OCTET_TEST_REPORT != null) console.info(`stored → in B's history: ${receivedAt! - storedAt} ms`)
    expect(b.messenger.counters.get('mailbox.notified')).toBeGreaterThanOrEqual(1)
    // the mailboxes A stored at told B
    const told = net.all.filter(n => holders.includes(n.peerId)).reduce((sum, n) => sum + n.daemon.mailbox.counters.notifiesSent, 0)
    expect(told).toBeGreaterThanOrEqual(1)
    // and A learns it was delivered (B's receipt goes to A directly)
    await waitFor(async () => (await a.messenger.message(message.id)).status === 'delivered' ? true : undefined, { what: 'A sees delivered', timeoutMs: 30_000 })
    expect((await b.messenger.history(a.peerId, { limit: 100 })).map(m => m.text)).toEqual(['hello', 'while you were away', 'while you are unreachable'])
  })

  it('without watches the same message waits for the poll (so the test above is about notify)', async () => {
    const { a, b } = await network({ collect: { interval: 10 * MINUTE, notify: false } })
    await unreachable(b, a)
    // B's first collect (1 s after its start) must be over, or it could take the message: the next is 10 minutes away
    await until('B\'s first collect to be over', () => 'mailbox.collected' in b.messenger.counters.snapshot(), 30_000)
    // no watches: wait for the routing tables rather than for B's watches
    await until('A to find B\'s mailbox peers', async () => (await a.daemon.mailbox.closestPeers(b.peerId, 3).catch((): string[] => [])).length === 3, 30_000)
    expect(b.daemon.mailbox.watching()).toEqual([])
    const { message, receivedAt } = await sendThroughMailboxes(a, b, 'nobody tells B', NOTIFY_BOUND_MS * 2)
    expect(message.status).toBe('stored')
    expect(receivedAt).toBeUndefined()
    // it is there, for the next collect
    expect((await b.messenger.collectMailboxes()).accepted).toBe(1)
  })
})
