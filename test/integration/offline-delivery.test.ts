import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

/**
 * Offline delivery through mailbox peers, with whole daemons on real TCP:
 * B bootstraps the network, M1–M3 are bystanders that may become mailboxes,
 * A writes to C while C is off, then A goes off too.
 */
describe('offline delivery through mailboxes', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  async function network (): Promise<{ b: InProcessDaemon, a: InProcessDaemon, c: InProcessDaemon, others: InProcessDaemon[] }> {
    const b = await InProcessDaemon.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const started = await Promise.all(Array.from({ length: 5 }, async () => await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup)))
    const [a, c, ...others] = started as [InProcessDaemon, InProcessDaemon, ...InProcessDaemon[]]
    // C's prekey bundle must be held by others before C goes away (C republishes on its own
    // until three peers hold it; here the test does not wait for its timer)
    await waitFor(async () => await c.daemon.prekeys.publish() >= 3 ? true : undefined, { what: "C's bundle at 3 peers", timeoutMs: 30_000, intervalMs: 250 })
    return { b, a, c, others: [b, ...others] }
  }

  const statuses = async (node: InProcessDaemon, ids: string[]): Promise<MessageRecord[]> => await Promise.all(ids.map(async id => await node.messenger.message(id)))

  it('C gets 20 messages sent while it was off, once each and in order, after A went off too; A then sees them delivered', async () => {
    let { a, c, others } = await network()
    await c.stop()

    const texts = Array.from({ length: 20 }, (_, i) => `while you were away ${i} MARKER-7f3a`)
    const ids: string[] = []
    for (const text of texts) ids.push((await a.messenger.send({ to: c.peerId, text })).message.id)
    const stored = await waitFor(async () => {
      const messages = await statuses(a, ids)
      return messages.every(m => m.status === 'stored') ? messages : undefined
    }, { what: 'all 20 stored in mailboxes', timeoutMs: 60_000 })
    expect(Math.min(...stored.map(m => m.mailboxes ?? 0))).toBeGreaterThanOrEqual(1)
    const holding = await Promise.all(others.map(async o => (await o.api<{ holding: { envelopes: number } }>('GET', '/v1/mailbox')).body.holding.envelopes))
    expect(holding.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(20)

    await a.stop()
    c = await c.restart(cleanup)
    const received = await waitFor(async () => {
      const messages = await c.messenger.history(a.peerId, { limit: 100 })
      return messages.length >= 20 ? messages : undefined
    }, { what: 'C collects its mail', timeoutMs: 60_000 })
    expect(received.map(m => m.text)).toEqual(texts)
    expect(received.map(m => m.id)).toEqual(ids)
    expect(received.map(m => m.seq)).toEqual(texts.map((_, i) => i + 1))
    a = await a.restart(cleanup)
    await waitFor(async () => (await statuses(a, ids)).every(m => m.status === 'delivered') ? true : undefined, { what: 'A sees delivered', timeoutMs: 60_000 })
    // and still exactly once at C
    expect((await c.messenger.history(a.peerId, { limit: 100 })).length).toBe(20)

    // every mailbox emptied: C took its messages, A the delivery receipts C left for it while
    // A was away. A holder the first rounds missed (routing tables fill as nodes come up) is
    // emptied by a later round, as the periodic one would
    await waitFor(async () => {
      const left = await Promise.all(others.map(async o => (await o.api<{ holding: { envelopes: number } }>('GET', '/v1/mailbox')).body.holding.envelopes))
      if (left.every(n => n === 0)) return true
      await Promise.all([a, c].map(async node => await node.api('POST', '/v1/mailbox/collect')))
      return undefined
    }, { what: 'mailboxes emptied', intervalMs: 500 })
  })

  it('C still gets everything when one of its mailbox peers is gone; mailboxes keep neither the text nor the sender', async () => {
    const { a, c, others } = await network()
    await c.stop()
    const texts = Array.from({ length: 5 }, (_, i) => `MARKER-5c1e offline ${i}`)
    const ids: string[] = []
    for (const text of texts) ids.push((await a.messenger.send({ to: c.peerId, text })).message.id)
    await waitFor(async () => (await statuses(a, ids)).every(m => m.status === 'stored' && (m.mailboxes ?? 0) >= 2) ? true : undefined, { what: 'stored at ≥ 2 mailboxes', timeoutMs: 60_000 })

    // a holder's database: no plaintext, no sender
    const holders: InProcessDaemon[] = []
    for (const o of others) if ((await o.api<{ holding: { envelopes: number } }>('GET', '/v1/mailbox')).body.holding.envelopes > 0) holders.push(o)
    expect(holders.length).toBeGreaterThanOrEqual(2)
    const gone = holders[0]!
    await gone.stop()
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

    const back = await c.restart(cleanup)
    const received = await waitFor(async () => {
      const messages = await back.messenger.history(a.peerId, { limit: 100 })
      return messages.length >= texts.length ? messages : undefined
    }, { what: 'C collects from the remaining mailboxes', timeoutMs: 60_000 })
    expect(received.map(m => m.text)).toEqual(texts)
  })
})
