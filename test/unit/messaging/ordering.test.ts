import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { KeyedLock } from '../../../src/lock.js'
import { EventLog, type OctetEvent } from '../../../src/messaging/events.js'
import { EventOrder } from '../../../src/messaging/ordering.js'
import type { MessageRecord } from '../../../src/messaging/records.js'
import { Counters } from '../../../src/messaging/stats.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { Store } from '../../../src/store/database.js'

// The ordering rule on a real level database and event log: what arrives, what comes out, when.

const HOLD = 300
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Harness {
  dir: string
  store: Store
  events: EventLog
  order: EventOrder
  counters: Counters
  lock: KeyedLock
  /** message.received events as committed, in id order */
  received: Array<OctetEvent<'message.received'>>
}

async function open (dir?: string, { holdMs = HOLD, now = Date.now }: { holdMs?: number, now?: () => number } = {}): Promise<Harness> {
  if (dir == null) {
    dir = await mkdtemp(join(tmpdir(), 'octet-ordering-'))
    const made = dir
    cleanups.push(async () => { await rm(made, { recursive: true, force: true }) })
  }
  const store = await Store.open(dir)
  const events = await EventLog.open(new CommitPipeline(store))
  const lock = new KeyedLock()
  const counters = new Counters()
  const order = new EventOrder({ name: 'dm', store, events, holdMs, counters, now, log: pino({ level: 'silent' }), lock: async (stream, work) => await lock.run(stream, work) })
  const received: Harness['received'] = []
  events.on('message.received', event => received.push(event))
  await order.start()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await order.stop()
    await store.close()
  }
  cleanups.push(close)
  return { dir, store, events, order, counters, lock, received, close } as Harness & { close: () => Promise<void> }
}

const message = (peer: string, seq: number): MessageRecord =>
  ({ id: `${peer}-${seq}`, direction: 'in', peerId: peer, author: peer, seq, text: `m${seq}`, sentAt: seq, receivedAt: seq, status: 'delivered', updatedAt: seq })

/** Messages of `peer` arrive in one commit, as the receiver takes a burst: stored, and their events admitted. */
async function arrive (h: Harness, peer: string, ...seqs: number[]): Promise<void> {
  await h.lock.run(peer, async () => {
    const draft = await h.order.draft(peer, () => 0)
    const out = []
    for (const seq of seqs) out.push(...await draft.admit(seq, { type: 'message.received', data: { message: message(peer, seq) } }, Date.now()))
    const { ops, apply } = draft.finish()
    await h.events.commit(ops, out)
    apply()
  })
}

const seqs = (events: Array<OctetEvent<'message.received'>>, peer?: string): number[] =>
  events.filter(e => peer == null || e.data.message.peerId === peer).map(e => e.data.message.seq)
const marks = (events: Array<OctetEvent<'message.received'>>): Array<[number, unknown, unknown]> =>
  events.map(e => [e.data.message.seq, e.data.gap, e.data.late])

async function until (check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('EventOrder', () => {
  it('holds the events that come ahead of a gap and releases them in seq order when it fills, with nothing marked', async () => {
    const h = await open()
    await arrive(h, 'A', 1)
    await arrive(h, 'A', 3)
    await arrive(h, 'A', 4)
    expect(seqs(h.received)).toEqual([1])
    expect(h.order.heldCount).toBe(2)
    await arrive(h, 'A', 2)
    expect(marks(h.received)).toEqual([[1, undefined, undefined], [2, undefined, undefined], [3, undefined, undefined], [4, undefined, undefined]])
    expect(h.order.heldCount).toBe(0)
    expect(h.counters.get('dm.events.held')).toBe(2)
    // event ids follow the seq order: a replay from the log says the same
    const replayed: number[] = []
    for await (const event of h.events.since(0)) if (event.type === 'message.received') replayed.push(event.data.message.seq)
    expect(replayed).toEqual([1, 2, 3, 4])
  })

  it('orders a burst that arrives reversed in one commit, and keeps conversations apart', async () => {
    const h = await open()
    await arrive(h, 'A', 3, 2)
    await arrive(h, 'B', 1)
    await arrive(h, 'A', 1)
    expect(seqs(h.received, 'A')).toEqual([1, 2, 3])
    expect(seqs(h.received, 'B')).toEqual([1])
  })

  it('after the hold, releases what waited with the gap named; what fills it later comes marked late', async () => {
    const h = await open()
    await arrive(h, 'A', 1)
    const heldAt = Date.now()
    await arrive(h, 'A', 4, 5)
    await until(() => h.received.length === 3, 'the release after the hold')
    expect(Date.now() - heldAt).toBeGreaterThanOrEqual(HOLD - 5)
    expect(marks(h.received)).toEqual([[1, undefined, undefined], [4, { from: 2, to: 3 }, undefined], [5, undefined, undefined]])
    expect(h.counters.get('dm.events.released-with-gap')).toBe(1)
    // the gap fills late; what comes after 5 is in order again
    await arrive(h, 'A', 3)
    await arrive(h, 'A', 6, 2)
    expect(marks(h.received).slice(3)).toEqual([[3, undefined, true], [6, undefined, undefined], [2, undefined, true]])
    expect(h.counters.get('dm.events.late')).toBe(2)
    expect(h.order.heldCount).toBe(0)
  })

  it('releases in seq order what waited below the one that fell due, each with the gap before it', async () => {
    const h = await open()
    await arrive(h, 'A', 5)
    await arrive(h, 'A', 3)
    await arrive(h, 'A', 8)
    await until(() => h.received.length === 3, 'the release')
    expect(marks(h.received)).toEqual([[3, { from: 1, to: 2 }, undefined], [5, { from: 4, to: 4 }, undefined], [8, { from: 6, to: 7 }, undefined]])
  })

  it('keeps held events across a restart and releases each once: in order when the gap fills, named when the hold ends', async () => {
    const first = await open(undefined, { holdMs: 60_000 }) as Harness & { close: () => Promise<void> }
    await arrive(first, 'A', 1)
    await arrive(first, 'A', 3)
    await arrive(first, 'B', 2)
    await first.close()
    expect(seqs(first.received)).toEqual([1])

    // the gap of A fills after the restart, before its hold ends; B's never does
    const second = await open(first.dir, { holdMs: 60_000 }) as Harness & { close: () => Promise<void> }
    expect(second.order.heldCount).toBe(2)
    await arrive(second, 'A', 2)
    expect(marks(second.received)).toEqual([[2, undefined, undefined], [3, undefined, undefined]])
    await second.close()

    // overdue on start (two minutes later): released at once, the gap named
    const third = await open(first.dir, { holdMs: 60_000, now: () => Date.now() + 120_000 }) as Harness & { close: () => Promise<void> }
    await until(() => third.received.length === 1, 'B released after the restart')
    expect(marks(third.received)).toEqual([[2, { from: 1, to: 1 }, undefined]])
    expect(third.order.heldCount).toBe(0)
    await third.close()

    // nothing held is left, and every event is in the log exactly once, in the order released
    const fourth = await open(first.dir) as Harness & { close: () => Promise<void> }
    expect(fourth.order.heldCount).toBe(0)
    const all: string[] = []
    for await (const event of fourth.events.since(0)) if (event.type === 'message.received') all.push(event.data.message.id)
    expect(all).toEqual(['A-1', 'A-2', 'A-3', 'B-2'])
  })

  it('a failed commit changes nothing: the event is held again by the retry', async () => {
    const h = await open()
    await arrive(h, 'A', 2)
    await h.lock.run('A', async () => {
      const draft = await h.order.draft('A', () => 0)
      const out = await draft.admit(1, { type: 'message.received', data: { message: message('A', 1) } }, Date.now())
      expect(out).toHaveLength(2)
      // not committed, not applied: as if the batch had failed
    })
    expect(h.order.heldCount).toBe(1)
    await arrive(h, 'A', 1)
    expect(seqs(h.received)).toEqual([1, 2])
  })

  it('starts a stream afresh for a sender that numbers from 1 again (a new identity key): what waited goes out first', async () => {
    const h = await open()
    await arrive(h, 'A', 1, 2, 5)
    await h.lock.run('A', async () => {
      const draft = await h.order.draft('A', () => 0)
      const out = await draft.restart()
      const { ops, apply } = draft.finish()
      await h.events.commit(ops, out)
      apply()
    })
    await arrive(h, 'A', 1)
    await arrive(h, 'A', 3)
    await arrive(h, 'A', 2)
    expect(marks(h.received)).toEqual([[1, undefined, undefined], [2, undefined, undefined], [5, { from: 3, to: 4 }, undefined], [1, undefined, undefined], [2, undefined, undefined], [3, undefined, undefined]])
  })

  it('starts a stream from where its events went out before ordering existed', async () => {
    const h = await open()
    await h.lock.run('A', async () => {
      const draft = await h.order.draft('A', () => 7)
      const out = [...await draft.admit(8, { type: 'message.received', data: { message: message('A', 8) } }, Date.now()), ...await draft.admit(6, { type: 'message.received', data: { message: message('A', 6) } }, Date.now())]
      const { ops, apply } = draft.finish()
      await h.events.commit(ops, out)
      apply()
    })
    expect(marks(h.received)).toEqual([[8, undefined, undefined], [6, undefined, true]])
  })
})
