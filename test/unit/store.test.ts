import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WriteBehindRecords } from '../../src/store/cache.js'
import { CommitPipeline } from '../../src/store/commit.js'
import { Store, type StoreOp } from '../../src/store/database.js'

const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(async dir => { await rm(dir, { recursive: true, force: true }) })) })

describe('Store.batch', () => {
  it('writes only the last operation on each key, with the same outcome as all of them in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-store-'))
    dirs.push(dir)
    const store = await Store.open(dir)
    const a = store.records<number>('a')
    const b = store.records<number>('b')
    await store.batch([{ type: 'put', sublevel: a, key: 'gone', value: 0 }])
    const seen: StoreOp[][] = []
    store.onCommitted(ops => { seen.push(ops) })
    await store.batch([
      { type: 'put', sublevel: a, key: 'k', value: 1 },
      { type: 'put', sublevel: b, key: 'k', value: 10 },
      { type: 'put', sublevel: a, key: 'k', value: 2 },
      { type: 'del', sublevel: a, key: 'gone' },
      { type: 'put', sublevel: a, key: 'gone', value: 3 },
      { type: 'put', sublevel: a, key: 'x', value: 4 },
      { type: 'del', sublevel: a, key: 'x' }
    ])
    expect([await a.get('k'), await b.get('k'), await a.get('gone'), await a.get('x')]).toEqual([2, 10, 3, undefined])
    // listeners see what was written: one operation per key, in order
    expect(seen[0]?.map(op => [op.type, op.key, op.type === 'put' ? op.value : null])).toEqual([
      ['put', 'k', 10], ['put', 'k', 2], ['put', 'gone', 3], ['del', 'x', null]
    ])
    await store.close()
  })
})

describe('WriteBehindRecords', () => {
  it('decodes a stored record once, encodes a put only when its write is taken, and lands what was put last', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-store-'))
    dirs.push(dir)
    let store = await Store.open(dir)
    const counts = { encode: 0, decode: 0 }
    const codec = {
      encode: (value: { n: number }) => { counts.encode++; return new TextEncoder().encode(String(value.n)) },
      decode: (bytes: Uint8Array) => { counts.decode++; return { n: Number(new TextDecoder().decode(bytes)) } }
    }
    await store.bytes('wb').put('old', new TextEncoder().encode('7'))
    const records = new WriteBehindRecords(store.bytes('wb'), codec, new CommitPipeline(store))

    const first = await records.get('old')
    expect(first).toEqual({ n: 7 })
    expect(await records.get('old')).toBe(first)
    expect(counts.decode).toBe(1)

    await records.put('k', { n: 1 })
    await records.put('k', { n: 2 })
    expect(await records.get('k')).toEqual({ n: 2 })
    expect(counts.encode).toBe(0)
    const ops = records.takeWrites()
    expect(counts.encode).toBe(1)
    await store.batch(ops)
    const committed: StoreOp[][] = []
    store.onCommitted(ops => { committed.push(ops) })
    await records.del('old')
    await records.flush()
    expect(committed.map(batch => batch.map(op => [op.type, op.key]))).toEqual([[['del', 'old']]])

    await store.close()
    store = await Store.open(dir)
    const reopened = new WriteBehindRecords(store.bytes('wb'), codec)
    expect([await reopened.get('k'), await reopened.get('old')]).toEqual([{ n: 2 }, undefined])
    await store.close()
  })
})
