import { cp, rm } from 'node:fs/promises'
import { lpStream } from '@libp2p/utils'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DM_PROTOCOL } from '../../src/messaging/constants.js'
import type { MessageRecord } from '../../src/messaging/index.js'
import { parsePeerId } from '../../src/node/index.js'
import { AckStatus, Kind, decodeDmFrame, encodeBatch, encodeDmFrame, encodePlaintext, type Ack, type BatchItem, type Envelope } from '../../src/wire/codec.js'
import { messageIdToHex, newMessageId } from '../../src/wire/ids.js'
import { WIRE_VERSION } from '../../src/wire/limits.js'
import { Cleanup, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'

// In-process (test/helpers/inproc.ts), not `octet daemon` processes: the rate-limit case needs
// an override (overrides.inboundRate), the hostile-input cases open raw DM streams from inside
// a daemon's libp2p node, and the 1,000-message case queues through the messenger directly
// (over HTTP it would measure the API, not delivery).

/**
 * Three (and a fourth, hostile) real nodes over TCP on 127.0.0.1, each a
 * whole daemon with its HTTP API; A and C are introduced only by B.
 */
describe('one-to-one messages between real nodes', () => {
  const cleanup = new Cleanup()
  let a: InProcessDaemon
  let b: InProcessDaemon
  let c: InProcessDaemon

  beforeAll(async () => {
    b = await InProcessDaemon.start({ dataDir: await cleanup.tempDir() }, cleanup)
    ;[a, c] = await Promise.all([
      InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup),
      InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup)
    ])
  })
  afterAll(async () => { await cleanup.run() })

  const history = async (node: InProcessDaemon, peer: string, limit = 1000): Promise<MessageRecord[]> =>
    (await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer}/messages?limit=${limit}`)).body.messages

  it('A reaches C with no prior connection: C reads the text, A sees delivered', async () => {
    // the first send must find C, not reuse a connection: hang up until none is left (the
    // nodes' own DHT traffic may connect them again in between)
    await waitFor(async () => {
      await a.api('DELETE', `/v1/peers/${c.peerId}`)
      const peers = (await a.api<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')).body.peers
      return peers.some(p => p.peerId === c.peerId) ? undefined : true
    }, { what: 'A without a connection to C' })

    const sent = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'hello C, this is A' })
    expect(sent.status).toBe(202)
    const id = sent.body.message.id

    const delivered = await waitFor(async () => {
      const { body } = await a.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)
      return body.message.status === 'delivered' ? body.message : undefined
    }, { what: 'delivered status' })
    expect(delivered.seq).toBe(1)

    const received = await history(c, a.peerId)
    expect(received).toHaveLength(1)
    expect(received[0]).toMatchObject({ id, direction: 'in', text: 'hello C, this is A', seq: 1, status: 'delivered' })
    // a stranger's first message is a contact request
    const contact = await c.api<{ contact: { state: string } }>('GET', `/v1/contacts/${a.peerId}`)
    expect(contact.body.contact.state).toBe('pending')
  })

  it('1,000 messages A→C arrive exactly once and in order', async () => {
    const texts = Array.from({ length: 1000 }, (_, i) => `bulk message ${i}`)
    const ids: string[] = []
    for (const text of texts) ids.push((await a.messenger.send({ to: c.peerId, text })).message.id)

    // the newest page of 1000 is exactly the bulk once the last one is in
    const bulk = await waitFor(async () => {
      const messages = await history(c, a.peerId, 1000)
      return messages.at(-1)?.text === texts.at(-1) ? messages : undefined
    }, { timeoutMs: 60_000, what: '1000 messages at C' })
    const received = bulk
    expect(bulk.map(m => m.text)).toEqual(texts)
    expect(bulk.map(m => m.id)).toEqual(ids)
    expect(new Set(received.map(m => m.id)).size).toBe(received.length)
    const seqs = bulk.map(m => m.seq)
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))

    await waitFor(async () => {
      const statuses = await Promise.all(ids.slice(-20).map(async id => (await a.messenger.message(id)).status))
      return statuses.every(s => s === 'delivered') ? true : undefined
    }, { what: 'delivered statuses' })
    const conversation = (await c.api<{ conversations: Array<{ peerId: string, gaps: number[] }> }>('GET', '/v1/conversations')).body.conversations
    expect(conversation.find(x => x.peerId === a.peerId)?.gaps).toEqual([])
    // a burst goes out as BATCH envelopes (several messages, one Signal message)
    const counters = (await c.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters
    expect(counters['dm.batches']).toBeGreaterThan(0)
  })

  it('read receipts: C marks a message read and A sees read', async () => {
    const { body } = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'please read me' })
    await waitFor(async () => (await history(c, a.peerId, 1)).at(-1)?.id === body.message.id ? true : undefined, { what: 'arrival' })
    const read = await c.api<{ message: MessageRecord }>('POST', `/v1/messages/${body.message.id}/read`)
    expect(read.status).toBe(200)
    expect(read.body.message.status).toBe('read')
    await waitFor(async () => (await a.messenger.message(body.message.id)).status === 'read' ? true : undefined, { what: 'read status at A' })
  })

  it('a repeated POST with the same Idempotency-Key creates one message', async () => {
    const key = `bridge-retry-${Date.now()}`
    const first = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'exactly once' }, { 'idempotency-key': key })
    const second = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'exactly once' }, { 'idempotency-key': key })
    expect(first.status).toBe(202)
    expect(second.status).toBe(202)
    expect(second.body.message.id).toBe(first.body.message.id)
    expect(second.headers.get('idempotent-replayed')).toBe('true')
    const conflict = await a.api('POST', '/v1/messages', { to: c.peerId, text: 'something else' }, { 'idempotency-key': key })
    expect(conflict.status).toBe(409)
    await waitFor(async () => (await history(c, a.peerId, 5)).some(m => m.id === first.body.message.id) ? true : undefined, { what: 'arrival' })
    const copies = (await history(c, a.peerId)).filter(m => m.text === 'exactly once')
    expect(copies).toHaveLength(1)
  })

  it('API input errors: bad PeerId 400, oversized text 413, unknown message 404, no token 401, bad JSON 400', async () => {
    expect((await a.api('POST', '/v1/messages', { to: 'not-a-peer', text: 'x' })).status).toBe(400)
    expect((await a.api('POST', '/v1/messages', { to: c.peerId, text: 'x'.repeat(17 * 1024) })).status).toBe(413)
    expect((await a.api('POST', '/v1/messages', { to: c.peerId, text: 'x'.repeat(70 * 1024) })).status).toBe(413)
    expect((await a.api('POST', '/v1/messages', { to: c.peerId })).status).toBe(400)
    expect((await a.api('POST', '/v1/messages', '{"to":')).status).toBe(400)
    const missing = await a.api<{ error: { code: string } }>('GET', `/v1/messages/${'0'.repeat(32)}`)
    expect(missing.status).toBe(404)
    expect(missing.body.error.code).toBe('NOT_FOUND')
    const res = await fetch(`${a.daemon.info().apiUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: c.peerId, text: 'x' }) })
    expect(res.status).toBe(401)
  })

  it('a blocked peer\'s messages are refused and not stored; unblocking lets them through', async () => {
    const before = (await history(c, a.peerId)).length
    expect((await c.api('POST', `/v1/contacts/${a.peerId}/block`)).status).toBe(200)
    const { body } = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text: 'while blocked' })
    const failed = await waitFor(async () => {
      const message = await a.messenger.message(body.message.id)
      return message.status === 'failed' ? message : undefined
    }, { what: 'failed status' })
    expect(failed.reason).toMatch(/BLOCKED/)
    expect((await history(c, a.peerId)).length).toBe(before)

    expect((await c.api('POST', `/v1/contacts/${a.peerId}/accept`)).status).toBe(200)
    const again = await a.messenger.send({ to: c.peerId, text: 'after unblock' })
    await waitFor(async () => (await a.messenger.message(again.message.id)).status === 'delivered' ? true : undefined, { what: 'delivery after unblock' })
    expect((await history(c, a.peerId)).map(m => m.text)).not.toContain('while blocked')
  })

  it('a per-peer inbound rate limit slows a flood down; the sender backs off and nothing is lost', async () => {
    const r = await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress], overrides: { inboundRate: { perSecond: 10, burst: 10 } } }, cleanup)
    // the session first: otherwise the whole flood can pile up while it is set up and go as
    // one batch from a full bucket, which the limit lets through (into debt) by design
    const first = await a.messenger.send({ to: r.peerId, text: 'flood 0' })
    await waitFor(async () => (await a.messenger.message(first.message.id)).status === 'delivered' ? true : undefined, { what: 'the first message' })
    const texts = Array.from({ length: 30 }, (_, i) => `flood ${i}`)
    for (const text of texts.slice(1)) await a.messenger.send({ to: r.peerId, text })
    const received = await waitFor(async () => {
      const messages = await r.messenger.history(a.peerId, { limit: 100 })
      return messages.length >= texts.length ? messages : undefined
    }, { timeoutMs: 60_000, what: 'the flood, slowed down' })
    expect(received.map(m => m.text)).toEqual(texts)
    const counters = (await r.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters
    expect(counters['dm.rejected.RATE_LIMITED']).toBeGreaterThan(0)
  })

  it('a sender restored from a backup (its ratchet went back) is refused as REPLAYED, starts a new session and still delivers', async () => {
    const dir = await cleanup.tempDir()
    const backup = await cleanup.tempDir()
    let s = await InProcessDaemon.start({ dataDir: dir, bootstrap: [b.tcpAddress] }, cleanup)
    const first = (await s.messenger.send({ to: c.peerId, text: 'before the backup' })).message.id
    await waitFor(async () => (await s.messenger.message(first)).status === 'delivered' ? true : undefined, { what: 'first delivered' })
    await s.stop()
    await cp(dir, backup, { recursive: true })
    s = await InProcessDaemon.start({ dataDir: dir, bootstrap: [b.tcpAddress] }, cleanup)
    const lost = (await s.messenger.send({ to: c.peerId, text: 'after the backup' })).message.id
    await waitFor(async () => (await s.messenger.message(lost)).status === 'delivered' ? true : undefined, { what: 'second delivered' })
    await s.stop()

    // back to the backup: the next message is sealed under the key 'after the backup' used
    await rm(dir, { recursive: true, force: true })
    await cp(backup, dir, { recursive: true })
    s = await InProcessDaemon.start({ dataDir: dir, bootstrap: [b.tcpAddress] }, cleanup)
    const replayedBefore = (await c.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters['dm.rejected.REPLAYED'] ?? 0
    const third = (await s.messenger.send({ to: c.peerId, text: 'after the restore' })).message.id
    await waitFor(async () => (await s.messenger.message(third)).status === 'delivered' ? true : undefined, { what: 'third delivered', timeoutMs: 30_000 })
    const texts = (await history(c, s.peerId)).map(m => m.text)
    expect(texts).toEqual(['before the backup', 'after the backup', 'after the restore'])
    const counters = (await c.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters
    expect(counters['dm.rejected.REPLAYED']).toBe(replayedBefore + 1)
    await s.stop()
  })

  describe('hostile input on /octet/dm/1.0.0', () => {
    let x: InProcessDaemon

    beforeAll(async () => {
      x = await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), bootstrap: [b.tcpAddress] }, cleanup)
    })

    /** Opens a raw DM stream from X to C and exchanges frames by hand. */
    const rawStream = async () => {
      const stream = await x.daemon.node.libp2p.dialProtocol(parsePeerId(c.peerId), DM_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      const lp = lpStream(stream, { maxDataLength: 1024 * 1024 })
      return {
        stream,
        lp,
        send: async (envelope: Envelope): Promise<Ack> => {
          await lp.write(encodeDmFrame({ envelope }))
          const frame = decodeDmFrame(await lp.read({ signal: AbortSignal.timeout(10_000) }))
          if (frame.ack == null) throw new Error('expected an ack')
          return frame.ack
        },
        /** writes one envelope and reads `acks` acks (one per item of an opened batch) */
        sendForAcks: async (envelope: Envelope, acks: number): Promise<Ack[]> => {
          await lp.write(encodeDmFrame({ envelope }))
          const answers: Ack[] = []
          for (let i = 0; i < acks; i++) {
            const frame = decodeDmFrame(await lp.read({ signal: AbortSignal.timeout(10_000) }))
            if (frame.ack == null) throw new Error('expected an ack')
            answers.push(frame.ack)
          }
          return answers
        }
      }
    }
    const storedAtC = async (): Promise<number> => {
      let count = 0
      for (const conversation of await c.messenger.conversations()) count += (await c.messenger.history(conversation.peerId, { limit: 1000 })).length
      return count
    }
    const stat = async (name: string): Promise<number> => (await c.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters[name] ?? 0
    const stillServes = async (): Promise<void> => {
      const { message } = await a.messenger.send({ to: c.peerId, text: `still alive ${Math.random()}` })
      await waitFor(async () => (await a.messenger.message(message.id)).status === 'delivered' ? true : undefined, { what: 'C still serving' })
    }

    it('refuses an envelope whose claimed sender is not the connection\'s PeerId', async () => {
      const before = await storedAtC()
      const forgedBefore = await stat('dm.rejected.FORGED_SENDER')
      const { send, stream } = await rawStream()
      const ack = await send({
        version: WIRE_VERSION, id: newMessageId(), recipient: c.peerId, sender: a.peerId, timestamp: Date.now(), seq: 99,
        kind: Kind.TEXT, cipherType: 2, ciphertext: new Uint8Array(64).fill(7)
      })
      expect(ack.status).toBe(AckStatus.REJECTED)
      expect(ack.reason).toBe('FORGED_SENDER')
      await stream.close()
      expect(await stat('dm.rejected.FORGED_SENDER')).toBe(forgedBefore + 1)
      expect(await storedAtC()).toBe(before)
    })

    it('refuses a tampered ciphertext, accepts the genuine one once, and answers a replay as duplicate', async () => {
      const crypto = x.daemon.crypto
      await crypto.startSession(c.peerId, await x.daemon.prekeys.fetchFromPeer(c.peerId))
      const sealed = await crypto.encrypt(c.peerId, encodePlaintext({ text: 'from X', seq: 1, sentAt: Date.now() }))
      const envelope: Envelope = {
        version: WIRE_VERSION, id: newMessageId(), recipient: c.peerId, sender: x.peerId, timestamp: Date.now(), seq: 1,
        kind: Kind.TEXT, cipherType: sealed.type, ciphertext: sealed.body
      }
      const tampered = { ...envelope, id: newMessageId(), ciphertext: Uint8Array.from(sealed.body) }
      tampered.ciphertext[tampered.ciphertext.length - 5]! ^= 0x01
      const before = await storedAtC()
      const { send, stream } = await rawStream()
      const refused = await send(tampered)
      expect(refused.status).toBe(AckStatus.REJECTED)
      expect(await storedAtC()).toBe(before)

      expect((await send(envelope)).status).toBe(AckStatus.ACCEPTED)
      expect((await send(envelope)).status).toBe(AckStatus.DUPLICATE)
      await stream.close()
      const fromX = await c.messenger.history(x.peerId, { limit: 10 })
      expect(fromX.map(m => m.text)).toEqual(['from X'])
      expect(await stat('dm.duplicates')).toBeGreaterThanOrEqual(1)
    })

    it('batches: each item is acked on its own; a bad item, a replayed item and a miscounted batch are refused, the rest stored once', async () => {
      const crypto = x.daemon.crypto
      const batchOf = async (items: BatchItem[], announced = items.length): Promise<Envelope> => {
        const sealed = await crypto.encrypt(c.peerId, encodeBatch(items))
        return { version: WIRE_VERSION, id: newMessageId(), recipient: c.peerId, sender: x.peerId, timestamp: Date.now(), seq: announced, kind: Kind.BATCH, cipherType: sealed.type, ciphertext: sealed.body }
      }
      const text = (seq: number, body: string, sealedSeq = seq): BatchItem =>
        ({ id: newMessageId(), kind: Kind.TEXT, timestamp: Date.now(), seq, plaintext: encodePlaintext({ text: body, seq: sealedSeq, sentAt: Date.now() }) })
      const countedBefore = await stat('dm.rejected.MALFORMED_FRAME')
      const { sendForAcks, stream } = await rawStream()

      // the count in the clear must be the sealed one: refused whole, with one ack for the batch
      const miscounted = await batchOf([text(10, 'never stored'), text(11, 'never stored')], 3)
      const [refused] = await sendForAcks(miscounted, 1)
      expect([messageIdToHex(refused!.id), refused!.status, refused!.reason]).toEqual([messageIdToHex(miscounted.id), AckStatus.REJECTED, 'MALFORMED_FRAME'])

      const good = text(20, 'batched one')
      const lying = text(21, 'sealed seq differs', 99)
      const garbage: BatchItem = { id: newMessageId(), kind: Kind.TEXT, timestamp: Date.now(), seq: 22, plaintext: new Uint8Array([0xff, 0xff, 0xff]) }
      const last = text(23, 'batched two')
      const acks = await sendForAcks(await batchOf([good, lying, garbage, last]), 4)
      expect(acks.map(ack => [messageIdToHex(ack.id), ack.status])).toEqual([
        [messageIdToHex(good.id), AckStatus.ACCEPTED],
        [messageIdToHex(lying.id), AckStatus.REJECTED],
        [messageIdToHex(garbage.id), AckStatus.REJECTED],
        [messageIdToHex(last.id), AckStatus.ACCEPTED]
      ])

      // an item id seen before, in a new batch: a duplicate; its neighbour is new
      const fresh = text(24, 'batched three')
      const again = await sendForAcks(await batchOf([{ ...good, seq: 25 }, fresh]), 2)
      expect(again.map(ack => ack.status)).toEqual([AckStatus.DUPLICATE, AckStatus.ACCEPTED])
      await stream.close()

      const fromX = (await c.messenger.history(x.peerId, { limit: 20 })).map(m => m.text)
      expect(fromX.filter(t => t.startsWith('batched'))).toEqual(['batched one', 'batched two', 'batched three'])
      expect(fromX).not.toContain('never stored')
      expect(await stat('dm.rejected.MALFORMED_FRAME')).toBeGreaterThanOrEqual(countedBefore + 3)
      await stillServes()
    })

    it('closes a stream whose frame is over the limit before reading it, and keeps serving', async () => {
      const before = await stat('dm.rejected.FRAME_TOO_LARGE')
      const { stream } = await rawStream()
      // a length prefix announcing 10 MiB, then a little data: refused from the prefix alone
      const prefix = Uint8Array.from([0x80, 0x80, 0x80, 0x05])
      stream.send(prefix)
      stream.send(new Uint8Array(1024))
      await waitFor(async () => await stat('dm.rejected.FRAME_TOO_LARGE') > before ? true : undefined, { what: 'frame refused' })
      await stillServes()
    })

    it('random bytes on the protocol never crash the node or change stored data (fast-check)', async () => {
      const before = await storedAtC()
      await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), async bytes => {
        const { stream } = await rawStream()
        stream.send(bytes)
        await stream.close({ signal: AbortSignal.timeout(5000) }).catch(() => { stream.abort(new Error('done')) })
      }), { numRuns: 40 })
      expect(await storedAtC()).toBe(before)
      await stillServes()
    })
  })
})
