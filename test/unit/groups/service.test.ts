import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignalCrypto } from '../../../src/crypto/index.js'
import { isOctetError } from '../../../src/errors.js'
import { encodeGroupMessage, encodeGroupPlaintext } from '../../../src/groups/codec.js'
import { HISTORY_TIMEOUT } from '../../../src/groups/constants.js'
import { HISTORY_PROTOCOL, GroupService, senderKeyName, type GroupMessenger, type GroupView } from '../../../src/groups/index.js'
import { callHistory } from '../../../src/groups/history.js'
import { createLogger } from '../../../src/logger.js'
import { Counters, EventLog, type OctetEvent, type PairwiseDelivery } from '../../../src/messaging/index.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { groupEvents } from '../../helpers/groups.js'
import { parsePeerId, type OctetNode } from '../../../src/node/index.js'
import { Refusals } from '../../../src/refusals.js'
import { Store } from '../../../src/store/database.js'
import { until } from '../../helpers/daemon.js'
import { startTestNode } from '../../helpers/node.js'

/**
 * GroupService at its boundary: real services, each on its own libp2p node
 * (TCP on 127.0.0.1: gossipsub and the history protocol for real), its own
 * store on a temp dir, real SignalCrypto and a real event log. The one
 * stand-in is the messenger's pairwise path: what a service hands
 * commitPairwise is committed like the messenger does and handed, in order,
 * to the recipient's envelopeHandler (the Signal sessions and the outbox in
 * between are the messenger's, tested with it).
 */

interface Member {
  name: string
  peerId: string
  node: OctetNode
  service: GroupService
  crypto: SignalCrypto
  events: EventLog
  counters: Counters
}

/** Delivers pairwise plaintexts between the members' services, one sender → recipient pair in order. */
class PairwiseRouter {
  readonly services = new Map<string, GroupService>()
  private readonly queues = new Map<string, Promise<void>>()

  messenger (self: string, crypto: SignalCrypto, events: EventLog, counters: Counters, refusals: Refusals): GroupMessenger {
    return {
      events,
      counters,
      refusals,
      commitPairwise: async (ops, newEvents, deliveries) => {
        await events.commit(ops, newEvents)
        for (const delivery of deliveries) this.deliver(self, delivery)
      }
    }
  }

  private deliver (sender: string, { peer, kind, body }: PairwiseDelivery): void {
    const key = `${sender}>${peer}`
    const previous = this.queues.get(key) ?? Promise.resolve()
    // a refused envelope is counted by the recipient, as with the messenger
    this.queues.set(key, previous.then(async () => { await this.services.get(peer)?.envelopeHandler(sender, kind, body) }).catch(() => {}))
  }

  /** Resolves once every delivery, including those the deliveries caused, has been handled. */
  async settled (): Promise<void> {
    let waited: Array<Promise<void>> = []
    while (true) {
      const queues = [...this.queues.values()]
      if (queues.every(q => waited.includes(q))) return
      await Promise.all(queues)
      waited = queues
    }
  }
}

describe('GroupService', () => {
  const cleanups: Array<() => Promise<void>> = []
  const router = new PairwiseRouter()
  const log = createLogger('silent')
  let a: Member, b: Member, c: Member, outsider: Member

  const startMember = async (name: string): Promise<Member> => {
    const privateKey = await generateKeyPair('Ed25519')
    const node = await startTestNode(cleanups, { privateKey })
    const dir = await mkdtemp(join(tmpdir(), `octet-groups-${name}-`))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const store = await Store.open(dir)
    cleanups.push(async () => { await store.close() })
    const peerId = node.peerId
    const pipeline = new CommitPipeline(store)
    cleanups.push(async () => { await pipeline.close() })
    const crypto = await SignalCrypto.open({ store, pipeline, privateKey, peerId })
    const events = await EventLog.open(pipeline)
    const counters = new Counters()
    const refusals = new Refusals(counters, log)
    cleanups.push(async () => { refusals.flush() })
    const service = new GroupService({ peerId, privateKey, store, crypto, messenger: router.messenger(peerId, crypto, events, counters, refusals), pubsub: node.pubsub, libp2p: node.libp2p, log })
    router.services.set(peerId, service)
    await service.start()
    cleanups.push(async () => { await service.stop() })
    return { name, peerId, node, service, crypto, events, counters }
  }

  const connect = async (members: Member[]): Promise<void> => {
    for (const [i, x] of members.entries()) {
      for (const y of members.slice(i + 1)) await x.node.libp2p.dial(y.node.libp2p.getMultiaddrs())
    }
  }
  const count = (member: Member, name: string): number => member.counters.get(name)
  const view = async (member: Member, groupId: string): Promise<GroupView | undefined> => await member.service.get(groupId).catch(() => undefined)

  /** `admin` creates a group and adds `invitees` through invite and accept; resolves once all are at the last version. */
  const formGroup = async (admin: Member, invitees: Member[]): Promise<GroupView> => {
    const created = await admin.service.create(`group of ${admin.name}`)
    for (const invitee of invitees) {
      await admin.service.invite(created.id, invitee.peerId)
      await until(`invite at ${invitee.name}`, async () => (await view(invitee, created.id))?.state === 'invited')
      await invitee.service.accept(created.id)
      await until(`${invitee.name} joined`, async () => (await view(invitee, created.id))?.state === 'joined')
    }
    const final = await admin.service.get(created.id)
    const members = [admin, ...invitees]
    for (const member of members) await until(`version ${final.version} at ${member.name}`, async () => (await view(member, created.id))?.version === final.version)
    // every member on the topic as every other sees it, so that what is published reaches all
    for (const member of members) {
      await until(`subscriptions seen by ${member.name}`, () => {
        const subscribers = member.node.pubsub.subscribers(final.topic)
        return members.every(m => m === member || subscribers.includes(m.peerId))
      })
    }
    return final
  }

  /** A group message of `sender` sealed with its current sender key, as if it had published it: for gossip in any order. */
  const seal = async (sender: Member, group: GroupView, seq: number, text: string, sentAt = Date.now()): Promise<Uint8Array> => {
    const ciphertext = await sender.crypto.groupEncrypt(senderKeyName(group.id, group.keyEpoch), encodeGroupPlaintext({ text, seq, sentAt }))
    return encodeGroupMessage({ groupId: group.id, sender: sender.peerId, seq, sentAt, epoch: group.keyEpoch, ciphertext })
  }

  beforeAll(async () => {
    [a, b, c, outsider] = await Promise.all([startMember('a'), startMember('b'), startMember('c'), startMember('outsider')])
    await connect([a, b, c, outsider])
  })
  afterAll(async () => {
    await router.settled()
    await Promise.all([...router.services.values()].map(async service => { await service.stop() }))
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it('signs one version per change: invites, accepts and a removal, the same everywhere, the removal a new key epoch', async () => {
    const invitees = [b, c]
    const group = await formGroup(a, invitees)
    // genesis, then one version per member added; adding keeps the first key epoch
    expect(group.version).toBe(1 + invitees.length)
    expect(group.keyEpoch).toBe(1)
    expect([...group.members].sort()).toEqual([a.peerId, b.peerId, c.peerId].sort())
    expect((await b.service.get(group.id))).toMatchObject({ state: 'joined', isAdmin: false, admins: [a.peerId], invitedBy: a.peerId })
    expect((await groupEvents(a.events, group.id, 'group.member.added')).map(e => e.data.peerId)).toEqual([b.peerId, c.peerId])
    expect(await groupEvents(b.events, group.id, 'group.invite')).toHaveLength(1)

    const removed = await a.service.removeMember(group.id, c.peerId)
    expect(removed).toMatchObject({ version: group.version + 1, keyEpoch: group.version + 1 })
    await until('the removal at b', async () => (await view(b, group.id))?.version === removed.version)
    await until('the removal at c', async () => (await view(c, group.id))?.state === 'removed')
    expect((await groupEvents(b.events, group.id, 'group.member.removed')).map(e => e.data.peerId)).toEqual([c.peerId])
    // the chain: consecutive versions, each signed by the admin
    const versions = await b.service.versions(group.id)
    expect(versions.map(v => v.version)).toEqual(Array.from({ length: removed.version - 1 }, (_, i) => i + 2))
    expect(versions.every(v => v.author === a.peerId)).toBe(true)
    // only an admin changes membership
    const refused = await b.service.invite(group.id, outsider.peerId).catch(err => err)
    expect(isOctetError(refused, 'NOT_AN_ADMIN')).toBe(true)
  })

  it('a send retried with the same Idempotency-Key makes one message; the key with another text is a conflict', async () => {
    const group = await formGroup(a, [b])
    const first = await a.service.send(group.id, 'exactly once', 'bridge-key-1')
    const again = await a.service.send(group.id, 'exactly once', 'bridge-key-1')
    expect(first.created).toBe(true)
    expect(again).toMatchObject({ created: false, recipients: 0, message: first.message })
    const conflict = await a.service.send(group.id, 'something else', 'bridge-key-1').catch(err => err)
    expect(isOctetError(conflict, 'CONFLICT')).toBe(true)
    // another key is another message
    const other = await a.service.send(group.id, 'exactly once', 'bridge-key-2')
    expect(other.message.seq).toBe(first.message.seq + 1)
    await until('both at b', async () => (await b.service.messages(group.id)).length === 2)
    expect((await a.service.messages(group.id)).map(m => m.id)).toEqual([first.message.id, other.message.id])
    expect((await b.service.messages(group.id)).map(m => m.text)).toEqual(['exactly once', 'exactly once'])
  })

  it('holds a gossip message that arrives ahead of a gap and releases it, in order, when the gap fills', async () => {
    const keysBefore = count(b, 'group.sender-keys.received')
    const group = await formGroup(a, [b])
    await until('a\'s sender key at b', () => count(b, 'group.sender-keys.received') >= keysBefore + 1)
    const earlyBefore = count(b, 'group.received.early')
    const sealed = [await seal(a, group, 1, 'one'), await seal(a, group, 2, 'two'), await seal(a, group, 3, 'three')]
    const released: Array<OctetEvent<'group.message'>> = []
    const unsubscribe = b.events.subscribe(event => { if (event.type === 'group.message' && event.data.groupId === group.id) released.push(event) })
    try {
      // 2 and 3 first: a gap before them
      await a.node.pubsub.publish(group.topic, sealed[1]!)
      await a.node.pubsub.publish(group.topic, sealed[2]!)
      await until('2 and 3 held at b', () => count(b, 'group.received.early') === earlyBefore + 2)
      // stored at once (acknowledged, deduplicated), listed once their events go out: one order for history and events
      expect((await b.service.messages(group.id)).map(m => m.seq)).toEqual([])
      expect(released).toEqual([])
      await a.node.pubsub.publish(group.topic, sealed[0]!)
      await until('all three at b', () => released.length === 3)
    } finally {
      unsubscribe()
    }
    expect(released.map(e => (e.data.message as { seq: number }).seq)).toEqual([1, 2, 3])
    // history in the order the events went out: the sender's
    expect((await b.service.messages(group.id)).map(m => [m.seq, m.text])).toEqual([[1, 'one'], [2, 'two'], [3, 'three']])
    expect(released.every(e => e.data.gap == null && e.data.late == null)).toBe(true)
    expect(count(b, 'group.events.released-with-gap')).toBe(0)
  })

  it('lists a group in the order messages arrived, not by the senders\' clocks, and pages it by before/after', async () => {
    const keysBefore = count(b, 'group.sender-keys.received')
    const group = await formGroup(a, [b])
    await until('a\'s sender key at b', () => count(b, 'group.sender-keys.received') >= keysBefore + 1)
    // b writes two, then two of a's come in whose clock says they were written an hour earlier
    const own = [await b.service.send(group.id, 'b1'), await b.service.send(group.id, 'b2')]
    expect(own.map(r => r.message.author)).toEqual([b.peerId, b.peerId])
    const anHourAgo = Date.now() - 3_600_000
    const arrived = new Set<string>()
    const unsubscribe = b.events.subscribe(event => { if (event.type === 'group.message' && event.data.groupId === group.id) arrived.add(event.data.message.text) })
    try {
      for (const [i, text] of ['a1', 'a2', 'a3'].entries()) {
        await a.node.pubsub.publish(group.topic, await seal(a, group, i + 1, text, anHourAgo + i))
        await until(`${text} at b`, () => arrived.has(text))
      }
    } finally {
      unsubscribe()
    }
    const texts = async (query: { before?: string, after?: string, limit?: number }): Promise<string[]> => (await b.service.messages(group.id, query)).map(m => m.text)
    const all = await b.service.messages(group.id)
    expect(all.map(m => m.text)).toEqual(['b1', 'b2', 'a1', 'a2', 'a3'])
    expect(all.map(m => m.author)).toEqual([b.peerId, b.peerId, a.peerId, a.peerId, a.peerId])
    expect(all.every(m => /^[0-9a-f]{32}$/.test(m.id))).toBe(true)
    const id = (text: string): string => all.find(m => m.text === text)!.id
    // backwards from the newest, two at a time, as a client scrolls up
    expect(await texts({ limit: 2 })).toEqual(['a2', 'a3'])
    expect(await texts({ limit: 2, before: id('a2') })).toEqual(['b2', 'a1'])
    expect(await texts({ limit: 2, before: id('b2') })).toEqual(['b1'])
    // forwards from the oldest
    expect(await texts({ limit: 2, after: id('b1') })).toEqual(['b2', 'a1'])
    expect(await texts({ limit: 2, after: id('a1') })).toEqual(['a2', 'a3'])
    expect(await texts({ limit: 2, after: id('a3') })).toEqual([])
    expect(await texts({ after: id('b1'), before: id('a3') })).toEqual(['b2', 'a1', 'a2'])
    const unknown = await b.service.messages(group.id, { before: 'f'.repeat(32) }).catch(err => err)
    expect(isOctetError(unknown, 'NOT_FOUND')).toBe(true)
  })

  it('gives up on a gap nobody can fill once a member answered a catch-up: the held message comes out', async () => {
    const keysBefore = count(b, 'group.sender-keys.received')
    const group = await formGroup(a, [b])
    await until('a\'s sender key at b', () => count(b, 'group.sender-keys.received') >= keysBefore + 1)
    const releasedBefore = count(b, 'group.events.released-with-gap')
    // seq 1 never comes, and a's history does not hold it either
    await a.node.pubsub.publish(group.topic, await seal(a, group, 2, 'after a gap'))
    await until('the held message released', () => count(b, 'group.events.released-with-gap') === releasedBefore + 1)
    expect((await b.service.messages(group.id)).map(m => m.text)).toEqual(['after a gap'])
    // its event names what it did not wait for any longer
    const released = await groupEvents(b.events, group.id, 'group.message')
    expect(released.map(e => [e.data.message.seq, e.data.gap])).toEqual([[2, { from: 1, to: 1 }]])
    expect(count(b, 'group.catch-up.failed.PEER_UNREACHABLE')).toBe(0)
  })

  it('refuses the messages of a removed member', async () => {
    const keysBefore = count(b, 'group.sender-keys.received')
    const group = await formGroup(a, [b, c])
    await until('a\'s and c\'s sender keys at b', () => count(b, 'group.sender-keys.received') >= keysBefore + 2)
    const removed = await a.service.removeMember(group.id, c.peerId)
    await until('the removal at b', async () => (await view(b, group.id))?.version === removed.version)
    const refusedBefore = count(b, 'group.rejected.NOT_A_MEMBER')
    // c still holds its key of the old epoch, and publishes with it
    await c.node.pubsub.publish(group.topic, await seal(c, group, 1, 'from a removed member'))
    await until('refused at b', () => count(b, 'group.rejected.NOT_A_MEMBER') === refusedBefore + 1)
    expect(await b.service.messages(group.id)).toEqual([])
  })

  it('serves history to members only', async () => {
    const group = await formGroup(a, [b])
    await a.service.send(group.id, 'kept for catch-up')
    const ask = async (who: Member): Promise<Uint8Array[]> => {
      const stream = await who.node.libp2p.dialProtocol(parsePeerId(a.peerId), HISTORY_PROTOCOL)
      return await callHistory(stream, { groupId: group.id, known: new Map(), limit: 100 })
    }
    expect(await ask(b)).toHaveLength(1)
    const refusedBefore = count(a, 'group.history.refused.NOT_A_MEMBER')
    const refused = await ask(outsider).catch(err => err)
    expect(isOctetError(refused, 'NOT_A_MEMBER')).toBe(true)
    expect(count(a, 'group.history.refused.NOT_A_MEMBER')).toBe(refusedBefore + 1)
  })

  it('stop aborts a catch-up in flight and waits for it, leaves the topics and stops serving history', async () => {
    const late = await startMember('late')
    const quiet = await startMember('quiet')
    await connect([late, quiet, a])
    const group = await formGroup(late, [quiet])
    // quiet takes history requests and never answers them
    let asked = false
    await quiet.node.libp2p.unhandle(HISTORY_PROTOCOL)
    await quiet.node.libp2p.handle(HISTORY_PROTOCOL, () => { asked = true })
    let done = false
    const catchUp = late.service.catchUp(group.id).then(report => { done = true; return report })
    await until('the request at quiet', () => asked)
    const stopping = Date.now()
    await late.service.stop()
    expect(Date.now() - stopping).toBeLessThan(HISTORY_TIMEOUT / 2)
    expect(done).toBe(true)
    expect(await catchUp).toMatchObject({ asked: 0, stored: 0 })
    expect(late.node.pubsub.isSubscribed(group.topic)).toBe(false)
    expect(late.node.libp2p.getProtocols()).not.toContain(HISTORY_PROTOCOL)
    // a second stop is a no-op
    await late.service.stop()
  })
})
