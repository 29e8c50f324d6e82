import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { MessagingStore, type MessageRecord, type OutboxEntry } from '../../../src/messaging/records.js'
import { Store } from '../../../src/store/database.js'

const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(async dir => { await rm(dir, { recursive: true, force: true }) })) })

async function openStore (dir?: string): Promise<{ dir: string, store: Store }> {
  const where = dir ?? await mkdtemp(join(tmpdir(), 'octet-outbox-'))
  if (dir == null) dirs.push(where)
  return { dir: where, store: await Store.open(where) }
}

function entry (peer: string, id: string, createdAt = 1): OutboxEntry {
  return { id, peerId: peer, payload: { kind: 'receipt', receipt: 'delivered', ids: [] }, attempts: 0, nextAttemptAt: 0, createdAt }
}

/** What level itself holds for a peer, in key order: the truth the mirror must match. */
async function onDisk (db: MessagingStore, peer: string): Promise<Array<{ key: string, entry: OutboxEntry }>> {
  const rows: Array<{ key: string, entry: OutboxEntry }> = []
  for await (const [key, value] of db.outbox.iterator({ gt: `${peer}!`, lt: `${peer}!\xff` })) rows.push({ key, entry: value })
  return rows
}

describe('the outbox mirror', () => {
  it('follows committed batches, per peer and in key order, and is loaded again on reopen', async () => {
    const { dir, store } = await openStore()
    const db = new MessagingStore(store)
    const k1 = db.newOutboxKey('A', 200)
    const k2 = db.newOutboxKey('A', 300)
    // a clock that stepped back: inserted last, sorts first
    const k0 = db.newOutboxKey('A', 100)
    const kb = db.newOutboxKey('B', 100)
    await db.batch([db.putOp(db.outbox, k1, entry('A', '1')), db.putOp(db.outbox, k2, entry('A', '2'))])
    await db.batch([db.putOp(db.outbox, k0, entry('A', '0')), db.putOp(db.outbox, kb, entry('B', 'b'))])
    expect((await db.outboxFor('A')).map(e => e.entry.id)).toEqual(['0', '1', '2'])
    expect(await db.outboxFor('A')).toEqual(await onDisk(db, 'A'))
    expect((await db.peersWithOutbox()).sort()).toEqual(['A', 'B'])

    await db.batch([db.delOp(db.outbox, k1), db.delOp(db.outbox, kb), db.putOp(db.outbox, k2, { ...entry('A', '2'), attempts: 3 })])
    expect((await db.outboxFor('A')).map(e => [e.entry.id, e.entry.attempts])).toEqual([['0', 0], ['2', 3]])
    expect(await db.outboxFor('B')).toEqual([])
    expect(await db.peersWithOutbox()).toEqual(['A'])
    await store.close()

    const reopened = await openStore(dir)
    const again = new MessagingStore(reopened.store)
    expect((await again.outboxFor('A')).map(e => [e.entry.id, e.entry.attempts])).toEqual([['0', 0], ['2', 3]])
    await reopened.store.close()
  })

  it('sees a batch committed while it was still loading', async () => {
    const { store } = await openStore()
    const seed = new MessagingStore(store)
    const keep = seed.newOutboxKey('A', 1)
    const gone = seed.newOutboxKey('A', 2)
    await seed.batch([seed.putOp(seed.outbox, keep, entry('A', 'keep')), seed.putOp(seed.outbox, gone, entry('A', 'gone'))])
    // a new mirror starts loading; before it has read anything, a batch deletes one entry
    const db = new MessagingStore(store)
    await db.batch([db.delOp(db.outbox, gone)])
    expect((await db.outboxFor('A')).map(e => e.entry.id)).toEqual(['keep'])
    await store.close()
  })

  it('matches the disk after any sequence of puts and deletes', async () => {
    const { store } = await openStore()
    const peers = ['A', 'B', 'C']
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ del: fc.boolean(), peer: fc.constantFrom(...peers), at: fc.integer({ min: 1, max: 50 }), pick: fc.nat() }), { maxLength: 40 }),
      async steps => {
        const db = new MessagingStore(store)
        await db.batch((await Promise.all(peers.map(async p => await db.outboxFor(p)))).flat().map(e => db.delOp(db.outbox, e.key)))
        const keys: string[] = []
        for (const step of steps) {
          if (step.del && keys.length > 0) {
            const key = keys.splice(step.pick % keys.length, 1)[0] as string
            await db.batch([db.delOp(db.outbox, key)])
          } else {
            const key = db.newOutboxKey(step.peer, step.at)
            keys.push(key)
            await db.batch([db.putOp(db.outbox, key, entry(step.peer, key))])
          }
        }
        for (const peer of peers) expect(await db.outboxFor(peer)).toEqual(await onDisk(db, peer))
      }
    ), { numRuns: 30 })
    await store.close()
  })
})

describe('messages and their statuses', () => {
  it('are read back as last written, from memory or from disk; a status change writes only the status', async () => {
    const { store } = await openStore()
    const db = new MessagingStore(store)
    const message = (id: string): MessageRecord => ({ id, direction: 'out', peerId: 'A', author: 'B', seq: 1, text: id, sentAt: 1, status: 'queued', reason: 'waiting', updatedAt: 1 })
    const ids = Array.from({ length: 1500 }, (_, i) => i.toString(16).padStart(32, '0'))
    for (let i = 0; i < ids.length; i += 100) await db.batch(ids.slice(i, i + 100).map(id => db.putMessage(message(id))))
    // the oldest fell out of memory and come from disk; the newest from memory; the unknown are undefined
    const read = await db.messagesById([ids[0]!, ids[1499]!, 'f'.repeat(32), ids[700]!])
    expect(read.map(m => m?.id)).toEqual([ids[0], ids[1499], undefined, ids[700]])

    const old = ids[0]!
    const recent = ids[1499]!
    const sent = db.putStatus({ ...message(old), status: 'stored', mailboxes: 3, updatedAt: 2, reason: undefined })
    expect(sent.sublevel).toBe(db.statuses)
    expect(Object.keys(sent.type === 'put' ? sent.value as object : {}).sort()).toEqual(['mailboxes', 'status', 'updatedAt'])
    await db.batch([sent, db.putStatus({ ...message(recent), status: 'delivered', updatedAt: 3 })])
    const merged = await db.messagesById([old, recent])
    expect(merged.map(m => [m?.status, m?.reason, m?.mailboxes, m?.updatedAt, m?.text])).toEqual([
      ['stored', undefined, 3, 2, old],
      ['delivered', 'waiting', undefined, 3, recent]
    ])
    // the same from a fresh store object, which has nothing in memory
    expect((await new MessagingStore(store).messagesById([old, recent])).map(m => m?.status)).toEqual(['stored', 'delivered'])
    await store.close()
  })
})
