import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Ajv, type ValidateFunction } from 'ajv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readSse } from '../../src/client/sse.js'
import type { GroupMessageRecord, GroupView } from '../../src/groups/index.js'
import type { MessageRecord, OctetEvent } from '../../src/messaging/index.js'
import { Cleanup } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

/**
 * One vocabulary, over HTTP on one daemon: every message it sends is an event
 * (message.sent, group.message with our author), a message names its peer
 * `peerId` and its writer `author`, ids are 32 hex digits, group history
 * pages like a conversation, and a group operation that needs a member
 * answers 403 NOT_A_MEMBER saying why.
 */
describe('one vocabulary over HTTP', () => {
  const cleanup = new Cleanup()
  let node: InProcessDaemon
  let stranger: string
  /** the OpenAPI document's schema of one event: every event read here must match it */
  let documentedEvent: ValidateFunction

  beforeAll(async () => {
    node = await InProcessDaemon.start({ dataDir: await cleanup.tempDir('octet-vocab-') }, cleanup)
    // a peer that never comes online: a message to it is queued, and that is all this needs
    stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const doc = (await node.api<any>('GET', '/v1/openapi.json')).body
    documentedEvent = new Ajv().compile(doc.components.schemas.Event)
  })
  afterAll(async () => { await cleanup.run() })

  /** The events after `after` up to the newest one committed now, read from GET /v1/events. */
  const eventsSince = async (after: number): Promise<OctetEvent[]> => {
    const upTo = node.messenger.events.latestId
    const abort = AbortSignal.timeout(15_000)
    const res = await fetch(`${node.daemon.info().apiUrl}/v1/events?after=${after}`, { headers: { authorization: `Bearer ${node.token}` }, signal: abort })
    expect(res.status).toBe(200)
    const events: OctetEvent[] = []
    try {
      for await (const sse of readSse(res.body as ReadableStream<Uint8Array>)) {
        const event = JSON.parse(sse.data) as OctetEvent
        // what the daemon streams is what the OpenAPI document says it streams
        expect(documentedEvent(event), `${event.type}: ${JSON.stringify(documentedEvent.errors)}`).toBe(true)
        events.push(event)
        if (events.at(-1)!.id >= upTo) break
      }
    } finally {
      await res.body?.cancel().catch(() => {})
    }
    return events
  }

  it('a direct message we send is an event (message.sent) and names peerId and author', async () => {
    const after = node.messenger.events.latestId
    const sent = await node.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: stranger, text: 'hello' })
    expect(sent.status).toBe(202)
    const { message } = sent.body
    expect(message).toMatchObject({ peerId: stranger, author: node.peerId, direction: 'out' })
    expect(message.id).toMatch(/^[0-9a-f]{32}$/)
    expect(message).not.toHaveProperty('peer')
    const events = await eventsSince(after)
    const own = events.find((e): e is OctetEvent<'message.sent'> => e.type === 'message.sent')
    expect(own?.data.message).toEqual(message)
    expect(events.find(e => e.type === 'message.status')?.data).toEqual({ id: message.id, peerId: stranger, status: 'queued' })
    // the same names when read back, alone and in the conversation (whose route names the peer peerId)
    expect((await node.api<{ message: MessageRecord }>('GET', `/v1/messages/${message.id}`)).body.message).toMatchObject({ peerId: stranger, author: node.peerId })
    const page = await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${stranger}/messages`)
    expect(page.body.messages.map(m => m.id)).toEqual([message.id])
    const conversations = await node.api<{ conversations: Array<{ peerId: string }> }>('GET', '/v1/conversations')
    expect(conversations.body.conversations.map(c => c.peerId)).toEqual([stranger])
  })

  it('adding a contact creates it (201, Location); adding it again renames it (200)', async () => {
    const contact = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const created = await node.api<{ contact: { peerId: string } }>('POST', '/v1/contacts', { peerId: contact, name: 'first' })
    expect(created.status).toBe(201)
    expect(created.headers.get('location')).toBe(`/v1/contacts/${contact}`)
    const renamed = await node.api<{ contact: { name: string } }>('POST', '/v1/contacts', { peerId: contact, name: 'second' })
    expect(renamed.status).toBe(200)
    expect((await node.api<{ contact: { name: string } }>('GET', `/v1/contacts/${contact}`)).body.contact.name).toBe('second')
  })

  it('a group message we send is a group.message event with our author; history pages by before/after', async () => {
    const created = await node.api<{ group: GroupView }>('POST', '/v1/groups', { name: 'alone' })
    expect(created.status).toBe(201)
    const id = created.body.group.id
    expect(created.headers.get('location')).toBe(`/v1/groups/${id}`)
    const after = node.messenger.events.latestId
    const sent: GroupMessageRecord[] = []
    for (let i = 1; i <= 5; i++) {
      const res = await node.api<{ message: GroupMessageRecord }>('POST', `/v1/groups/${id}/messages`, { text: `m${i}` })
      expect(res.status).toBe(202)
      sent.push(res.body.message)
    }
    expect(sent.map(m => m.author)).toEqual(Array(5).fill(node.peerId))
    expect(sent.every(m => /^[0-9a-f]{32}$/.test(m.id))).toBe(true)
    expect(sent[0]).not.toHaveProperty('sender')

    const events = await eventsSince(after)
    const own = events.filter((e): e is OctetEvent<'group.message'> => e.type === 'group.message')
    expect(own.map(e => e.data.message)).toEqual(sent)
    expect(own.every(e => e.data.groupId === id && e.data.message.direction === 'out')).toBe(true)

    const texts = async (query: string): Promise<string[]> => {
      const res = await node.api<{ messages: GroupMessageRecord[] }>('GET', `/v1/groups/${id}/messages?${query}`)
      expect(res.status, query).toBe(200)
      return res.body.messages.map(m => m.text)
    }
    const idOf = (i: number): string => sent[i - 1]!.id
    expect(await texts('limit=2')).toEqual(['m4', 'm5'])
    expect(await texts(`limit=2&before=${idOf(4)}`)).toEqual(['m2', 'm3'])
    expect(await texts(`limit=2&before=${idOf(2)}`)).toEqual(['m1'])
    expect(await texts(`limit=2&after=${idOf(1)}`)).toEqual(['m2', 'm3'])
    expect(await texts(`limit=2&after=${idOf(3)}`)).toEqual(['m4', 'm5'])
    expect(await texts(`after=${idOf(5)}`)).toEqual([])
    expect((await node.api('GET', `/v1/groups/${id}/messages?before=nope`)).status).toBe(400)
    expect((await node.api('GET', `/v1/groups/${id}/messages?before=${'f'.repeat(32)}`)).status).toBe(404)
  })

  it('answers 403 NOT_A_MEMBER, saying why, once we left; 404 only for a group it never heard of', async () => {
    const { id } = (await node.api<{ group: GroupView }>('POST', '/v1/groups', { name: 'left behind' })).body.group
    const left = await node.api<{ group: GroupView }>('POST', `/v1/groups/${id}/leave`)
    expect(left.status).toBe(202)
    expect(left.body.group.state).toBe('left')
    for (const [path, body] of [[`/v1/groups/${id}/messages`, { text: 'still here?' }], [`/v1/groups/${id}/invites`, { peerId: stranger }]] as const) {
      const res = await node.api<{ error: { code: string, message: string } }>('POST', path, body)
      expect(res.status, path).toBe(403)
      expect(res.body.error.code, path).toBe('NOT_A_MEMBER')
      expect(res.body.error.message, path).toMatch(/you left/)
    }
    const removal = await node.api<{ error: { code: string } }>('DELETE', `/v1/groups/${id}/members/${stranger}`)
    expect(removal.status).toBe(403)
    expect(removal.body.error.code).toBe('NOT_A_MEMBER')
    // what it held stays readable
    expect((await node.api('GET', `/v1/groups/${id}/messages`)).status).toBe(200)
    const unknown = await node.api<{ error: { code: string } }>('POST', `/v1/groups/${'0'.repeat(32)}/messages`, { text: 'x' })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('NOT_FOUND')
  })
})
