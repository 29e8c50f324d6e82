import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
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
