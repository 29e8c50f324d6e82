import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../../src/datadir.js'
import { ControlType, decodeGroupMessage, encodeControl, encodeGroupMessage, encodeGroupPlaintext } from '../../src/groups/codec.js'
import { HISTORY_PROTOCOL, groupMessageId, senderKeyName, type GroupView } from '../../src/groups/index.js'
import { callHistory } from '../../src/groups/history.js'
import { membershipHash, signMembership } from '../../src/groups/membership.js'
import { parsePeerId } from '../../src/node/index.js'
import { isOctetError } from '../../src/errors.js'
import { Cleanup, runCli, waitFor } from '../helpers/daemon.js'
import { capture, events, formGroup, gossiped, group, incoming, messages, send, stat, waitIncoming, waitSubscribed, waitVersion } from '../helpers/groups.js'
import { InProcessDaemon } from '../helpers/inproc.js'

/**
 * Eight whole daemons in this process over TCP on 127.0.0.1, started once
 * for the file. Each test forms a group of its own among them (the nodes it
 * leaves out are the outsiders) and waits on outcomes it can observe: a
 * view, a message, an event, a counter, a subscription — never on time.
 * In-process (test/helpers/inproc.ts), not `octet daemon` processes: the
 * hostile-input tests forge membership changes and gossip from inside a
 * member (its messenger, its gossipsub), and eight processes would cost
 * ~5 s of CPU more to start on two cores.
 */
describe('group conversations over gossipsub with Sender Keys', () => {
  const cleanup = new Cleanup()
  const n: InProcessDaemon[] = []
  const MARKER = 'PLAINTEXT-MARKER'
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
  })
  afterAll(async () => { await cleanup.run() })

  it('forms a group of six through signed invites: same members, admins and version everywhere', async () => {
    const { id, members } = await formGroup('the six', n[0]!, n.slice(1, 6))
    const views = await Promise.all(members.map(async m => await group(m, id)))
    const peerIds = members.map(x => x.peerId).sort()
    const expected = views[0]!
    // one version per member added after the first
    expect(expected.version).toBe(members.length)
    for (const view of views) {
      expect(view).toMatchObject({ state: 'joined', version: expected.version, keyEpoch: expected.keyEpoch, admins: [n[0]!.peerId] })
      expect([...view!.members].sort()).toEqual(peerIds)
    }
    for (const invitee of members.slice(1)) {
      expect(await events(invitee, id, 'group.invite')).toHaveLength(1)
      expect(await events(invitee, id, 'group.joined')).toHaveLength(1)
    }
    expect((await events(n[0]!, id, 'group.member.added')).map(e => e.data.peerId).sort()).toEqual(members.slice(1).map(x => x.peerId).sort())
    // the non-members know nothing of it
    for (const outsider of n.slice(6)) {
      expect((await outsider.api<{ groups: GroupView[] }>('GET', '/v1/groups')).body.groups.map(g => g.id)).not.toContain(id)
      expect((await outsider.api('GET', `/v1/groups/${id}`)).status).toBe(404)
    }
  })

  it('every member gets every other member\'s messages exactly once; non-members on the mesh see only ciphertext', async () => {
    const { id, topic, members } = await formGroup('exactly once', n[0]!, n.slice(1, 6))
    const outsiders = n.slice(6)
    const observed = outsiders.map(outsider => capture(outsider, topic))
    await waitSubscribed([n[1]!], outsiders, topic)
    const decryptFailedBefore = await Promise.all(members.map(async m => await stat(m, 'group.rejected.DECRYPT_FAILED')))

    const sent = new Map<string, string[]>()
    for (let round = 0; round < 3; round++) {
      await Promise.all(members.map(async (member, i) => {
        const text = `${MARKER} ${i}/${round}`
        await send(member, id, text)
        sent.set(member.peerId, [...sent.get(member.peerId) ?? [], text])
      }))
    }
    const expected = 3 * (members.length - 1)
    for (const member of members) await waitIncoming(member, id, `${expected} messages`, received => received.length >= expected)
    // a last message from each, after the others: once it is in, any duplicate of those would be too
    await Promise.all(members.map(async (member, i) => await send(member, id, `fence ${i}`)))
    for (const member of members) await waitIncoming(member, id, 'the fences', received => received.filter(m => m.text.startsWith('fence')).length === members.length - 1)
    for (const member of members) {
      const received = (await incoming(member, id)).filter(m => !m.text.startsWith('fence'))
      expect(received).toHaveLength(expected)
      expect(new Set(received.map(m => m.id)).size).toBe(expected)
      for (const other of members.filter(m => m !== member)) {
        const fromOther = received.filter(m => m.author === other.peerId)
        expect(fromOther.map(m => m.text)).toEqual(sent.get(other.peerId))
        expect(fromOther.map(m => m.seq)).toEqual([1, 2, 3])
      }
      // the others' messages and fences, and its own four (an event for every message, ours too)
      const groupMessages = (await events(member, id, 'group.message')).map(e => e.data.message)
      expect(groupMessages).toHaveLength(expected + members.length - 1 + 4)
      expect(groupMessages.filter(m => m.author === member.peerId).map(m => m.direction)).toEqual(['out', 'out', 'out', 'out'])
    }
    for (const [i, member] of members.entries()) expect(await stat(member, 'group.rejected.DECRYPT_FAILED')).toBe(decryptFailedBefore[i])

    // what passed the outsiders: every message, and not one byte of text
    const published = members.length * 4
    for (const [i, seen] of observed.entries()) {
      await waitFor(async () => seen.length >= published ? true : undefined, { what: `${published} messages seen by outsider ${i}` })
      const marker = Buffer.from(MARKER)
      for (const message of seen) expect(Buffer.from(message.data).includes(marker)).toBe(false)
      const first = decodeGroupMessage(seen[0]!.data)
      const attempt = await outsiders[i]!.daemon.crypto.groupDecrypt(first.sender, senderKeyName(id, first.epoch), first.ciphertext).catch(err => err)
      expect(isOctetError(attempt, 'NO_SESSION')).toBe(true)
      expect(await events(outsiders[i]!, id, 'group.message')).toEqual([])
      outsiders[i]!.daemon.node.pubsub.unsubscribe(topic)
    }
  })

  it('removing a member rotates keys: it gets nothing sent afterwards and cannot decrypt it', async () => {
    const removed = n[5]!
    const { id, topic, members, version } = await formGroup('rotation', n[0]!, [n[1]!, n[2]!, removed])
    const remaining = members.filter(m => m !== removed)
    const epochBefore = (await group(n[0]!, id))!.keyEpoch
    const heldBefore = (await messages(removed, id)).length

    const res = await n[0]!.api<{ group: GroupView }>('DELETE', `/v1/groups/${id}/members/${removed.peerId}`)
    expect(res.status).toBe(202)
    // a removal is a new version and starts a key epoch named after it
    const after = res.body.group
    expect(after.version).toBe(version + 1)
    expect(after.keyEpoch).toBe(after.version)
    expect(after.keyEpoch).not.toBe(epochBefore)
    expect(after.members).not.toContain(removed.peerId)
    await waitVersion(remaining, id, after.version)
    await waitFor(async () => (await group(removed, id))?.state === 'removed' ? true : undefined, { what: 'removed state' })
    expect((await events(n[1]!, id, 'group.member.removed')).map(e => e.data.peerId)).toEqual([removed.peerId])

    // the removed node (say, a modified one) stays on the topic and keeps what passes
    const seen = capture(removed, topic)
    await waitSubscribed([n[1]!], [removed], topic)
    const sentAfter = await Promise.all(remaining.map(async (member, i) => await send(member, id, `${MARKER} after removal ${i}`)))
    expect(sentAfter.every(m => m.epoch === after.keyEpoch)).toBe(true)
    // each remaining member reads the others' new-epoch messages: the new keys went round
    for (const member of remaining) {
      await waitIncoming(member, id, 'messages after removal', received => received.filter(m => m.text.includes('after removal')).length === remaining.length - 1)
    }
    await waitFor(async () => seen.length >= remaining.length ? true : undefined, { what: 'ciphertexts captured at the removed node' })
    for (const captured of seen) {
      const message = decodeGroupMessage(captured.data)
      expect(message.epoch).toBe(after.keyEpoch)
      // no key for the new epoch, and the old epoch's key does not open it either
      const newEpoch = await removed.daemon.crypto.groupDecrypt(message.sender, senderKeyName(id, after.keyEpoch), message.ciphertext).catch(err => err)
      expect(isOctetError(newEpoch, 'NO_SESSION')).toBe(true)
      const oldEpoch = await removed.daemon.crypto.groupDecrypt(message.sender, senderKeyName(id, epochBefore), message.ciphertext).catch(err => err)
      expect(isOctetError(oldEpoch, 'DECRYPT_FAILED')).toBe(true)
    }
    expect((await messages(removed, id)).length).toBe(heldBefore)
    removed.daemon.node.pubsub.unsubscribe(topic)
    // its API says what happened: 403 NOT_A_MEMBER, removed (the group itself stays known: not 404)
    const refusedSend = await removed.api<{ error: { code: string, message: string } }>('POST', `/v1/groups/${id}/messages`, { text: 'am I still in?' })
    expect(refusedSend.status).toBe(403)
    expect(refusedSend.body.error.code).toBe('NOT_A_MEMBER')
    expect(refusedSend.body.error.message).toMatch(/removed/)
    // and it cannot ask for history either
    const stream = await removed.daemon.node.libp2p.dialProtocol(parsePeerId(n[1]!.peerId), HISTORY_PROTOCOL)
    const refused = await callHistory(stream, { groupId: id, known: new Map(), limit: 0 }).catch(err => err)
    expect(isOctetError(refused, 'NOT_A_MEMBER')).toBe(true)
  })

  it('an added member reads what is sent after it joined, and nothing from before', async () => {
    const newcomer = n[6]!
    const { id, topic, members } = await formGroup('newcomer', n[0]!, [n[1]!, n[2]!])
    for (const [i, member] of members.entries()) await send(member, id, `before the newcomer ${i}`)
    for (const member of members) await waitIncoming(member, id, 'the messages before', received => received.length === members.length - 1)

    expect((await n[0]!.api('POST', `/v1/groups/${id}/invites`, { peerId: newcomer.peerId })).status).toBe(202)
    await waitFor(async () => (await group(newcomer, id))?.state === 'invited' ? true : undefined, { what: 'invite at the newcomer' })
    expect(await events(newcomer, id, 'group.invite')).toHaveLength(1)
    expect((await newcomer.api('POST', `/v1/groups/${id}/accept`)).status).toBe(202)
    const joined = await waitFor(async () => {
      const view = await group(newcomer, id)
      return view?.state === 'joined' ? view : undefined
    }, { what: 'the newcomer joined' })
    await waitVersion(members, id, joined.version)
    const everyone = [...members, newcomer]
    await waitSubscribed(everyone, everyone, topic)

    for (const [i, member] of everyone.entries()) await send(member, id, `welcome round ${i}`)
    for (const member of everyone) {
      await waitIncoming(member, id, 'the welcome round', received => received.filter(m => m.text.startsWith('welcome round')).length === everyone.length - 1)
    }
    // the members' history holds the messages from before: a member serves the newcomer none of them
    const stream = await newcomer.daemon.node.libp2p.dialProtocol(parsePeerId(n[1]!.peerId), HISTORY_PROTOCOL)
    const served = (await callHistory(stream, { groupId: id, known: new Map(), limit: 1000 })).map(bytes => decodeGroupMessage(bytes))
    const received = await incoming(newcomer, id)
    expect(served.map(m => groupMessageId(id, m.sender, m.seq)).sort()).toEqual(received.map(m => m.id).sort())
    // and catching up brings none of them either
    const report = await newcomer.daemon.groups.catchUp(id)
    expect(report.asked).toBeGreaterThan(0)
    expect((await incoming(newcomer, id)).map(m => m.text).sort()).toEqual(members.map((_, i) => `welcome round ${i}`))
  })

  it('a member offline during 10 messages gets all 10 when it returns, once, in order per sender', async () => {
    const { id, topic, members } = await formGroup('offline', n[0]!, [n[1]!, n[2]!, n[3]!])
    const offline = n[3]!
    const senders = members.filter(m => m !== offline)
    await offline.stop()

    const texts: string[] = []
    for (let i = 0; i < 10; i++) {
      const text = `while n3 was away ${i}`
      texts.push(text)
      await send(senders[i % senders.length]!, id, text)
    }
    for (const member of senders) {
      await waitFor(async () => (await messages(member, id)).filter(m => m.text.startsWith('while n3')).length === 10 ? true : undefined, { what: 'the 10 at the others' })
    }

    // gossipsub offers (IHAVE) what its message cache still gossips to a peer that comes back:
    // wait until no member offers any of it, so that only catch-up from the members' history
    // can bring the 10
    await waitFor(async () => senders.every(member => gossiped(member, topic) === 0) ? true : undefined, { what: 'the message caches to stop offering the 10' })
    const returned = await offline.restart(cleanup)
    n[3] = returned
    await waitIncoming(returned, id, 'catch-up', received => received.length >= 10)
    // and it is live again; once this is in, a duplicate of the 10 would be too
    await send(n[1]!, id, 'welcome back')
    await waitIncoming(returned, id, 'a live message after the return', received => received.some(m => m.text === 'welcome back'))
    const all = await incoming(returned, id)
    expect(all).toHaveLength(11)
    const caughtUp = all.filter(m => m.text.startsWith('while n3'))
    expect(caughtUp.map(m => m.text).sort()).toEqual([...texts].sort())
    // once each, and per sender in seq order — in the list and in the events
    const caughtUpEvents = (await events(returned, id, 'group.message')).map(e => e.data.message).filter(m => m.text.startsWith('while n3'))
    expect(caughtUpEvents).toHaveLength(10)
    for (const sender of senders) {
      const listed = caughtUp.filter(m => m.author === sender.peerId).map(m => m.seq)
      const evented = caughtUpEvents.filter(m => m.author === sender.peerId).map(m => m.seq)
      expect(listed).toEqual([...listed].sort((a, b) => a - b))
      expect(evented).toEqual(listed)
      expect(caughtUp.filter(m => m.author === sender.peerId).map(m => m.text)).toEqual(texts.filter((_, i) => senders[i % senders.length] === sender))
    }
    expect(await stat(returned, 'group.history.stored')).toBeGreaterThanOrEqual(10)
  })

  it('drives groups from the CLI: list, show, send, read; one clear line for a wrong name', async () => {
    const { id } = await formGroup('the cli group', n[0]!, [n[1]!, n[2]!])
    const cli = async (node: InProcessDaemon, ...args: string[]) => await runCli(['--data-dir', node.options.dataDir, ...args])
    const list = await cli(n[1]!, 'groups', 'list')
    expect(list.code).toBe(0)
    expect(list.stdout).toContain('the cli group')
    expect(list.stdout).toContain(id)
    const show = await cli(n[1]!, 'groups', 'show', 'the cli group')
    expect(show.code).toBe(0)
    expect(show.stdout).toContain(`${n[0]!.peerId} (admin)`)
    const sent = await cli(n[1]!, 'groups', 'send', id, 'from', 'the', 'cli')
    expect(sent.stderr).toBe('')
    expect(sent.stdout).toMatch(/sent to \d+ peer\(s\)/)
    await waitIncoming(n[2]!, id, 'the CLI message', received => received.some(m => m.text === 'from the cli'))
    const read = await cli(n[2]!, 'groups', 'read', 'the cli group', '-n', '3')
    expect(read.code).toBe(0)
    expect(read.stdout).toContain('from the cli')
    const wrong = await cli(n[1]!, 'groups', 'show', 'no such group')
    expect(wrong.code).toBe(1)
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1)
    expect(wrong.stderr).toMatch(/^octet: no group "no such group"/)
  })

  describe('hostile input', () => {
    it('refuses a membership change signed by a non-admin, and a replayed old version', async () => {
      const { id, members, version } = await formGroup('forgeries', n[0]!, [n[1]!, n[2]!, n[4]!])
      const insider = n[1]!
      const victims = members.filter(m => m !== insider)
      const [current] = (await insider.daemon.groups.versions(id)).slice(-1)
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
      await insider.messenger.commitPairwise([], [], victims.map(v => ({ peer: v.peerId, kind: 'group-control', body: encodeControl({ type: ControlType.MEMBERSHIP, groupId: id, chain: [forged] }) })))
      for (const [i, victim] of victims.entries()) {
        await waitFor(async () => await stat(victim, 'group.rejected.GROUP_FORGED') > (forgedBefore[i] ?? 0) ? true : undefined, { what: 'forged change refused' })
      }

      // a genuine old version, replayed
      const [old] = await insider.daemon.groups.versions(id)
      const staleBefore = await stat(n[4]!, 'group.rejected.GROUP_STALE')
      await insider.messenger.commitPairwise([], [], [{ peer: n[4]!.peerId, kind: 'group-control', body: encodeControl({ type: ControlType.MEMBERSHIP, groupId: id, chain: [old!] }) }])
      await waitFor(async () => await stat(n[4]!, 'group.rejected.GROUP_STALE') > staleBefore ? true : undefined, { what: 'replay refused' })

      for (const member of members) {
        const view = await group(member, id)
        expect(view).toMatchObject({ version, state: 'joined' })
        expect(view!.members).toContain(n[2]!.peerId)
      }
    })

    it('rejects in gossipsub validation a message from a non-member, a forged sender, a tampered payload and a copy with altered outer fields (keeping its content)', async () => {
      const { id, topic, members } = await formGroup('validation', n[0]!, [n[1]!, n[2]!, n[4]!])
      const outsider = n[7]!
      const insider = n[2]!
      const watcher = n[4]!
      // the outsider, not on the topic, knows who is: what it publishes goes to them
      await waitSubscribed([outsider], members, topic)
      const epoch = (await group(watcher, id))!.keyEpoch
      const count = async (code: string): Promise<number> => await stat(watcher, `group.rejected.${code}`)
      const before = { NOT_A_MEMBER: await count('NOT_A_MEMBER'), DECRYPT_FAILED: await count('DECRYPT_FAILED') }
      const heldBefore = (await messages(watcher, id)).length
      const junk = { groupId: id, seq: 1, sentAt: Date.now(), epoch, ciphertext: new Uint8Array(120).fill(9) }

      // the outsider, speaking for itself
      await outsider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ ...junk, sender: outsider.peerId }))
      // the outsider, claiming to be a member: only that member's sender key could have sealed it
      await outsider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ ...junk, seq: 100_000, sender: n[1]!.peerId }))
      // a member's genuine ciphertext with one byte flipped
      const sentAt = Date.now()
      const ciphertext = await insider.daemon.crypto.groupEncrypt(senderKeyName(id, epoch), encodeGroupPlaintext({ text: `${MARKER} tampered`, seq: 9999, sentAt }))
      ciphertext[ciphertext.length - 70]! ^= 0x01
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId: id, sender: insider.peerId, seq: 9999, sentAt, epoch, ciphertext }))

      // the forged sender and the tampered payload both fail to decrypt under the claimed sender's key
      await waitFor(async () => (await count('NOT_A_MEMBER') > before.NOT_A_MEMBER && await count('DECRYPT_FAILED') >= before.DECRYPT_FAILED + 2) ? true : undefined, { what: 'three rejections' })
      expect((await messages(watcher, id)).length).toBe(heldBefore)
      // the peer that passed them on paid for it in gossipsub score (P4, invalid deliveries)
      await waitFor(async () => watcher.daemon.node.pubsub.score(outsider.peerId) < 0 ? true : undefined, { what: 'a lower score for the outsider' })

      // a relay that alters the outer seq of a genuine message and gets its copy in first: the
      // watcher spends the message key on it, keeps the text under the sealed seq (once), and
      // refuses the copy; the unaltered copy behind it is a duplicate
      const seq = Math.max(0, ...(await messages(insider, id)).filter(m => m.author === insider.peerId).map(m => m.seq)) + 1
      const relayedAt = Date.now()
      const sealed = await insider.daemon.crypto.groupEncrypt(senderKeyName(id, epoch), encodeGroupPlaintext({ text: `${MARKER} relayed`, seq, sentAt: relayedAt }))
      const malformedBefore = await count('MALFORMED_FRAME')
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId: id, sender: insider.peerId, seq: seq + 500, sentAt: relayedAt, epoch, ciphertext: sealed }))
      await waitFor(async () => await count('MALFORMED_FRAME') > malformedBefore ? true : undefined, { what: 'the altered copy refused' })
      await insider.daemon.node.pubsub.publish(topic, encodeGroupMessage({ groupId: id, sender: insider.peerId, seq, sentAt: relayedAt, epoch, ciphertext: sealed }))
      const relayed = (await incoming(watcher, id)).filter(m => m.text === `${MARKER} relayed`)
      expect(relayed.map(m => [m.author, m.seq, m.sentAt])).toEqual([[insider.peerId, seq, relayedAt]])

      // and the group keeps working
      await send(n[0]!, id, 'still here')
      for (const member of members.filter(m => m !== n[0])) {
        await waitIncoming(member, id, 'a message after the attacks', received => received.some(m => m.text === 'still here'))
      }
      expect((await incoming(watcher, id)).some(m => m.text.includes('tampered'))).toBe(false)
      // the unaltered copy of the relayed message, which came after it, changed nothing
      expect((await incoming(watcher, id)).filter(m => m.text === `${MARKER} relayed`)).toHaveLength(1)
    })

    it('refuses catch-up to a non-member and bad API input with clear errors', async () => {
      const { id } = await formGroup('refusals', n[0]!, [n[1]!])
      const refusedBefore = await stat(n[0]!, 'group.history.refused.NOT_A_MEMBER')
      const stream = await n[7]!.daemon.node.libp2p.dialProtocol(parsePeerId(n[0]!.peerId), HISTORY_PROTOCOL)
      const refused = await callHistory(stream, { groupId: id, known: new Map(), limit: 0 }).catch(err => err)
      expect(isOctetError(refused, 'NOT_A_MEMBER')).toBe(true)
      expect(await stat(n[0]!, 'group.history.refused.NOT_A_MEMBER')).toBe(refusedBefore + 1)

      const api = n[1]!
      const cases: Array<[string, string, unknown, number, string]> = [
        ['not an admin', `/v1/groups/${id}/invites`, { peerId: n[7]!.peerId }, 403, 'NOT_AN_ADMIN'],
        ['unknown group', `/v1/groups/${'0'.repeat(32)}/messages`, { text: 'x' }, 404, 'NOT_FOUND'],
        ['bad group id', '/v1/groups/nope/messages', { text: 'x' }, 400, 'BAD_REQUEST'],
        ['empty text', `/v1/groups/${id}/messages`, { text: '' }, 400, 'BAD_REQUEST'],
        ['text over 16 KiB', `/v1/groups/${id}/messages`, { text: 'x'.repeat(17 * 1024) }, 413, 'PAYLOAD_TOO_LARGE'],
        ['bad PeerId', `/v1/groups/${id}/invites`, { peerId: 'nobody' }, 400, 'BAD_REQUEST'],
        ['nameless group', '/v1/groups', { name: '' }, 400, 'BAD_REQUEST'],
        ['accept when already joined (a no-op)', `/v1/groups/${id}/accept`, undefined, 202, '']
      ]
      for (const [what, path, body, status, code] of cases) {
        const res = await api.api<{ error?: { code: string } }>('POST', path, body)
        expect(res.status, what).toBe(status)
        if (code !== '') expect(res.body.error?.code, what).toBe(code)
      }
      const openapi = await api.api<{ paths: Record<string, unknown> }>('GET', '/v1/openapi.json')
      expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/groups', '/v1/groups/{id}', '/v1/groups/{id}/messages', '/v1/groups/{id}/members/{peerId}']))
    })
  })
})
