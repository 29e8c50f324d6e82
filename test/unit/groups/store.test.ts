import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { HISTORY_KEPT_PER_GROUP } from '../../../src/groups/constants.js'
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

describe('the catch-up log', () => {
  it('keeps each message as bytes beside its entry, reads entries written before that (base64 inside) alike, and drops both halves of the oldest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-groups-'))
    dirs.push(dir)
    const store = await Store.open(dir)
    const groups = new GroupStore(store)
    // an entry as an earlier octet wrote it: the message base64 in the JSON record
    const legacy = Uint8Array.of(1, 2, 3, 250)
    await groups.log.put('g1!0000000000000001', { sender: 'a', seq: 1, version: 1, data: Buffer.from(legacy).toString('base64') })
    const progressed: GroupRecord = { ...record(), logCounter: 1 }
    const fresh = Uint8Array.of(9, 8, 7)
    await store.batch(groups.putLog(progressed, 'b', 5, fresh, 2))

    const entries = []
    for await (const entry of groups.logEntries('g1')) entries.push(entry)
    expect(entries.map(e => [e.sender, e.seq, e.version])).toEqual([['a', 1, 1], ['b', 5, 2]])
    expect((await groups.loggedBytes(entries)).map(b => [...b])).toEqual([[...legacy], [...fresh]])

    // once the log is full, each new message drops the oldest entry and its bytes
    progressed.logCounter = HISTORY_KEPT_PER_GROUP
    await store.batch(groups.putLog(progressed, 'c', 1, Uint8Array.of(4), 3))
    const kept = []
    for await (const entry of groups.logEntries('g1')) kept.push(entry)
    expect(kept.map(e => e.sender)).toEqual(['b', 'c'])
    expect(await groups.logData.get('g1!0000000000000001')).toBeUndefined()
    await store.close()
  })
})
