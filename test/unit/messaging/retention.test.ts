import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { EVENT_RETENTION, IDEMPOTENCY_TTL, SEEN_RETENTION } from '../../../src/messaging/constants.js'
import { EventLog, type NewEvent } from '../../../src/messaging/events.js'
import { MessagingStore } from '../../../src/messaging/records.js'
import { Retention } from '../../../src/messaging/retention.js'
import { Counters } from '../../../src/messaging/stats.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { Store } from '../../../src/store/database.js'
import { HOUR } from '../../../src/units.js'

// Retention on a real level database: what is past it goes, what is within it stays.
const dirs: string[] = []
const stores: Store[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

async function open (dir?: string): Promise<{ dir: string, store: Store, events: EventLog, db: MessagingStore }> {
  if (dir == null) {
    dir = await mkdtemp(join(tmpdir(), 'octet-retention-'))
    dirs.push(dir)
  }
  const store = await Store.open(dir)
  stores.push(store)
  return { dir, store, events: await EventLog.open(new CommitPipeline(store)), db: new MessagingStore(store) }
}

async function stored (events: EventLog): Promise<number[]> {
  const ids: number[] = []
  for await (const event of events.since(0)) ids.push(event.id)
  return ids
}

const NOW = 1_800_000_000_000
const event = (n: number): NewEvent => ({ type: 'identity.changed', data: { peerId: `peer ${n}` } })

describe('Retention', () => {
  it('deletes events and dedup entries past their retention and keeps the younger ones', async () => {
    const { events, db } = await open()
    const old = await events.commit([], [event(1), event(2)], NOW - EVENT_RETENTION - HOUR)
    const young = await events.commit([], [event(3), event(4)], NOW - EVENT_RETENTION + HOUR)
    // dedup entries: one past the retention, one just within it, across senders
    await db.batch([
      db.putOp(db.seen, db.seenKey('peerA', 'aa'), NOW - SEEN_RETENTION - 1),
      db.putOp(db.seen, db.seenKey('peerB', 'bb'), NOW - SEEN_RETENTION + HOUR),
      db.putOp(db.seen, db.seenKey('peerC', 'cc'), NOW - SEEN_RETENTION - HOUR)
    ])
    const counters = new Counters()
    const retention = new Retention({ events, db, counters, log: pino({ level: 'silent' }), now: () => NOW })

    expect(await retention.pruneOnce()).toEqual({ events: 2, seen: 2, idempotency: 0 })
    expect(await stored(events)).toEqual(young.map(e => e.id))
    expect(events.oldestId).toBe(young[0]?.id)
    expect(await db.seen.get(db.seenKey('peerA', 'aa'))).toBeUndefined()
    expect(await db.seen.get(db.seenKey('peerC', 'cc'))).toBeUndefined()
    expect(await db.seen.get(db.seenKey('peerB', 'bb'))).toBe(NOW - SEEN_RETENTION + HOUR)
    expect(counters.snapshot()).toMatchObject({ 'retention.events.pruned': 2, 'retention.seen.pruned': 2 })
    expect(old.every(e => e.id < (young[0]?.id ?? 0))).toBe(true)
    // a second round finds nothing more
    expect(await retention.pruneOnce()).toEqual({ events: 0, seen: 0, idempotency: 0 })
  })

  it('deletes Idempotency-Keys past their TTL and keeps the younger ones', async () => {
    const { db, events } = await open()
    await db.batch([
      db.putOp(db.idempotency, 'old', { messageId: 'm1', createdAt: NOW - IDEMPOTENCY_TTL - 1 }),
      db.putOp(db.idempotency, 'young', { messageId: 'm2', createdAt: NOW - IDEMPOTENCY_TTL + HOUR })
    ])
    const counters = new Counters()
    const retention = new Retention({ events, db, counters, log: pino({ level: 'silent' }), now: () => NOW })
    expect(await retention.pruneOnce()).toEqual({ events: 0, seen: 0, idempotency: 1 })
    expect(await db.idempotency.get('old')).toBeUndefined()
    expect(await db.idempotency.get('young')).toEqual({ messageId: 'm2', createdAt: NOW - IDEMPOTENCY_TTL + HOUR })
    expect(counters.snapshot()).toMatchObject({ 'retention.idempotency.pruned': 1 })
  })

  it('always keeps the newest event, so ids go on after a restart instead of starting again from 1', async () => {
    const first = await open()
    await first.events.commit([], [event(1), event(2), event(3)], NOW - 2 * EVENT_RETENTION)
    expect(await first.events.prune(NOW - EVENT_RETENTION, 1000)).toBe(2)
    expect(await stored(first.events)).toEqual([3])
    await first.store.close()
    stores.splice(stores.indexOf(first.store), 1)

    const again = await open(first.dir)
    expect(again.events.latestId).toBe(3)
    expect(again.events.oldestId).toBe(3)
    const [next] = await again.events.commit([], [event(4)], NOW)
    expect(next?.id).toBe(4)
  })

  it('keeps at most the newest `keep` events however young, in chunks past the batch size', async () => {
    const { events } = await open()
    for (let i = 0; i < 25; i++) await events.commit([], Array.from({ length: 100 }, (_, k) => event(i * 100 + k)), NOW)
    expect(await events.prune(NOW - EVENT_RETENTION, 500)).toBe(2000)
    expect(await stored(events)).toEqual(Array.from({ length: 500 }, (_, i) => 2001 + i))
  })
})
