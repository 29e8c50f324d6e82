import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dataDirPaths } from '../../../src/datadir.js'
import { isOctetError } from '../../../src/errors.js'
import { createLogger } from '../../../src/logger.js'
import { parseTables } from '../../../src/store/level-damage.js'
import { CheckedState } from '../../../src/store/integrity.js'
import { readMarker, writeMarker, type StateMarker } from '../../../src/store/marker.js'
import { Cleanup } from '../../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })
let dataDir: string
beforeEach(async () => { dataDir = await cleanup.tempDir('octet-integrity-') })

const log = createLogger('silent')
const open = async (): Promise<CheckedState> => await CheckedState.open(dataDir, { log })
const marker = async (): Promise<StateMarker> => {
  const read = await readMarker(dataDir)
  if (read == null || 'initializing' in read) throw new Error('no final marker')
  return read
}
const refusal = async (): Promise<unknown> => await open().then(async state => { await state.close(); return undefined }, (err: unknown) => err)

describe('parseTables', () => {
  it('reads the number and size of each table from leveldb.sstables', () => {
    const property = '--- level 0 ---\n 16:183[\'!meta!cp\' @ 40001 : 1 .. \'!meta!cp\' @ 40001 : 1]\n--- level 1 ---\n 18:1050269[\'!a\' @ 9202 : 1 .. \'!b\' @ 39999 : 1]\n--- level 2 ---\n'
    expect(parseTables(property)).toEqual([{ number: 16, size: 183 }, { number: 18, size: 1050269 }])
  })
})

describe('CheckedState', () => {
  it('a new data directory: identity, state and a marker bound to it; a clean stop records the counts', async () => {
    const state = await open()
    const records = state.store.records<string>('things')
    await state.store.batch([{ type: 'put', sublevel: records, key: 'a', value: 'x' }, { type: 'put', sublevel: records, key: 'b', value: 'y' }])
    await state.close()
    const stopped = await marker()
    expect(stopped).toMatchObject({ cleanStop: true, counts: { things: 2 } })
    expect(stopped.checkpoint).toBeGreaterThanOrEqual(2)
    const again = await open()
    expect((await marker()).cleanStop).toBe(false)
    await again.close()
  })

  it('a crash (the database closed with no last checkpoint) is not damage: the marker only lags', async () => {
    const state = await open()
    const before = await marker()
    const records = state.store.records<string>('things')
    await state.store.batch([{ type: 'put', sublevel: records, key: 'a', value: 'x' }])
    await state.store.close()
    expect(await marker()).toEqual(before)
    const again = await open()
    expect(await again.store.records<string>('things').get('a')).toBe('x')
    await again.close()
  })

  it('a first start cut short after the identity was written is finished, not refused', async () => {
    await (await open()).close()
    const peerId = (await marker()).peerId
    await rm(join(dataDir, 'db'), { recursive: true })
    await writeMarker(dataDir, { format: 1, initializing: true, writtenAt: Date.now() })
    const state = await open()
    await state.close()
    expect((await marker()).peerId).toBe(peerId)
  })

  it('a state whose checkpoint is below the marker\'s is refused, and stays refused', async () => {
    await (await open()).close()
    const stopped = await marker()
    await writeMarker(dataDir, { ...stopped, checkpoint: stopped.checkpoint + 5 })
    const err = await refusal()
    expect(isOctetError(err, 'STATE_DAMAGED')).toBe(true)
    expect((await marker()).damage).toHaveLength(1)
    expect(isOctetError(await refusal(), 'STATE_DAMAGED')).toBe(true)
  })

  it('a marker of another identity is STATE_MISMATCH; an unreadable marker is STATE_DAMAGED', async () => {
    await (await open()).close()
    const stopped = await marker()
    await writeMarker(dataDir, { ...stopped, peerId: '12D3KooWSomeoneElseSomeoneElseSomeoneElseSomeoneElse' })
    expect(isOctetError(await refusal(), 'STATE_MISMATCH')).toBe(true)
    await writeFile(dataDirPaths(dataDir).marker, '{"format":1,')
    expect(isOctetError(await refusal(), 'STATE_DAMAGED')).toBe(true)
    expect(await readFile(dataDirPaths(dataDir).marker, 'utf8')).toBe('{"format":1,')
  })
})
