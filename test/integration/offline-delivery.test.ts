import { join } from 'node:path'
import { Level } from 'level'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, until, waitFor } from '../helpers/daemon.js'

/**
 * Offline delivery through mailbox peers, with `octet daemon` processes on real TCP, stopped
 * and started again as a user would: B bootstraps the network, M1 and M2 are bystanders; with
 * B they are the mailbox candidates (k = 3). A writes to C while C is off, then A goes off too.
 * The two tests share the network (the second starts where the first left it: every mailbox
 * empty, all five running): five daemon processes instead of twelve.
 */
describe('offline delivery through mailboxes', () => {
  const cleanup = new Cleanup()
  let a: DaemonProcess
  let c: DaemonProcess
  /** B and the bystanders: the mailbox candidates */
  let others: DaemonProcess[]

  beforeAll(async () => {
    const b = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const started = await Promise.all(Array.from({ length: 4 }, async () => await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup)))
    ;[a, c] = started as [DaemonProcess, DaemonProcess]
    others = [b, ...started.slice(2)]
    // C's bundle must be held by three before it goes away, or A could not write to it while it
    // is off; C republishes on its own (1 s, 2 s, 4 s …) until three peers hold it
    await until("C's bundle at 3 peers", () => logLines(c).some(l => l.msg === 'our prekey bundle is published in the DHT' && Number(l.stored) >= 3), 30_000)
  })
  afterAll(async () => { await cleanup.run() })

  function logLines (node: DaemonProcess): Array<Record<string, unknown>> {
    // whole lines only: the last one may still be on its way
    return node.output.join('').split('\n').slice(0, -1).filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
  }
  const send = async (from: DaemonProcess, to: DaemonProcess, text: string): Promise<string> => {
    const { status, body } = await from.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: to.peerId, text })
    expect(status).toBe(202)
    return body.message.id
  }
  const statuses = async (node: DaemonProcess, ids: string[]): Promise<MessageRecord[]> =>
    await Promise.all(ids.map(async id => (await node.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message))
  const history = async (node: DaemonProcess, peer: DaemonProcess): Promise<MessageRecord[]> =>
    (await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer.peerId}/messages?limit=100`)).body.messages
  const holding = async (node: DaemonProcess): Promise<number> =>
    (await node.api<{ holding: { envelopes: number } }>('GET', '/v1/mailbox')).body.holding.envelopes

  it('C gets 20 messages sent while it was off, once each and in order, after A went off too; A then sees them delivered', async () => {
    expect(await c.stop()).toBe(0)

    const texts = Array.from({ length: 20 }, (_, i) => `while you were away ${i} MARKER-7f3a`)
    const ids: string[] = []
    for (const text of texts) ids.push(await send(a, c, text))
    const stored = await waitFor(async () => {
      const messages = await statuses(a, ids)
      return messages.every(m => m.status === 'stored') ? messages : undefined
    }, { what: 'all 20 stored in mailboxes', timeoutMs: 60_000 })
    expect(Math.min(...stored.map(m => m.mailboxes ?? 0))).toBeGreaterThanOrEqual(1)
    const held = await Promise.all(others.map(holding))
    expect(held.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(20)

    expect(await a.stop()).toBe(0)
    c = await c.restart(cleanup)
    const received = await waitFor(async () => {
      const messages = await history(c, a)
      return messages.length >= 20 ? messages : undefined
    }, { what: 'C collects its mail', timeoutMs: 60_000 })
    expect(received.map(m => m.text)).toEqual(texts)
    expect(received.map(m => m.id)).toEqual(ids)
    expect(received.map(m => m.seq)).toEqual(texts.map((_, i) => i + 1))
    a = await a.restart(cleanup)
    await waitFor(async () => (await statuses(a, ids)).every(m => m.status === 'delivered') ? true : undefined, { what: 'A sees delivered', timeoutMs: 60_000 })
    // and still exactly once at C
    expect(await history(c, a)).toHaveLength(20)

    // every mailbox emptied: C took its messages, A the delivery receipts C left for it while
    // A was away. A holder the first rounds missed (routing tables fill as nodes come up) is
    // emptied by a later round, as the periodic one would
    await waitFor(async () => {
      const left = await Promise.all(others.map(holding))
      if (left.every(n => n === 0)) return true
      await Promise.all([a, c].map(async node => await node.api('POST', '/v1/mailbox/collect')))
      return undefined
    }, { what: 'mailboxes emptied', intervalMs: 500 })
  })

  it('C still gets everything when one of its mailbox peers is gone; mailboxes keep neither the text nor the sender', async () => {
    expect(await c.stop()).toBe(0)
    const texts = Array.from({ length: 5 }, (_, i) => `MARKER-5c1e offline ${i}`)
    const ids: string[] = []
    for (const text of texts) ids.push(await send(a, c, text))
    await waitFor(async () => (await statuses(a, ids)).every(m => m.status === 'stored' && (m.mailboxes ?? 0) >= 2) ? true : undefined, { what: 'stored at ≥ 2 mailboxes', timeoutMs: 60_000 })

    // a holder's database: no plaintext, no sender
    const holders: DaemonProcess[] = []
    for (const o of others) if (await holding(o) > 0) holders.push(o)
    expect(holders.length).toBeGreaterThanOrEqual(2)
    const gone = holders[0]!
    expect(await gone.stop()).toBe(0)
    const db = new Level<Uint8Array, Uint8Array>(join(gone.options.dataDir, 'db', 'state'), { keyEncoding: 'view', valueEncoding: 'view' })
    let entries = 0
    for await (const [key, value] of db.iterator()) {
      entries++
      for (const bytes of [key, value]) {
        const text = Buffer.from(bytes)
        expect(text.indexOf('MARKER-5c1e')).toBe(-1)
        expect(text.indexOf(a.peerId)).toBe(-1)
      }
    }
    await db.close()
    expect(entries).toBeGreaterThan(0)

    // from A: the holder that went may have been B, the bootstrap peer
    c = await c.restart(cleanup, { bootstrap: [a.tcpAddress] })
    const received = await waitFor(async () => {
      const messages = (await history(c, a)).filter(m => m.text?.startsWith('MARKER-5c1e') === true)
      return messages.length >= texts.length ? messages : undefined
    }, { what: 'C collects from the remaining mailboxes', timeoutMs: 60_000 })
    expect(received.map(m => m.text)).toEqual(texts)
  })
})
