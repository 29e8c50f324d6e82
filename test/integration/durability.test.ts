import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, waitFor } from '../helpers/daemon.js'

/**
 * Delivery survives crashes: real `octet daemon` processes (A and C,
 * introduced by the bootstrap node B) killed with SIGKILL or stopped with
 * SIGTERM and started again on the same data directory. A message answered
 * 202 is on disk; it reaches the recipient exactly once whatever dies when.
 */
describe('delivery across crashes and restarts (daemon processes)', () => {
  const cleanup = new Cleanup()
  let a: DaemonProcess
  let b: DaemonProcess
  let c: DaemonProcess

  beforeAll(async () => {
    b = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    ;[a, c] = await Promise.all([
      DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup),
      DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup)
    ])
    // a first exchange, so the tests start from an established session
    const hello = await send('hello before the crashes')
    await delivered(a, hello.id)
  })
  afterAll(async () => { await cleanup.run() })

  /** Starts the daemon again on its data directory and its TCP port (peers keep its address). */
  const restart = async (daemon: DaemonProcess): Promise<DaemonProcess> => {
    const port = multiaddr(daemon.tcpAddress).getComponents().find(x => x.name === 'tcp')?.value
    const again = await DaemonProcess.start({ ...daemon.options, listen: [`/ip4/127.0.0.1/tcp/${port}`] }, cleanup)
    expect(again.info.peerId).toBe(daemon.info.peerId)
    return again
  }
  const send = async (text: string): Promise<MessageRecord> => {
    const { status, body } = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.info.peerId, text })
    expect(status).toBe(202)
    return body.message
  }
  const message = async (node: DaemonProcess, id: string): Promise<MessageRecord> =>
    (await node.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message
  const delivered = async (node: DaemonProcess, id: string, timeoutMs = 30_000): Promise<MessageRecord> => await waitFor(async () => {
    const m = await message(node, id)
    return m.status === 'delivered' ? m : undefined
  }, { timeoutMs, what: `message ${id} delivered` })
  const history = async (node: DaemonProcess, peer: DaemonProcess): Promise<MessageRecord[]> => {
    const { status, body } = await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer.info.peerId}/messages?limit=1000`)
    expect(status).toBe(200)
    return body.messages
  }
  const copiesAtC = async (id: string): Promise<number> => (await history(c, a)).filter(m => m.id === id).length
  const counters = async (node: DaemonProcess): Promise<Record<string, number>> =>
    (await node.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters

  it('the sender is SIGKILLed right after 202 while the recipient is down: delivered once after both restart', async () => {
    // with C down nothing can go out: the kill surely lands before delivery
    await c.stop()
    const sent = await send('accepted, then the sender crashed')
    await a.kill()
    c = await restart(c)
    // the kill landed before delivery: what C gets can only come from A's disk after its restart
    expect(await copiesAtC(sent.id)).toBe(0)
    a = await restart(a)

    const done = await delivered(a, sent.id)
    expect(done.seq).toBe(sent.seq)
    expect(await copiesAtC(sent.id)).toBe(1)
    const atC = (await history(c, a)).find(m => m.id === sent.id)
    expect(atC).toMatchObject({ direction: 'in', text: 'accepted, then the sender crashed', seq: sent.seq })
  })

  it('the sender is SIGKILLed right after 202 with the recipient up: C has it exactly once after A restarts', async () => {
    // whether it got out before the kill or only after the restart, it arrives once
    const sent = await send('accepted, then the sender crashed at once')
    await a.kill()
    a = await restart(a)
    await delivered(a, sent.id)
    expect(await copiesAtC(sent.id)).toBe(1)
    const ids = (await history(c, a)).map(m => m.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('the recipient is SIGKILLed while 200 messages are in flight: after its restart it has all, once each, in order', async () => {
    const texts = Array.from({ length: 200 }, (_, i) => `burst ${String(i).padStart(3, '0')}`)
    const ids: string[] = []
    const burstAt = async (node: DaemonProcess): Promise<MessageRecord[]> => (await history(node, a)).filter(m => m.text.startsWith('burst '))

    // A accepts the messages one after another; the second half only once C has been killed,
    // so the kill lands partway through whatever the timing
    let markKilled = (): void => {}
    const killed = new Promise<void>(resolve => { markKilled = resolve })
    const posting = (async () => {
      for (const [i, text] of texts.entries()) {
        if (i === texts.length / 2) await killed
        ids.push((await send(text)).id)
      }
    })()
    posting.catch(() => {})

    await waitFor(async () => {
      const n = (await burstAt(c)).length
      return n >= 20 ? n : undefined
    }, { intervalMs: 20, what: '20 messages at C' })
    await c.kill()
    markKilled()
    // what C acknowledged before it died: A marks those delivered and never sends them again
    const ackedBeforeKill = await waitFor(async () => {
      const acked = (await history(a, c)).filter(m => m.text.startsWith('burst ') && m.status === 'delivered').map(m => m.id)
      return acked.length > 0 ? acked : undefined
    }, { intervalMs: 20, what: 'A to hear of deliveries before the kill' })
    c = await restart(c)
    // each of them was on C's disk before it was acknowledged: there at once after the restart
    const survived = new Set((await burstAt(c)).map(m => m.id))
    expect(ackedBeforeKill.filter(id => !survived.has(id))).toEqual([])
    await posting
    expect(ids).toHaveLength(texts.length)

    const burst = await waitFor(async () => {
      const messages = await burstAt(c)
      return messages.length >= texts.length ? messages : undefined
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'all 200 at C' })
    expect(burst.map(m => m.id)).toEqual(ids)
    expect(burst.map(m => m.text)).toEqual(texts)
    const seqs = burst.map(m => m.seq)
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))
    const conversation = (await c.api<{ conversations: Array<{ peerId: string, gaps: number[] }> }>('GET', '/v1/conversations')).body.conversations
    expect(conversation.find(x => x.peerId === a.info.peerId)?.gaps).toEqual([])

    await waitFor(async () => {
      const outgoing = (await history(a, c)).filter(m => m.text.startsWith('burst '))
      return outgoing.length === texts.length && outgoing.every(m => m.status === 'delivered') ? true : undefined
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'all 200 delivered at A' })
  })

  it('both restart with SIGTERM: sessions, history and statuses survive; no new prekey handshake', async () => {
    const beforeA = await history(a, c)
    const beforeC = await history(c, a)
    expect(beforeA.length).toBeGreaterThan(200)
    expect(beforeA.filter(m => m.direction === 'out').every(m => m.status === 'delivered')).toBe(true)

    expect(await Promise.all([a.stop(), c.stop()])).toEqual([0, 0])
    c = await restart(c)
    a = await restart(a)
    // counters are per process: a new session would count here
    expect((await counters(a))['dm.sessions.started'] ?? 0).toBe(0)
    expect(await history(a, c)).toEqual(beforeA)
    expect(await history(c, a)).toEqual(beforeC)

    const sent = await send('after a clean restart')
    await delivered(a, sent.id)
    expect((await counters(a))['dm.sessions.started'] ?? 0).toBe(0)
    const afterC = await history(c, a)
    expect(afterC.slice(0, beforeC.length)).toEqual(beforeC)
    expect(afterC.slice(beforeC.length).map(m => [m.id, m.text])).toEqual([[sent.id, 'after a clean restart']])

    // C's side of the session survived too: its answer needs no handshake either
    const { body } = await c.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: a.info.peerId, text: 'got it' })
    await delivered(c, body.message.id)
    expect((await counters(c))['dm.sessions.started'] ?? 0).toBe(0)
    const afterA = await history(a, c)
    expect(afterA.slice(0, beforeA.length)).toEqual(beforeA)
    expect(afterA.slice(beforeA.length).map(m => m.text)).toEqual(['after a clean restart', 'got it'])
  })
})
