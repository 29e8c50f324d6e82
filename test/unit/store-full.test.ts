import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isOctetError } from '../../src/errors.js'
import { WriteBehindRecords, type RecordCodec } from '../../src/store/cache.js'
import { CommitPipeline } from '../../src/store/commit.js'
import { Store, type StoreOp } from '../../src/store/database.js'
import { Cleanup } from '../helpers/daemon.js'
import { fillDisk, freeDisk, mountTmpfs, skipUnlessTmpfs } from '../helpers/tmpfs.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

const TEXT: RecordCodec<string> = { encode: s => new TextEncoder().encode(s), decode: b => new TextDecoder().decode(b) }
/** A batch that fails as a whole: a value level refuses, next to the operations under test. */
const poisoned = (store: Store): StoreOp => ({ type: 'put', sublevel: store.records('x'), key: 'bad', value: undefined })

const openStore = async (): Promise<Store> => {
  const dir = await mkdtemp(join(tmpdir(), 'octet-store-'))
  cleanup.add(async () => { await rm(dir, { recursive: true, force: true }) })
  const store = await Store.open(dir)
  cleanup.add(async () => { await store.close() })
  return store
}

describe('write-behind state of a batch that failed', () => {
  it('goes back to pending, so the next batch that takes pending writes carries it', async () => {
    const store = await openStore()
    const pipeline = new CommitPipeline(store)
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, pipeline)
    await sessions.put('peer', 'state 1')
    // the pipeline puts the pending write into the batch; the batch fails as a whole
    await expect(pipeline.commit([poisoned(store)])).rejects.toThrow()
    expect(await store.bytes('s').get('peer')).toBeUndefined()
    const again = sessions.takeWrites()
    expect(again.map(op => op.key)).toEqual(['peer'])
    await store.batch(again)
    expect(new TextDecoder().decode(await store.bytes('s').get('peer'))).toBe('state 1')
  })

  it('never comes back over a newer value of the same key', async () => {
    const store = await openStore()
    const sessions = new WriteBehindRecords(store.bytes('s'), TEXT, { addWriteBehind: () => () => {}, flush: async () => {} })
    await sessions.put('peer', 'state 1')
    const first = sessions.takeWrites()
    await sessions.put('peer', 'state 2')
    const second = sessions.takeWrites()
    await expect(store.batch([...first, poisoned(store)]).catch(err => { sessions.restore(first); throw err })).rejects.toThrow()
    expect(sessions.takeWrites()).toEqual([])
    await store.batch(second)
    expect(new TextDecoder().decode(await store.bytes('s').get('peer'))).toBe('state 2')
  })
})

describe.skipIf(skipUnlessTmpfs() != null)('a Store on a disk that fills (8 MiB tmpfs)', () => {
  it('refuses writes with DISK_FULL, serves reads, resumes once space is back, and keeps what it wrote since across a reopen', async () => {
    const disk = await mountTmpfs(cleanup)
    const dir = join(disk, 'data')
    let store = await Store.open(dir)
    cleanup.add(async () => { await store.close() })
    const records = store.records<string>('r')
    await records.put('before', 'x')
    const health: boolean[] = []
    store.onHealthChange(h => { health.push(h.writable) })

    const filler = await fillDisk(disk)
    let refusal: unknown
    for (let i = 0; i < 10_000 && refusal == null; i++) {
      await store.batch([{ type: 'put', sublevel: records, key: `fill${i}`, value: 'y'.repeat(1000) }]).catch((err: unknown) => { refusal = err })
    }
    expect(isOctetError(refusal, 'DISK_FULL')).toBe(true)
    expect(store.writable).toBe(false)
    // every write now, through a sublevel too, is refused at once; reads go on
    await expect(records.put('direct', 'z')).rejects.toMatchObject({ code: 'DISK_FULL' })
    expect(await records.get('before')).toBe('x')

    await freeDisk(filler)
    await store.whenWritable()
    expect(health).toEqual([false, true])
    for (let i = 0; i < 1000; i++) await records.put(`after${i}`, 'w'.repeat(200))
    await store.close()
    store = await Store.open(dir)
    const reopened = store.records<string>('r')
    expect(await reopened.get('before')).toBe('x')
    // a write acknowledged after the disk had been full is still there after a reopen
    expect((await reopened.keys({ gte: 'after', lt: 'after~' }).all()).length).toBe(1000)
  }, 60_000)
})
