import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GroupStore, type GroupRecord } from '../../../src/groups/store.js'
import { Store } from '../../../src/store/database.js'

const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(async dir => { await rm(dir, { recursive: true, force: true }) })) })

const record = (): GroupRecord => ({
  id: 'g1', state: 'joined', membership: 'AAAA', nextSeq: 1, lastSentAt: 0, distributedEpoch: 1, memberSince: { a: 1 },
  senders: {}, invites: {}, logCounter: 0, createdAt: 1, updatedAt: 1
})

describe('group records and their progress', () => {
  it('a message writes only the progress; reading merges it, and a whole write supersedes an older progress', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-groups-'))
    dirs.push(dir)
    const store = await Store.open(dir)
    await store.batch(new GroupStore(store).putGroup(record()))

    const progressed: GroupRecord = { ...record(), nextSeq: 8, lastSentAt: 70, logCounter: 12, senders: { b: { contiguous: 4, ahead: [6] } }, updatedAt: 9 }
    const op = new GroupStore(store).putProgress(progressed)
    expect(Object.keys(op.type === 'put' ? op.value as object : {}).sort()).toEqual(['lastSentAt', 'logCounter', 'nextSeq', 'senders', 'updatedAt'])
    await store.batch([op])
    // a fresh store object reads from disk
    expect(await new GroupStore(store).group('g1')).toEqual(progressed)
    expect(await new GroupStore(store).all()).toEqual([progressed])

    // a later whole write (say a membership change) carries the progress and drops the separate one
    const whole: GroupRecord = { ...progressed, distributedEpoch: 2, nextSeq: 9 }
    await store.batch(new GroupStore(store).putGroup(whole))
    expect(await new GroupStore(store).group('g1')).toEqual(whole)
    expect(await new GroupStore(store).progress.get('g1')).toBeUndefined()
    await store.close()
  })
})
