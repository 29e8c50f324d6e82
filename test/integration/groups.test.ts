import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../src/datadir.js'
import { ControlType, decodeGroupMessage, encodeControl, encodeGroupMessage, encodeGroupPlaintext } from '../../src/groups/codec.js'
import { HISTORY_PROTOCOL, groupTopic, senderKeyName, type GroupMessageRecord, type GroupView } from '../../src/groups/index.js'
import { callHistory } from '../../src/groups/history.js'
import { membershipHash, signMembership } from '../../src/groups/membership.js'
import { parsePeerId, type PubsubMessage } from '../../src/node/index.js'
import type { OctetEvent, OctetEventType } from '../../src/messaging/index.js'
import { isOctetError } from '../../src/errors.js'
import { Cleanup, runCli, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

/**
 * Eight whole daemons in this process over TCP on 127.0.0.1: n0 creates a
 * group and invites n1…n5; n6 and n7 are not members but sit on the topic's
 * mesh and see everything that passes. The tests run in order and build on
 * each other: the group of six talks, loses n5, gains n6, has n3 offline for
 * a while, and is attacked.
 */
describe('group conversations over gossipsub with Sender Keys', () => {
  const cleanup = new Cleanup()
  const n: InProcessDaemon[] = []
  let groupId = ''
  let topic = ''
  const MARKER = 'PLAINTEXT-MARKER'

  const group = async (node: InProcessDaemon): Promise<GroupView | undefined> => {
    const res = await node.api<{ group: GroupView }>('GET', `/v1/groups/${groupId}`)
    return res.status === 200 ? res.body.group : undefined
  }
  const messages = async (node: InProcessDaemon): Promise<GroupMessageRecord[]> =>
    (await node.api<{ messages: GroupMessageRecord[] }>('GET', `/v1/groups/${groupId}/messages?limit=1000`)).body.messages
  const incoming = async (node: InProcessDaemon): Promise<GroupMessageRecord[]> => (await messages(node)).filter(m => m.direction === 'in')
  const stat = async (node: InProcessDaemon, name: string): Promise<number> =>
    (await node.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters[name] ?? 0
  const send = async (node: InProcessDaemon, text: string): Promise<GroupMessageRecord> => {
    const res = await node.api<{ message: GroupMessageRecord }>('POST', `/v1/groups/${groupId}/messages`, { text })
    expect(res.status).toBe(202)
    return res.body.message
  }
  const events = async <K extends OctetEventType>(node: InProcessDaemon, type: K): Promise<Array<OctetEvent<K>>> => {
    const found: Array<OctetEvent<K>> = []
    for await (const event of node.messenger.events.since(0)) if (event.type === type) found.push(event as OctetEvent<K>)
    return found
  }
  const waitVersion = async (nodes: InProcessDaemon[], version: number): Promise<void> => {
    for (const node of nodes) await waitFor(async () => (await group(node))?.version === version ? true : undefined, { what: `version ${version} at ${node.peerId}` })
  }
  const waitKeys = async (node: InProcessDaemon, atLeast: number): Promise<void> => {
    await waitFor(async () => await stat(node, 'group.sender-keys.received') >= atLeast ? true : undefined, { what: `${atLeast} sender keys at ${node.peerId}` })
  }
  /** Subscribes a node to the topic at the libp2p level, keeping every message that reaches it. */
  const capture = (node: InProcessDaemon): PubsubMessage[] => {
    const seen: PubsubMessage[] = []
    node.daemon.node.pubsub.subscribe(topic, async message => {
      seen.push(message)
      return 'ignore'
    })
    return seen
  }
  const waitSubscribed = async (watcher: InProcessDaemon, peers: InProcessDaemon[]): Promise<void> => {
    await waitFor(async () => {
      const subscribers = watcher.daemon.node.pubsub.subscribers(topic)
      return peers.every(p => subscribers.includes(p.peerId)) ? true : undefined
    }, { what: 'topic subscriptions' })
  }
  const connectAll = async (nodes: InProcessDaemon[]): Promise<void> => {
    for (const [i, a] of nodes.entries()) {
      await Promise.all(nodes.slice(i + 1).map(async b => { await a.daemon.node.libp2p.dial(multiaddr(b.tcpAddress)) }))
    }
  }

  beforeAll(async () => {
    n.push(await InProcessDaemon.start({ dataDir: await cleanup.tempDir() }, cleanup))
    const bootstrap = [(n[0] as InProcessDaemon).tcpAddress]
    n.push(...await Promise.all(Array.from({ length: 7 }, async () => await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap }, cleanup))))
    await connectAll(n)

    const created = await n[0]!.api<{ group: GroupView }>('POST', '/v1/groups', { name: 'the six' })
    expect(created.status).toBe(201)
    groupId = created.body.group.id
    topic = created.body.group.topic
    expect(topic).toBe(groupTopic(groupId))
    // invites go out at once; each invitee accepts when its invite is there
    const invitees = n.slice(1, 6)
    for (const peer of invitees) expect((await n[0]!.api('POST', `/v1/groups/${groupId}/invites`, { peerId: peer.peerId })).status).toBe(202)
    await Promise.all(invitees.map(async peer => {
      await waitFor(async () => (await group(peer))?.state === 'invited' ? true : undefined, { what: 'invite' })
      expect((await peer.api('POST', `/v1/groups/${groupId}/accept`)).status).toBe(202)
    }))
    await waitVersion(n.slice(0, 6), 6)
    // every member has every other member's sender key
    for (const member of n.slice(0, 6)) await waitKeys(member, 5)
  })
  afterAll(async () => { await cleanup.run() })

  it('forms a group of six through signed invites: same members, admins and version everywhere', async () => {
    const views = await Promise.all(n.slice(0, 6).map(group))
    const members = n.slice(0, 6).map(x => x.peerId).sort()
    for (const view of views) {
      expect(view).toMatchObject({ state: 'joined', version: 6, keyEpoch: 1, admins: [n[0]!.peerId] })
      expect([...view!.members].sort()).toEqual(members)
    }
    for (const invitee of n.slice(1, 6)) {
      expect((await events(invitee, 'group.invite')).map(e => e.data.groupId)).toEqual([groupId])
      expect((await events(invitee, 'group.joined'))).toHaveLength(1)
    }
    expect((await events(n[0]!, 'group.member.added')).map(e => e.data.peerId).sort()).toEqual(n.slice(1, 6).map(x => x.peerId).sort())
    // the non-members know nothing of it
    for (const outsider of n.slice(6)) {
      expect((await outsider.api<{ groups: GroupView[] }>('GET', '/v1/groups')).body.groups).toEqual([])
      expect((await outsider.api('GET', `/v1/groups/${groupId}`)).status).toBe(404)
    }
  })

  it('every member gets every other member\'s messages exactly once; non-members on the mesh see only ciphertext', async () => {
    const members = n.slice(0, 6)
    const outsiders = n.slice(6)
    const observed = outsiders.map(capture)
    await waitSubscribed(n[1]!, outsiders)

    const sent = new Map<string, string[]>()
    for (let round = 0; round < 3; round++) {
      await Promise.all(members.map(async (member, i) => {
        const text = `${MARKER} ${i}/${round}`
        await send(member, text)
        sent.set(member.peerId, [...sent.get(member.peerId) ?? [], text])
      }))
    }
    for (const member of members) {
      await waitFor(async () => (await incoming(member)).length >= 15 ? true : undefined, { what: `15 messages at ${member.peerId}` })
    }
    // a moment for any duplicate to show up
    await new Promise(resolve => setTimeout(resolve, 500))
    for (const member of members) {
      const received = await incoming(member)
      expect(received).toHaveLength(15)
      expect(new Set(received.map(m => m.id)).size).toBe(15)
      for (const other of members.filter(m => m !== member)) {
        const fromOther = received.filter(m => m.sender === other.peerId)
        expect(fromOther.map(m => m.text)).toEqual(sent.get(other.peerId))
        expect(fromOther.map(m => m.seq)).toEqual([1, 2, 3])
      }
      expect(await events(member, 'group.message')).toHaveLength(15)
      expect(await stat(member, 'group.rejected.DECRYPT_FAILED')).toBe(0)
    }

    // what passed the outsiders: all 18 messages, and not one byte of text
    for (const [i, seen] of observed.entries()) {
      await waitFor(async () => seen.length >= 18 ? true : undefined, { what: `18 messages seen by outsider ${i}` })
      const marker = Buffer.from(MARKER)
      for (const message of seen) expect(Buffer.from(message.data).includes(marker)).toBe(false)
      const first = decodeGroupMessage(seen[0]!.data)
      const attempt = await outsiders[i]!.daemon.crypto.groupDecrypt(first.sender, senderKeyName(groupId, first.epoch), first.ciphertext).catch(err => err)
      expect(isOctetError(attempt, 'NO_SESSION')).toBe(true)
      expect(await events(outsiders[i]!, 'group.message')).toEqual([])
      outsiders[i]!.daemon.node.pubsub.unsubscribe(topic)
    }
  })

  it('removing a member rotates keys: it gets nothing sent afterwards and cannot decrypt it', async () => {
    const removed = n[5]!
    const remaining = n.slice(0, 5)
    const keysBefore = await Promise.all(remaining.map(async m => await stat(m, 'group.sender-keys.received')))
    const heldBefore = (await messages(removed)).length

    const res = await n[0]!.api<{ group: GroupView }>('DELETE', `/v1/groups/${groupId}/members/${removed.peerId}`)
    expect(res.status).toBe(200)
    expect(res.body.group).toMatchObject({ version: 7, keyEpoch: 7 })
    expect(res.body.group.members).not.toContain(removed.peerId)
    await waitVersion(remaining, 7)
    await waitFor(async () => (await group(removed))?.state === 'removed' ? true : undefined, { what: 'removed state' })
    // each remaining member made a new key and sent it to the four others
    for (const [i, member] of remaining.entries()) await waitKeys(member, (keysBefore[i] ?? 0) + 4)
    expect((await events(n[1]!, 'group.member.removed')).map(e => e.data.peerId)).toEqual([removed.peerId])

    // the removed node (say, a modified one) stays on the topic and keeps what passes
    const seen = capture(removed)
    await waitSubscribed(n[1]!, [removed])
    const after = await Promise.all(remaining.map(async (member, i) => await send(member, `${MARKER} after removal ${i}`)))
    expect(after.every(m => m.epoch === 7)).toBe(true)
    for (const member of remaining) {
      await waitFor(async () => (await incoming(member)).filter(m => m.text.includes('after removal')).length === 4 ? true : undefined, { what: 'messages after removal' })
    }
    await waitFor(async () => seen.length >= 5 ? true : undefined, { what: 'ciphertexts captured at the removed node' })
    for (const captured of seen) {
      const message = decodeGroupMessage(captured.data)
      expect(message.epoch).toBe(7)
      // no key for the new epoch, and the old epoch's key does not open it either
      const newEpoch = await removed.daemon.crypto.groupDecrypt(message.sender, senderKeyName(groupId, 7), message.ciphertext).catch(err => err)
      expect(isOctetError(newEpoch, 'NO_SESSION')).toBe(true)
      const oldEpoch = await removed.daemon.crypto.groupDecrypt(message.sender, senderKeyName(groupId, 1), message.ciphertext).catch(err => err)
      expect(isOctetError(oldEpoch, 'DECRYPT_FAILED')).toBe(true)
    }
    expect((await messages(removed)).length).toBe(heldBefore)
    removed.daemon.node.pubsub.unsubscribe(topic)
    // and it cannot ask for history either
    const stream = await removed.daemon.node.libp2p.dialProtocol(parsePeerId(n[1]!.peerId), HISTORY_PROTOCOL)
    const refused = await callHistory(stream, { groupId, known: new Map(), limit: 0 }).catch(err => err)
    expect(isOctetError(refused, 'NOT_A_MEMBER')).toBe(true)
  })

  it('an added member reads what is sent after it joined, and nothing from before', async () => {
    const newcomer = n[6]!
    const members = n.slice(0, 5)
    expect((await n[0]!.api('POST', `/v1/groups/${groupId}/invites`, { peerId: newcomer.peerId })).status).toBe(202)
    await waitFor(async () => (await group(newcomer))?.state === 'invited' ? true : undefined, { what: 'invite at the newcomer' })
    expect((await events(newcomer, 'group.invite'))).toHaveLength(1)
    expect((await newcomer.api('POST', `/v1/groups/${groupId}/accept`)).status).toBe(202)
    await waitVersion([...members, newcomer], 8)
    expect((await group(newcomer))?.state).toBe('joined')
    await waitKeys(newcomer, 5)

    for (const [i, member] of [...members, newcomer].entries()) await send(member, `welcome round ${i}`)
    await waitFor(async () => (await incoming(newcomer)).length >= 5 ? true : undefined, { what: 'messages at the newcomer' })
    await new Promise(resolve => setTimeout(resolve, 300))
    const received = await incoming(newcomer)
    expect(received.map(m => m.text).sort()).toEqual([0, 1, 2, 3, 4].map(i => `welcome round ${i}`))
    for (const member of members) {
      await waitFor(async () => (await incoming(member)).some(m => m.sender === newcomer.peerId) ? true : undefined, { what: 'the newcomer\'s message' })
    }
  })

  it('a member offline during 10 messages gets all 10 when it returns, once, in order per sender', async () => {
    const offline = n[3]!
    const senders = [n[0]!, n[1]!, n[2]!, n[4]!]
    const online = [n[0]!, n[1]!, n[2]!, n[4]!, n[6]!]
    const before = (await incoming(offline)).length
    await offline.stop()

    const texts: string[] = []
    for (let i = 0; i < 10; i++) {
      const text = `while n3 was away ${i}`
      texts.push(text)
      await send(senders[i % senders.length]!, text)
    }
    for (const member of online) {
      await waitFor(async () => (await messages(member)).filter(m => m.text.startsWith('while n3')).length === 10 ? true : undefined, { what: 'the 10 at the others' })
    }

    // gossipsub re-offers what is in its message cache (about 5 s) to a peer that comes back:
    // wait that out, so that only catch-up from the members' history can bring the 10
    await new Promise(resolve => setTimeout(resolve, 6_000))
    const returned = await offline.restart(cleanup)
    n[3] = returned
    await waitFor(async () => (await incoming(returned)).length >= before + 10 ? true : undefined, { timeoutMs: 30_000, what: 'catch-up at the returning member' })
    await new Promise(resolve => setTimeout(resolve, 500))
    const all = await incoming(returned)
    expect(all).toHaveLength(before + 10)
    const caughtUp = all.filter(m => m.text.startsWith('while n3'))
    expect(caughtUp.map(m => m.text).sort()).toEqual([...texts].sort())
    // once each, and per sender in seq order — in the list and in the events
    const caughtUpEvents = (await events(returned, 'group.message')).map(e => e.data.message as GroupMessageRecord).filter(m => m.text.startsWith('while n3'))
    expect(caughtUpEvents).toHaveLength(10)
    for (const sender of senders) {
      const listed = caughtUp.filter(m => m.sender === sender.peerId).map(m => m.seq)
      const evented = caughtUpEvents.filter(m => m.sender === sender.peerId).map(m => m.seq)
      expect(listed).toEqual([...listed].sort((a, b) => a - b))
      expect(evented).toEqual(listed)
      expect(caughtUp.filter(m => m.sender === sender.peerId).map(m => m.text)).toEqual(texts.filter((_, i) => senders[i % senders.length] === sender))
    }
    expect(await stat(returned, 'group.history.stored')).toBeGreaterThanOrEqual(10)

    // and it is live again
    await send(n[1]!, 'welcome back')
    await waitFor(async () => (await incoming(returned)).some(m => m.text === 'welcome back') ? true : undefined, { what: 'a live message after the return' })
  })

  it('drives groups from the CLI: list, show, send, read; one clear line for a wrong name', async () => {
    const cli = async (node: InProcessDaemon, ...args: string[]) => await runCli(['--data-dir', node.options.dataDir, ...args])
    const list = await cli(n[1]!, 'groups', 'list')
    expect(list.code).toBe(0)
    expect(list.stdout).toContain('the six')
    expect(list.stdout).toContain(groupId)
    const show = await cli(n[1]!, 'groups', 'show', 'the six')
    expect(show.code).toBe(0)
    expect(show.stdout).toContain(`${n[0]!.peerId} (admin)`)
    const sent = await cli(n[1]!, 'groups', 'send', groupId, 'from', 'the', 'cli')
    expect(sent.stderr).toBe('')
    expect(sent.stdout).toMatch(/sent to \d+ peer\(s\)/)
    await waitFor(async () => (await incoming(n[2]!)).some(m => m.text === 'from the cli') ? true : undefined, { what: 'the CLI message' })
    const read = await cli(n[2]!, 'groups', 'read', 'the six', '-n', '3')
    expect(read.code).toBe(0)
    expect(read.stdout).toContain('from the cli')
    const wrong = await cli(n[1]!, 'groups', 'show', 'no such group')
    expect(wrong.code).toBe(1)
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1)
    expect(wrong.stderr).toMatch(/^octet: no group "no such group"/)
  })

  describe('hostile input', () => {
    const members = (): InProcessDaemon[] => [n[0]!, n[1]!, n[2]!, n[3]!, n[4]!, n[6]!]

    it('refuses a membership change signed by a non-admin, and a replayed old version', async () => {
      const insider = n[1]!
      const victims = members().filter(m => m !== insider)
      const [current] = (await insider.daemon.groups.versions(groupId)).slice(-1)
      const key = await loadOrCreateIdentity(insider.options.dataDir)
      // n1 is a member, not an admin: it "removes" n2
      const forged = await signMembership({
        ...current!,
        version: current!.version + 1,
        members: current!.members.filter(m => m !== n[2]!.peerId),
        prevHash: membershipHash(current!),
        author: insider.peerId,
        keyEpoch: current!.version + 1,
        createdAt: Date.now()
      }, key)
      const forgedBefore = await Promise.all(victims.map(async v => await stat(v, 'group.rejected.GROUP_FORGED')))
      await insider.messenger.commitPairwise([], [], victims.map(v => ({ peer: v.peerId, kind: 'group-control', body: encodeControl({ type: ControlType.MEMBERSHIP, groupId, chain: [forged] }) })))
      for (const [i, victim] of victims.entries()) {
        await waitFor(async () => await stat(victim, 'group.rejected.GROUP_FORGED') > (forgedBefore[i] ?? 0) ? true : undefined, { what: 'forged change refused' })
      }

      // a genuine old version, replayed
      const [old] = await insider.daemon.groups.versions(groupId)
      const staleBefore = await stat(n[4]!, 'group.rejected.GROUP_STALE')
      await insider.messenger.commitPairwise([], [], [{ peer: n[4]!.peerId, kind: 'group-control', body: encodeControl({ type: ControlType.MEMBERSHIP, groupId, chain: [old!] }) }])
      await waitFor(async () => await stat(n[4]!, 'group.rejected.GROUP_STALE') > staleBefore ? true : undefined, { what: 'replay refused' })

      for (const member of members()) {
        const view = await group(member)
        expect(view).toMatchObject({ version: 8, state: 'joined' })
        expect(view!.members).toContain(n[2]!.peerId)
      }
    })

    it('rejects in gossipsub validation a message from a non-member, a forged sender, a tampered payload and a copy with altered outer fields (keeping its content)', async () => {
      const outsider = n[7]!
      const insider = n[2]!
      const watcher = n[4]!
      const epoch = (await group(watcher))!.keyEpoch
      const count = async (code: string): Promise<number> => await stat(watcher, `group.rejected.${code}`)
      const before = { NOT_A_MEMBER: await count('NOT_A_MEMBER'), DECRYPT_FAILED: await count('DECRYPT_FAILED') }
      const heldBefore = (await messages(watcher)).length
      const junk = { groupId, seq: 1, sentAt: Date.now(), epoch, ciphertext: new Uint8Array(120).fill(9) }

      // the outsider, speaking for itself
      await outsider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ ...junk, sender: outsider.peerId }))
      // the outsider, claiming to be a member: only that member's sender key could have sealed it
      await outsider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ ...junk, seq: 100_000, sender: n[1]!.peerId }))
      // a member's genuine ciphertext with one byte flipped
      const sentAt = Date.now()
      const ciphertext = await insider.daemon.crypto.groupEncrypt(senderKeyName(groupId, epoch), encodeGroupPlaintext({ text: `${MARKER} tampered`, seq: 9999, sentAt }))
      ciphertext[ciphertext.length - 70]! ^= 0x01
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId, sender: insider.peerId, seq: 9999, sentAt, epoch, ciphertext }))

      // the forged sender and the tampered payload both fail to decrypt under the claimed sender's key
      await waitFor(async () => (await count('NOT_A_MEMBER') > before.NOT_A_MEMBER && await count('DECRYPT_FAILED') >= before.DECRYPT_FAILED + 2) ? true : undefined, { what: 'three rejections' })
      expect((await messages(watcher)).length).toBe(heldBefore)
      // the peer that passed them on paid for it in gossipsub score (P4, invalid deliveries)
      await waitFor(async () => watcher.daemon.node.pubsub.score(outsider.peerId) < 0 ? true : undefined, { what: 'a lower score for the outsider' })

      // a relay that alters the outer seq of a genuine message and gets its copy in first: the
      // watcher spends the message key on it, keeps the text under the sealed seq (once), and
      // refuses the copy; the unaltered copy behind it is a duplicate
      const seq = Math.max(0, ...(await messages(insider)).filter(m => m.sender === insider.peerId).map(m => m.seq)) + 1
      const relayedAt = Date.now()
      const sealed = await insider.daemon.crypto.groupEncrypt(senderKeyName(groupId, epoch), encodeGroupPlaintext({ text: `${MARKER} relayed`, seq, sentAt: relayedAt }))
      const malformedBefore = await count('MALFORMED_FRAME')
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId, sender: insider.peerId, seq: seq + 500, sentAt: relayedAt, epoch, ciphertext: sealed }))
      await waitFor(async () => await count('MALFORMED_FRAME') > malformedBefore ? true : undefined, { what: 'the altered copy refused' })
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId, sender: insider.peerId, seq, sentAt: relayedAt, epoch, ciphertext: sealed }))
      const relayed = (await incoming(watcher)).filter(m => m.text === `${MARKER} relayed`)
      expect(relayed.map(m => [m.sender, m.seq, m.sentAt])).toEqual([[insider.peerId, seq, relayedAt]])

      // and the group keeps working
      await send(n[0]!, 'still here')
      for (const member of members().filter(m => m !== n[0])) {
        await waitFor(async () => (await incoming(member)).some(m => m.text === 'still here') ? true : undefined, { what: 'a message after the attacks' })
      }
      expect((await incoming(watcher)).some(m => m.text.includes('tampered'))).toBe(false)
      // the unaltered copy of the relayed message, which came after it, changed nothing
      expect((await incoming(watcher)).filter(m => m.text === `${MARKER} relayed`)).toHaveLength(1)
    })

    it('refuses catch-up to a non-member and bad API input with clear errors', async () => {
      const stream = await n[7]!.daemon.node.libp2p.dialProtocol(parsePeerId(n[0]!.peerId), HISTORY_PROTOCOL)
      const refused = await callHistory(stream, { groupId, known: new Map(), limit: 0 }).catch(err => err)
      expect(isOctetError(refused, 'NOT_A_MEMBER')).toBe(true)
      expect(await stat(n[0]!, 'group.history.refused.NOT_A_MEMBER')).toBeGreaterThanOrEqual(1)

      const api = n[1]!
      const cases: Array<[string, string, unknown, number, string]> = [
        ['not an admin', `/v1/groups/${groupId}/invites`, { peerId: n[7]!.peerId }, 409, 'CONFLICT'],
        ['unknown group', `/v1/groups/${'0'.repeat(32)}/messages`, { text: 'x' }, 404, 'NOT_FOUND'],
        ['bad group id', '/v1/groups/nope/messages', { text: 'x' }, 400, 'BAD_REQUEST'],
        ['empty text', `/v1/groups/${groupId}/messages`, { text: '' }, 400, 'BAD_REQUEST'],
        ['text over 16 KiB', `/v1/groups/${groupId}/messages`, { text: 'x'.repeat(17 * 1024) }, 413, 'PAYLOAD_TOO_LARGE'],
        ['bad PeerId', `/v1/groups/${groupId}/invites`, { peerId: 'nobody' }, 400, 'BAD_REQUEST'],
        ['nameless group', '/v1/groups', { name: '' }, 400, 'BAD_REQUEST'],
        ['accept when already joined (a no-op)', `/v1/groups/${groupId}/accept`, undefined, 202, '']
      ]
      for (const [what, path, body, status, code] of cases) {
        const res = await api.api<{ error?: { code: string } }>('POST', path, body)
        expect(res.status, what).toBe(status)
        if (code !== '') expect(res.body.error?.code, what).toBe(code)
      }
      const openapi = await api.api<{ paths: Record<string, unknown> }>('GET', '/v1/openapi.json')
      expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/groups', '/v1/groups/{id}', '/v1/groups/{id}/messages', '/v1/groups/{id}/members/{peer}']))
    })
  })
})
