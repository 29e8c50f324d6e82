import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import { EventLog, type OctetEvent } from '../../../src/messaging/events.js'
import { WriteBehindRecords, type RecordCodec } from '../../../src/store/cache.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { Store, type StoreOp } from '../../../src/store/database.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const run of cleanups.splice(0).reverse()) await run() })

const TEXT: RecordCodec<string> = { encode: s => new TextEncoder().encode(s), decode: b => new TextDecoder().decode(b) }

async function open (): Promise<{ store: Store, pipeline: CommitPipeline, batches: StoreOp[][] }> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-commit-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const store = await Store.open(dir)
  cleanups.push(async () => { await store.close() })
  const batches: StoreOp[][] = []
  store.onCommitted(ops => { batches.push(ops) })
  return { store, pipeline: new CommitPipeline(store), batches }
}

/** An operation level refuses, so the whole batch holding it fails. */
const poisoned = (store: Store): StoreOp => ({ type: 'put', sublevel: store.records('x'), key: 'bad', value: undefined })
const put = (store: Store, key: string, value: unknown): StoreOp => ({ type: 'put', sublevel: store.records('r'), key, value })

describe('CommitPipeline', () => {
  it('lands commits in the order they were made, and resolves them in that order', async () => {
    const { store, pipeline } = await open()
    const resolved: number[] = []
    await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      await pipeline.commit([put(store, 'k', i)])
      resolved.push(i)
    }))
    expect(resolved).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(await store.records('r').get('k')).toBe(49)
  })

  it('merges the commits made while a batch is written into the next batch (group commit)', async () => {
    const { store, pipeline, batches } = await open()
    const first = pipeline.commit([put(store, 'first', 0)])
    // made while the first is being written
    const rest = Array.from({ length: 20 }, async (_, i) => { await pipeline.commit([put(store, `k${i}`, i)]) })
    await Promise.all([first, ...rest])
    expect(batches.map(b => b.length)).toEqual([1, 20])
  })

  it('a failed batch fails only its own commits; later ones go ahead', async () => {
    const { store, pipeline } = await open()
    const ok = pipeline.commit([put(store, 'a', 1)])
    const failing = Promise.all([pipeline.commit([put(store, 'b', 2)]), pipeline.commit([poisoned(store)])])
    await ok
    await expect(failing).rejects.toThrow()
    await pipeline.commit([put(store, 'c', 3)])
    expect(await store.records('r').getMany(['a', 'b', 'c'])).toEqual([1, undefined, 3])
  })

  it('puts every pending write-behind change into the next batch: a commit resolves with the changes made before it on disk', async () => {
    const { store, pipeline, batches } = await open()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    await sessions.put('peer', 'state 1')
    // nothing is written yet; the caller does not take anything
    expect(await store.bytes('s').get('peer')).toBeUndefined()
    await pipeline.commit([put(store, 'message', 'm1')])
    expect(batches.at(-1)?.map(op => op.key).sort()).toEqual(['message', 'peer'])
    expect(TEXT.decode(await store.bytes('s').get('peer') as Uint8Array)).toBe('state 1')
  })

  it('a change made while a batch is written rides with the next commit, not the one in flight', async () => {
    const { store, pipeline } = await open()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    const inFlight = pipeline.commit([put(store, 'before', 0)])
    await sessions.put('peer', 'changed meanwhile')
    await pipeline.commit([put(store, 'after', 1)])
    expect(TEXT.decode(await store.bytes('s').get('peer') as Uint8Array)).toBe('changed meanwhile')
    await inFlight
  })

  it('gives a failed batch\'s write-behind changes back, and the next batch writes them', async () => {
    const { store, pipeline } = await open()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    await sessions.put('peer', 'state 1')
    await expect(pipeline.commit([poisoned(store)])).rejects.toThrow()
    expect(await store.bytes('s').get('peer')).toBeUndefined()
    // still what the cache shows, and still to be written
    expect(await sessions.get('peer')).toBe('state 1')
    await pipeline.commit([])
    expect(TEXT.decode(await store.bytes('s').get('peer') as Uint8Array)).toBe('state 1')
  })

  it('writes what is written behind on its own soon after, without any commit', async () => {
    const { store, pipeline } = await open()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    await sessions.put('peer', 'alone')
    await expect.poll(async () => await store.bytes('s').get('peer'), { timeout: 2000 }).toBeDefined()
  })

  it('close waits for queued commits and the pending write-behind changes, then refuses new commits', async () => {
    const { store, pipeline } = await open()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    const queued = Array.from({ length: 10 }, async (_, i) => { await pipeline.commit([put(store, `k${i}`, i)]) })
    await sessions.put('peer', 'last state')
    await pipeline.close()
    await Promise.all(queued)
    expect(TEXT.decode(await store.bytes('s').get('peer') as Uint8Array)).toBe('last state')
    expect((await store.records('r').getMany(['k0', 'k9']))).toEqual([0, 9])
    const refused = await pipeline.commit([put(store, 'late', 1)]).catch((err: unknown) => err)
    expect(isOctetError(refused, 'UNAVAILABLE')).toBe(true)
  })
})

describe('EventLog on the pipeline', () => {
  const event = (n: number): { type: 'identity.changed', data: { peerId: string } } => ({ type: 'identity.changed', data: { peerId: `p${n}` } })

  it('numbers events in commit order without gaps, even around a failed batch, and publishes each once it is on disk', async () => {
    const { store, pipeline } = await open()
    const events = await EventLog.open(pipeline)
    const published: OctetEvent[] = []
    events.subscribe(e => { published.push(e) })
    const typed: string[] = []
    events.on('identity.changed', e => { typed.push(e.data.peerId) })

    await events.commit([], [event(0)])
    // a group in flight: commits queue behind it; one of the next group fails, and takes its group down
    const a = events.commit([], [event(1), event(2)])
    const b = events.commit([poisoned(store)], [event(3)])
    const c = events.commit([], [event(4)])
    await a
    await expect(b).rejects.toThrow()
    await expect(c).rejects.toThrow()
    const d = await events.commit([], [event(5)])

    const stored: OctetEvent[] = []
    for await (const e of events.since(0)) stored.push(e)
    expect(stored.map(e => e.id)).toEqual([1, 2, 3, 4])
    expect(stored.map(e => e.type === 'identity.changed' ? e.data.peerId : '')).toEqual(['p0', 'p1', 'p2', 'p5'])
    expect(d.map(e => e.id)).toEqual([4])
    expect(published).toEqual(stored)
    expect(typed).toEqual(['p0', 'p1', 'p2', 'p5'])
    expect(events.latestId).toBe(4)
    // resuming after any id gives exactly the rest
    for (const after of [0, 1, 2, 3, 4]) {
      const rest: number[] = []
      for await (const e of events.since(after)) rest.push(e.id)
      expect(rest).toEqual([1, 2, 3, 4].filter(id => id > after))
    }
  })

  it('ids go on from the newest stored across a reopen', async () => {
    const { pipeline } = await open()
    const events = await EventLog.open(pipeline)
    await Promise.all(Array.from({ length: 30 }, async (_, i) => await events.commit([], [event(i)])))
    const again = await EventLog.open(pipeline)
    expect((await again.commit([], [event(99)]))[0]?.id).toBe(31)
  })
})
