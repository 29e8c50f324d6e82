import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { MessagingStore } from '../../src/messaging/records.js'
import { Store } from '../../src/store/database.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'
import { fillDisk, freeDisk, mountTmpfs, skipUnlessTmpfs } from '../helpers/tmpfs.js'

interface Health { status: string, reasons?: Array<{ code: string, message: string }> }

/**
 * A full disk, for real: a daemon's data directory on an 8 MiB tmpfs, filled
 * with a file until the kernel says ENOSPC, and freed again. Writes answer
 * 507 DISK_FULL, health says degraded, reads go on, and writing resumes by
 * itself once the file is gone; a receiver that cannot store has its
 * messages retried, never lost.
 */
describe.skipIf(skipUnlessTmpfs() != null)('a full disk (data directory on a small tmpfs)', () => {
  const cleanup = new Cleanup()
  afterEach(async () => { await cleanup.run() })

  const pair = async (full: 'sender' | 'receiver'): Promise<{ p: DaemonProcess, d: DaemonProcess, disk: string }> => {
    const disk = await mountTmpfs(cleanup)
    const onDisk = join(disk, 'data')
    const p = await DaemonProcess.start({ dataDir: full === 'sender' ? onDisk : await cleanup.tempDir() }, cleanup)
    const d = await DaemonProcess.start({ dataDir: full === 'receiver' ? onDisk : await cleanup.tempDir(), bootstrap: [p.tcpAddress] }, cleanup)
    // an established session, as in a conversation that has been going on
    const hello = await send(p, d, 'hello')
    await delivered(p, hello.id)
    return { p, d, disk }
  }
  const send = async (from: DaemonProcess, to: DaemonProcess, text: string): Promise<MessageRecord> => {
    const { status, body } = await from.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: to.info.peerId, text })
    expect(status).toBe(202)
    return body.message
  }
  const message = async (node: DaemonProcess, id: string): Promise<MessageRecord> =>
    (await node.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message
  const delivered = async (node: DaemonProcess, id: string): Promise<MessageRecord> => await waitFor(async () => {
    const m = await message(node, id)
    return m.status === 'delivered' ? m : undefined
  }, { timeoutMs: 30_000, what: `message ${id} delivered` })
  const health = async (node: DaemonProcess): Promise<Health> => (await node.api<Health>('GET', '/v1/health')).body
  const waitHealth = async (node: DaemonProcess, status: string, timeoutMs = 30_000): Promise<Health> =>
    await waitFor(async () => { const h = await health(node); return h.status === status ? h : undefined }, { timeoutMs, what: `health ${status}` })
  const counters = async (node: DaemonProcess): Promise<Record<string, number>> =>
    (await node.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters
  /** The whole conversation, oldest first, page by page from its first message. */
  const history = async (node: DaemonProcess, peer: DaemonProcess, first: MessageRecord): Promise<MessageRecord[]> => {
    const all = [first]
    while (true) {
      const last = all[all.length - 1] as MessageRecord
      const { status, body } = await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer.info.peerId}/messages?limit=1000&after=${last.id}`)
      expect(status).toBe(200)
      if (body.messages.length === 0) return all
      all.push(...body.messages)
    }
  }
  const restart = async (daemon: DaemonProcess): Promise<DaemonProcess> => {
    await daemon.stop()
    const port = multiaddr(daemon.tcpAddress).getComponents().find(x => x.name === 'tcp')?.value
    return await DaemonProcess.start({ ...daemon.options, listen: [`/ip4/127.0.0.1/tcp/${port}`] }, cleanup)
  }

  it('at the sender: writes answer 507 DISK_FULL, health and status say degraded, reads go on, writing resumes by itself', async () => {
    const { p, d, disk } = await pair('sender')
    const before = await send(p, d, 'before the disk filled')
    await delivered(p, before.id)

    const filler = await fillDisk(disk)
    // the last page of a file may still take a few bytes: write until the disk says no
    const accepted: MessageRecord[] = []
    let refused: { status: number, body: { error: { code: string, message: string } } } | undefined
    for (let i = 0; i < 500 && refused == null; i++) {
      const res = await p.api<{ message: MessageRecord, error: { code: string, message: string } }>('POST', '/v1/messages', { to: d.info.peerId, text: `filling ${i}` })
      if (res.status === 202) accepted.push(res.body.message)
      else refused = res
    }
    expect(refused?.status).toBe(507)
    if (refused == null) return
    expect(refused.body.error.code).toBe('DISK_FULL')
    expect(refused.body.error.message).toMatch(/free space/i)
    const contact = await p.api<{ error: { code: string } }>('POST', '/v1/contacts', { peerId: d.info.peerId, name: 'dee' })
    expect(contact.status).toBe(507)
    expect(contact.body.error.code).toBe('DISK_FULL')

    const degraded = await health(p)
    expect(degraded.status).toBe('degraded')
    expect(degraded.reasons?.[0]?.code).toBe('DISK_FULL')
    const status = await runCli(['status', '--data-dir', p.options.dataDir])
    expect(status.stdout).toMatch(/^health\s+degraded: DISK_FULL/m)
    // reads go on, and show nothing of the refused writes
    const read = await p.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${d.info.peerId}/messages`)
    expect(read.status).toBe(200)
    expect(read.body.messages.map(m => m.text)).toEqual(['hello', 'before the disk filled', ...accepted.map(m => m.text)])
    expect((await counters(p))['store.disk-full']).toBeGreaterThanOrEqual(1)

    await freeDisk(filler)
    await waitHealth(p, 'ok')
    const after = await send(p, d, 'after space came back')
    // accepted before the disk said no: delivered too, before the later one
    for (const m of [...accepted, after]) await delivered(p, m.id)
    const named = await p.api<{ contact: { name?: string } }>('POST', '/v1/contacts', { peerId: d.info.peerId, name: 'dee' })
    expect(named.status).toBe(200)
    expect((await counters(p))['store.resumed']).toBeGreaterThanOrEqual(1)

    // what the daemon showed is what is on disk: the same after a restart
    const again = await restart(p)
    const texts = (await again.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${d.info.peerId}/messages`)).body.messages.map(m => [m.text, m.status])
    expect(texts).toEqual([['hello', 'delivered'], ['before the disk filled', 'delivered'], ...accepted.map(m => [m.text, 'delivered']), ['after space came back', 'delivered']])
  })

  it('at the receiver: 3,000 messages sent while its disk fills all arrive, once each and in order, once space is freed', async () => {
    const { p, d, disk } = await pair('receiver')
    const first = (await history(d, p, (await d.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${p.info.peerId}/messages`)).body.messages[0] as MessageRecord))
    expect(first).toHaveLength(1)
    // room for a part of them: the disk fills while they arrive
    const filler = await fillDisk(disk, 512 * 1024)

    const total = 3000
    const sent: MessageRecord[] = []
    for (let i = 0; i < total; i += 50) {
      sent.push(...await Promise.all(Array.from({ length: Math.min(50, total - i) }, async (_, j) => await send(p, d, `message ${i + j + 1}`))))
    }
    await waitHealth(d, 'degraded', 60_000)
    await waitFor(async () => ((await counters(d))['dm.deferred.DISK_FULL'] ?? 0) > 0 ? true : undefined, { what: 'envelopes deferred' })
    expect((await counters(p))['dm.refused'] ?? 0).toBe(0)

    await freeDisk(filler)
    await waitHealth(d, 'ok')
    // retries of deferred batches overlap: the last message may be delivered before earlier ones
    await waitFor(async () => (await history(d, p, first[0] as MessageRecord)).length === total + 1 ? true : undefined,
      { timeoutMs: 120_000, intervalMs: 500, what: `all ${total} messages at the receiver` })
    await waitFor(async () => {
      const statuses = await Promise.all(sent.map(async m => (await message(p, m.id)).status))
      return statuses.every(s => s === 'delivered') ? true : undefined
    }, { timeoutMs: 30_000, intervalMs: 500, what: `all ${total} messages delivered at the sender` })

    const check = async (node: DaemonProcess): Promise<void> => {
      const received = await history(node, p, first[0] as MessageRecord)
      expect(received.map(m => m.text)).toEqual(['hello', ...sent.map(m => m.text)])
      expect(new Set(received.map(m => m.id)).size).toBe(total + 1)
      expect(received.slice(1).map(m => m.seq)).toEqual(sent.map(m => m.seq))
    }
    await check(d)
    const failed = await Promise.all(sent.map(async m => (await message(p, m.id)).status))
    expect(failed.filter(s => s !== 'delivered')).toEqual([])
    expect((await counters(p))['dm.refused'] ?? 0).toBe(0)
    // and it is all on disk
    await check(await restart(d))
  }, 300_000)

  it('messages that ended failed with DECRYPT_FAILED before the fix are sent again by contacts reset-session', async () => {
    const p = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    let d = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [p.tcpAddress] }, cleanup)
    const hello = await send(p, d, 'hello')
    await delivered(p, hello.id)
    // what the old receiver left behind: messages it refused for good, the sender's outbox empty of them
    await d.stop()
    const lost = [await send(p, d, 'lost 1'), await send(p, d, 'lost 2'), await send(p, d, 'lost 3')]
    await p.stop()
    const store = await Store.open(p.options.dataDir)
    const db = new MessagingStore(store)
    const outbox = await db.outboxFor(d.info.peerId)
    await store.batch([
      ...outbox.map(({ key }) => db.delOp(db.outbox, key)),
      ...lost.map(m => db.putStatus({ ...m, status: 'failed', reason: 'refused by the recipient (DECRYPT_FAILED)', updatedAt: Date.now() }))
    ])
    await store.close()
    const port = multiaddr(p.tcpAddress).getComponents().find(x => x.name === 'tcp')?.value
    const p2 = await DaemonProcess.start({ ...p.options, listen: [`/ip4/127.0.0.1/tcp/${port}`] }, cleanup)
    d = await DaemonProcess.start({ ...d.options, bootstrap: [p2.tcpAddress] }, cleanup)
    expect((await message(p2, lost[0]?.id ?? '')).status).toBe('failed')

    const reset = await runCli(['contacts', 'reset-session', d.info.peerId, '--json', '--data-dir', p2.options.dataDir])
    expect(reset.code, reset.stderr).toBe(0)
    expect(JSON.parse(reset.stdout)).toEqual({ peerId: d.info.peerId, requeued: 3 })
    for (const m of lost) await delivered(p2, m.id)
    const received = await history(d, p2, (await d.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${p2.info.peerId}/messages`)).body.messages[0] as MessageRecord)
    expect(received.map(m => m.text)).toEqual(['hello', 'lost 1', 'lost 2', 'lost 3'])
    // nothing left to re-send: a second reset queues nothing
    expect((await p2.api<{ requeued: number }>('POST', `/v1/contacts/${d.info.peerId}/reset-session`)).body.requeued).toBe(0)
  }, 120_000)
})


