import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { encode as encodeVarint } from 'uint8-varint'
import { MAX_MAILBOX_FRAME_BYTES } from '../../../src/mailbox/constants.js'
import { MAX_SEALED_BYTES } from '../../../src/wire/limits.js'
import { signProof } from '../../../src/mailbox/proof.js'
import { callDelete, callFetch, callStore, callWatch, type Prover } from '../../../src/mailbox/protocol-call.js'
import { NotifyWriter, serveMailbox, type MailboxBackend, type ServeOutcome } from '../../../src/mailbox/protocol-serve.js'
import { MailboxStore, envelopeId } from '../../../src/mailbox/store.js'
import { WatcherRegistry } from '../../../src/mailbox/watchers.js'
import { untilClosed } from '../../../src/wire/framing.js'
import { Store } from '../../../src/store/database.js'
import { MailboxChallenge, MailboxNotify, MailboxOp, MailboxRequest, MailboxResponse, MailboxStatus, SealedEnvelope } from '../../../src/wire/mailbox.pb.js'
import type { Uint8ArrayList } from 'uint8arraylist'
import { until } from '../../helpers/daemon.js'

let dir: string
let store: Store
let mailbox: MailboxStore
let recipientKey: PrivateKey
let otherKey: PrivateKey
let recipient: string
let self: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'octet-mailbox-protocol-'))
  store = await Store.open(dir)
  mailbox = await MailboxStore.open(store)
  recipientKey = await generateKeyPair('Ed25519')
  otherKey = await generateKeyPair('Ed25519')
  recipient = peerIdFromPrivateKey(recipientKey).toString()
  self = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

afterAll(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

/** A well-formed sealed envelope (the mailbox checks its shape only). */
function sealedEnvelope (size = 300): Uint8Array<ArrayBuffer> {
  return SealedEnvelope.encode({ version: 1, ephemeralKey: new Uint8Array(randomBytes(33)), ciphertext: new Uint8Array(randomBytes(size)) })
}

/** Watches registered through backend(); tests make their own registry when they need other limits. */
let watchers = new WatcherRegistry({ perPeer: 2, total: 100, ttl: 60_000 })

function backend (overrides: Partial<MailboxBackend> = {}): MailboxBackend {
  return {
    self,
    remotePeer: recipient,
    watch: (r, notify) => {
      const registration = watchers.register(r, notify)
      return registration.accepted
        ? { accepted: true, watch: registration.watch, count: mailbox.usageOf(r).count }
        : { accepted: false, status: MailboxStatus.QUOTA_EXCEEDED, reason: registration.reason }
    },
    admit: () => true,
    store: async (r, sealed) => {
      const result = await mailbox.put(r, sealed)
      return result.status === 'quota' ? { status: MailboxStatus.QUOTA_EXCEEDED, reason: result.reason } : { status: MailboxStatus.OK, count: result.count }
    },
    page: async (r, after, limit, maxBytes) => await mailbox.list(r, { after, limit, maxBytes }),
    delete: async (r, ids) => await mailbox.delete(r, ids),
    ...overrides
  }
}

const prover = (key: PrivateKey, op: 'FETCH' | 'DELETE', ids?: Uint8Array[], forRecipient = recipient, forMailbox = self): Prover =>
  async nonce => await signProof(key, { mailbox: forMailbox, recipient: forRecipient, op, nonce, ids })

async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${(err as Error).name}`
  }
  return 'no error'
}

async function ended (stream: Stream): Promise<string> {
  await untilClosed(stream, AbortSignal.timeout(3_000))
  return stream.status
}

function frame (bytes: Uint8Array): Uint8Array {
  const prefix = encodeVarint(bytes.byteLength)
  const out = new Uint8Array(prefix.byteLength + bytes.byteLength)
  out.set(prefix, 0)
  out.set(bytes, prefix.byteLength)
  return out
}

/** What the mailbox holds for every recipient together. */
const held = (): number => mailbox.stats().envelopes

async function clear (): Promise<void> {
  for (const r of mailbox.recipients()) {
    const page = await mailbox.list(r, { limit: 10_000 })
    await mailbox.delete(r, page.envelopes.map(e => e.id))
  }
}

describe('/octet/mailbox/1.0.0 between a caller and a mailbox', () => {
  it('STORE: the mailbox keeps it and answers OK with the count; both ends close cleanly', async () => {
    await clear()
    const [caller, server] = await streamPair()
    const sealed = sealedEnvelope()
    const [outcome, response] = await Promise.all([serveMailbox(server, backend()), callStore(caller, recipient, sealed)])
    expect(response).toMatchObject({ status: MailboxStatus.OK, count: 1 })
    expect(outcome).toMatchObject({ op: MailboxOp.STORE, status: MailboxStatus.OK, count: 1 })
    expect((await mailbox.list(recipient, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([sealed])
    expect(await ended(server)).toBe('closed')
    expect(await ended(caller)).toBe('closed')
  })

  it('FETCH: pages oldest first until `more` is false, after a proof with the recipient key', async () => {
    await clear()
    const items = Array.from({ length: 7 }, () => sealedEnvelope())
    for (const item of items) await mailbox.put(recipient, item)
    const [caller, server] = await streamPair()
    const [outcome, result] = await Promise.all([
      serveMailbox(server, backend()),
      callFetch(caller, { recipient, limit: 3 }, prover(recipientKey, 'FETCH'))
    ])
    expect(result.response.status).toBe(MailboxStatus.OK)
    expect(result.envelopes.map(e => e.sealed)).toEqual(items)
    expect(result.envelopes.map(e => e.id)).toEqual(items.map(envelopeId))
    expect(outcome).toMatchObject({ op: MailboxOp.FETCH, status: MailboxStatus.OK, count: 7 })
    expect(await ended(server)).toBe('closed')
  })

  it('FETCH: pages stay under the frame limit with envelopes of the largest size', async () => {
    await clear()
    const big = Array.from({ length: 4 }, () => sealedEnvelope(MAX_SEALED_BYTES - 100))
    for (const item of big) expect((await mailbox.put(recipient, item)).status).toBe('stored')
    const [caller, server] = await streamPair()
    const pages: number[] = []
    const [, result] = await Promise.all([
      serveMailbox(server, backend({ page: async (r, after, limit, maxBytes) => {
        const page = await mailbox.list(r, { after, limit, maxBytes })
        pages.push(MailboxResponse.encode({ status: MailboxStatus.OK, envelopes: page.envelopes.map(e => ({ ...e, storedAt: BigInt(e.storedAt) })) as never, more: page.more }).byteLength)
        return page
      } })),
      callFetch(caller, { recipient, limit: 100 }, prover(recipientKey, 'FETCH'))
    ])
    expect(result.envelopes).toHaveLength(4)
    expect(pages.length).toBe(4)
    for (const size of pages) expect(size).toBeLessThanOrEqual(MAX_MAILBOX_FRAME_BYTES)
  })

  it('DELETE: removes exactly the named ids, after a proof over them', async () => {
    await clear()
    const [a, b] = [sealedEnvelope(), sealedEnvelope()]
    await mailbox.put(recipient, a)
    await mailbox.put(recipient, b)
    const ids = [envelopeId(a)]
    const [caller, server] = await streamPair()
    const [outcome, response] = await Promise.all([
      serveMailbox(server, backend()),
      callDelete(caller, { recipient, ids }, prover(recipientKey, 'DELETE', ids))
    ])
    expect(response).toMatchObject({ status: MailboxStatus.OK, count: 1 })
    expect(outcome).toMatchObject({ op: MailboxOp.DELETE, status: MailboxStatus.OK, count: 1 })
    expect((await mailbox.list(recipient, { limit: 10 })).envelopes.map(e => e.sealed)).toEqual([b])
  })

  it('UNAUTHORIZED: another key, a proof for other ids, another mailbox, a FETCH proof for a DELETE', async () => {
    await clear()
    const a = sealedEnvelope()
    await mailbox.put(recipient, a)
    const ids = [envelopeId(a)]
    const attempts: Array<[string, (caller: Stream) => Promise<{ status: MailboxStatus }>]> = [
      ['fetch signed by another key', async c => (await callFetch(c, { recipient }, prover(otherKey, 'FETCH'))).response],
      ['delete signed by another key', async c => await callDelete(c, { recipient, ids }, prover(otherKey, 'DELETE', ids))],
      ['delete proof over other ids', async c => await callDelete(c, { recipient, ids }, prover(recipientKey, 'DELETE', [envelopeId(sealedEnvelope())]))],
      ['proof made for another mailbox', async c => (await callFetch(c, { recipient }, prover(recipientKey, 'FETCH', undefined, recipient, recipient))).response],
      ['a FETCH proof on a DELETE', async c => await callDelete(c, { recipient, ids }, async nonce => await signProof(recipientKey, { mailbox: self, recipient, op: 'FETCH', nonce }))]
    ]
    for (const [name, attempt] of attempts) {
      const [caller, server] = await streamPair()
      const [outcome, response] = await Promise.all([serveMailbox(server, backend()), attempt(caller)])
      expect(response.status, name).toBe(MailboxStatus.UNAUTHORIZED)
      expect(outcome.status, name).toBe(MailboxStatus.UNAUTHORIZED)
    }
    expect(held()).toBe(1)
  })

  it('UNAUTHORIZED: a proof replayed on a new challenge', async () => {
    await clear()
    await mailbox.put(recipient, sealedEnvelope())
    let captured: Uint8Array | undefined
    const capturing: Prover = async nonce => {
      captured = await prover(recipientKey, 'FETCH')(nonce)
      return captured
    }
    const [c1, s1] = await streamPair()
    const [, first] = await Promise.all([serveMailbox(s1, backend()), callFetch(c1, { recipient }, capturing)])
    expect(first.envelopes).toHaveLength(1)
    const [c2, s2] = await streamPair()
    const [, replay] = await Promise.all([serveMailbox(s2, backend()), callFetch(c2, { recipient }, async () => captured!)])
    expect(replay.response.status).toBe(MailboxStatus.UNAUTHORIZED)
    expect(replay.envelopes).toEqual([])
  })

  it('RATE_LIMITED and QUOTA_EXCEEDED come back as answers with a reason', async () => {
    await clear()
    for (const op of ['STORE', 'FETCH', 'DELETE'] as const) {
      const [caller, server] = await streamPair()
      const ids = [envelopeId(sealedEnvelope())]
      const calling = op === 'STORE'
        ? callStore(caller, recipient, sealedEnvelope())
        : op === 'FETCH' ? callFetch(caller, { recipient }, prover(recipientKey, 'FETCH')).then(r => r.response) : callDelete(caller, { recipient, ids }, prover(recipientKey, 'DELETE', ids))
      const [, response] = await Promise.all([serveMailbox(server, backend({ admit: () => false })), calling])
      expect(response.status, op).toBe(MailboxStatus.RATE_LIMITED)
      expect(response.reason, op).toMatch(/too many/)
    }
    const [caller, server] = await streamPair()
    const [, response] = await Promise.all([
      serveMailbox(server, backend({ store: async () => ({ status: MailboxStatus.QUOTA_EXCEEDED, reason: 'recipient envelope quota: 3 of 3' }) })),
      callStore(caller, recipient, sealedEnvelope())
    ])
    expect(response).toMatchObject({ status: MailboxStatus.QUOTA_EXCEEDED, reason: 'recipient envelope quota: 3 of 3' })
    expect(held()).toBe(0)
  })

  it('BAD_REQUEST for a request that decodes but cannot be served', async () => {
    await clear()
    const rsa = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
    const cases: Array<[string, Partial<MailboxRequest>]> = [
      ['no recipient', { op: MailboxOp.STORE, sealed: sealedEnvelope() }],
      ['a recipient that is not a PeerId', { op: MailboxOp.STORE, recipient: 'bob', sealed: sealedEnvelope() }],
      ['an RSA PeerId (no key to check a proof against)', { op: MailboxOp.STORE, recipient: rsa, sealed: sealedEnvelope() }],
      ['no envelope', { op: MailboxOp.STORE, recipient }],
      ['an envelope that is not a SealedEnvelope', { op: MailboxOp.STORE, recipient, sealed: new Uint8Array([0xff, 0xff, 0xff]) }],
      ['a sealed envelope without a key', { op: MailboxOp.STORE, recipient, sealed: SealedEnvelope.encode({ version: 1, ciphertext: new Uint8Array(10) }) }],
      ['a sealed envelope over the limit', { op: MailboxOp.STORE, recipient, sealed: sealedEnvelope(MAX_SEALED_BYTES) }],
      ['ids on a STORE', { op: MailboxOp.STORE, recipient, sealed: sealedEnvelope(), ids: [new Uint8Array(32)] }],
      ['a STORE for the mailbox itself', { op: MailboxOp.STORE, recipient: self, sealed: sealedEnvelope() }],
      ['no op', { recipient, sealed: sealedEnvelope() }]
    ]
    for (const [name, request] of cases) {
      const [caller, server] = await streamPair()
      const serving = serveMailbox(server, backend())
      caller.send(frame(MailboxRequest.encode(request)))
      await caller.close()
      const [outcome] = await Promise.all([serving])
      expect(outcome.status, name).toBe(MailboxStatus.BAD_REQUEST)
      expect(outcome.reason, name).not.toBe('')
    }
    expect(held()).toBe(0)
  })

  it('BAD_REQUEST for a DELETE with ids of the wrong size, after the challenge', async () => {
    const ids = [new Uint8Array(31)]
    const [caller, server] = await streamPair()
    const [outcome, response] = await Promise.all([
      serveMailbox(server, backend()),
      callDelete(caller, { recipient, ids }, async () => new Uint8Array(64))
    ])
    expect(response.status).toBe(MailboxStatus.BAD_REQUEST)
    expect(outcome.status).toBe(MailboxStatus.BAD_REQUEST)
  })
})

describe('the mailbox side against a misbehaving caller', () => {
  it('survives random bytes: never throws out, resets or closes the stream, stores nothing', async () => {
    await clear()
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), async bytes => {
      const [caller, server] = await streamPair()
      const serving = serveMailbox(server, backend(), { timeout: 500 }).then(() => 'answered', () => 'reset')
      caller.send(bytes)
      await caller.close().catch(() => {})
      const result = await serving
      expect(['answered', 'reset']).toContain(result)
      expect(server.status).not.toBe('open')
      expect(held()).toBe(0)
    }), { numRuns: 200 })
    // and valid-looking frames of garbage: decoding must fail or the request be refused
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async bytes => {
      const [caller, server] = await streamPair()
      const serving = serveMailbox(server, backend(), { timeout: 500 }).then((o: ServeOutcome) => o.status, () => 'reset')
      caller.send(frame(bytes))
      await caller.close().catch(() => {})
      expect(['reset', MailboxStatus.BAD_REQUEST, MailboxStatus.RATE_LIMITED, MailboxStatus.UNAUTHORIZED]).toContain(await serving)
      expect(held()).toBe(0)
    }), { numRuns: 300 })
  })

  it('resets a silent caller after the timeout', async () => {
    const [caller, server] = await streamPair()
    const started = Date.now()
    expect(await codeOf(serveMailbox(server, backend(), { timeout: 200 }))).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(server.status).toBe('aborted')
    expect(await ended(caller)).toBe('reset')
  })

  it('resets a caller that never sends its proof', async () => {
    const [caller, server] = await streamPair()
    const serving = codeOf(serveMailbox(server, backend(), { timeout: 200 }))
    caller.send(frame(MailboxRequest.encode({ op: MailboxOp.FETCH, recipient })))
    expect(await serving).toBe('TIMEOUT')
    expect(server.status).toBe('aborted')
  })

  it('refuses a frame announced over the limit before reading it', async () => {
    const [caller, server] = await streamPair()
    const serving = codeOf(serveMailbox(server, backend()))
    caller.send(encodeVarint(MAX_MAILBOX_FRAME_BYTES + 1))
    expect(await serving).toBe('FRAME_TOO_LARGE')
    expect(server.status).toBe('aborted')
    expect(await ended(caller)).toBe('reset')
  })

  it('refuses an oversized proof frame', async () => {
    const [caller, server] = await streamPair()
    const serving = codeOf(serveMailbox(server, backend()))
    caller.send(frame(MailboxRequest.encode({ op: MailboxOp.FETCH, recipient })))
    caller.send(frame(new Uint8Array(4096)))
    expect(await serving).toBe('FRAME_TOO_LARGE')
    expect(server.status).toBe('aborted')
  })

  it('refuses a caller that streams a MiB of garbage', async () => {
    const [caller, server] = await streamPair()
    const serving = codeOf(serveMailbox(server, backend()))
    for (let i = 0; i < 16 && caller.status === 'open'; i++) {
      try {
        if (!caller.send(randomBytes(64 * 1024))) await caller.onDrain({ signal: AbortSignal.timeout(1_000) })
      } catch {
        break
      }
    }
    expect(['MALFORMED_FRAME', 'FRAME_TOO_LARGE']).toContain(await serving)
    expect(held()).toBe(0)
  })
})

describe('the caller side against a misbehaving mailbox', () => {
  it('TIMEOUT when the mailbox says nothing; the stream is reset', async () => {
    const [caller] = await streamPair()
    expect(await codeOf(callStore(caller, recipient, sealedEnvelope(), { timeout: 200 }))).toBe('TIMEOUT')
    expect(caller.status).toBe('aborted')
  })

  it('the reason of the caller signal when it fires', async () => {
    const [caller] = await streamPair()
    const reason = new Error('give up')
    const controller = new AbortController()
    setTimeout(() => { controller.abort(reason) }, 50)
    await expect(callFetch(caller, { recipient }, prover(recipientKey, 'FETCH'), { signal: controller.signal })).rejects.toBe(reason)
  })

  it('MALFORMED_FRAME for garbage, a bad challenge, or an envelope whose id is not its hash', async () => {
    const answers: Array<[string, Uint8Array[]]> = [
      ['garbage', [frame(new Uint8Array([0xff, 0xff, 0xff, 0xff]))]],
      ['a short nonce', [frame(MailboxChallenge.encode({ nonce: new Uint8Array(8) }))]],
      ['a forged id', [
        frame(MailboxChallenge.encode({ nonce: new Uint8Array(32) })),
        frame(MailboxResponse.encode({ status: MailboxStatus.OK, envelopes: [{ id: new Uint8Array(32), sealed: sealedEnvelope(), storedAt: 1n }] }))
      ]]
    ]
    for (const [name, frames] of answers) {
      const [caller, server] = await streamPair()
      for (const f of frames) server.send(f)
      expect(await codeOf(callFetch(caller, { recipient }, prover(recipientKey, 'FETCH'), { timeout: 1_000 })), name).toBe('MALFORMED_FRAME')
    }
  })

  it('stops a mailbox that pages forever', async () => {
    const [caller, server] = await streamPair()
    const sealed = sealedEnvelope()
    const page = frame(MailboxResponse.encode({ status: MailboxStatus.OK, envelopes: [{ id: new Uint8Array(envelopeId(sealed)), sealed, storedAt: 1n }], more: true }))
    server.send(frame(MailboxChallenge.encode({ nonce: new Uint8Array(32) })))
    const pushing = (async () => {
      for (let i = 0; i < 50 && server.status === 'open'; i++) {
        try {
          if (!server.send(page)) await server.onDrain({ signal: AbortSignal.timeout(1_000) })
        } catch {
          return
        }
      }
    })()
    expect(await codeOf(callFetch(caller, { recipient }, prover(recipientKey, 'FETCH'), { maxEnvelopes: 10 }))).toBe('MALFORMED_FRAME')
    await pushing
  })

  it('PEER_UNREACHABLE when the mailbox resets the stream', async () => {
    const [caller, server] = await streamPair()
    setTimeout(() => { server.abort(new Error('bye')) }, 20)
    expect(await codeOf(callStore(caller, recipient, sealedEnvelope()))).toBe('PEER_UNREACHABLE')
  })
})

describe('WATCH: a held stream on which the mailbox says when it stored for the watcher', () => {
  /** Stores as the service does: into the mailbox, then a notify to the watchers (synchronous). */
  async function storeAndNotify (r: string, sealed: Uint8Array): Promise<void> {
    const result = await mailbox.put(r, sealed)
    if (result.status === 'stored') watchers.notify(r, result.count)
  }

  it('answers OK with what is held, then a notify per store; the watcher closing ends it cleanly', async () => {
    await clear()
    watchers = new WatcherRegistry({ perPeer: 2, total: 100, ttl: 60_000 })
    await mailbox.put(recipient, sealedEnvelope())
    const [caller, server] = await streamPair()
    const serving = serveMailbox(server, backend())
    const session = await callWatch(caller, recipient)
    expect(session.response).toMatchObject({ status: MailboxStatus.OK, count: 1 })
    expect(watchers.size).toBe(1)

    await storeAndNotify(recipient, sealedEnvelope())
    expect(await session.next(AbortSignal.timeout(2_000))).toBe(2)
    await storeAndNotify(recipient, sealedEnvelope())
    expect(await session.next(AbortSignal.timeout(2_000))).toBe(3)

    session.close()
    expect(await serving).toMatchObject({ op: MailboxOp.WATCH, status: MailboxStatus.OK, count: 2 })
    expect(watchers.size).toBe(0)
    expect(await ended(server)).toBe('closed')
  })

  it('a burst of stores never waits for the watcher; the last notify carries the last count', async () => {
    await clear()
    watchers = new WatcherRegistry({ perPeer: 2, total: 100, ttl: 60_000 })
    const [caller, server] = await streamPair()
    const serving = serveMailbox(server, backend())
    const session = await callWatch(caller, recipient)
    const started = performance.now()
    for (let count = 1; count <= 1000; count++) watchers.notify(recipient, count)
    // synchronous: a thousand notifies cost the store path nothing it waits for
    expect(performance.now() - started).toBeLessThan(500)
    let last: number | undefined
    while (last !== 1000) last = await session.next(AbortSignal.timeout(2_000))
    session.close()
    expect((await serving).count).toBeLessThanOrEqual(1000)
  })

  it('refuses a watch of another PeerId than the connection\'s with UNAUTHORIZED, and registers nothing', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 100, ttl: 60_000 })
    const someoneElse = peerIdFromPrivateKey(otherKey).toString()
    const [caller, server] = await streamPair()
    const [outcome, session] = await Promise.all([serveMailbox(server, backend()), callWatch(caller, someoneElse)])
    expect(session.response.status).toBe(MailboxStatus.UNAUTHORIZED)
    expect(session.response.reason).toMatch(/watches its own mailbox only/)
    expect(outcome).toMatchObject({ op: MailboxOp.WATCH, status: MailboxStatus.UNAUTHORIZED })
    expect(watchers.size).toBe(0)
    expect(await session.next(AbortSignal.timeout(1_000))).toBeUndefined()
  })

  it('holds at most `perPeer` watches of one peer (a newer one ends the oldest) and `total` in all', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 3, ttl: 60_000 })
    const watch = async (as: string): Promise<{ session: Awaited<ReturnType<typeof callWatch>>, serving: Promise<ServeOutcome> }> => {
      const [caller, server] = await streamPair()
      const serving = serveMailbox(server, backend({ remotePeer: as }))
      return { session: await callWatch(caller, as), serving }
    }
    const first = await watch(recipient)
    const second = await watch(recipient)
    const third = await watch(recipient)
    for (const w of [first, second, third]) expect(w.session.response.status).toBe(MailboxStatus.OK)
    // the first was displaced: its stream ends, the mailbox closes it
    expect(await first.session.next(AbortSignal.timeout(2_000))).toBeUndefined()
    expect(await first.serving).toMatchObject({ status: MailboxStatus.OK })
    expect(watchers.size).toBe(2)

    const others = [peerIdFromPrivateKey(otherKey).toString(), self]
    const fourth = await watch(others[0]!)
    expect(fourth.session.response.status).toBe(MailboxStatus.OK)
    const fifth = await watch(others[1]!)
    expect(fifth.session.response.status).toBe(MailboxStatus.QUOTA_EXCEEDED)
    expect(fifth.session.response.reason).toMatch(/3 watches, its limit/)
    expect(watchers.size).toBe(3)
    for (const w of [second, third, fourth]) w.session.close()
    await Promise.all([second, third, fourth, fifth].map(async w => await w.serving))
    expect(watchers.size).toBe(0)
  })

  it('ends a watch after its time to live; the watcher sees the end', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 10, ttl: 200 })
    const [caller, server] = await streamPair()
    const serving = serveMailbox(server, backend())
    const session = await callWatch(caller, recipient)
    const started = Date.now()
    expect(await session.next(AbortSignal.timeout(3_000))).toBeUndefined()
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(await serving).toMatchObject({ op: MailboxOp.WATCH, status: MailboxStatus.OK })
    expect(watchers.size).toBe(0)
  })

  it('BAD_REQUEST for a WATCH that carries ids, an envelope or a limit; RATE_LIMITED when the peer asks too often', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 10, ttl: 60_000 })
    for (const extra of [{ ids: [new Uint8Array(32)] }, { sealed: sealedEnvelope() }, { limit: 5 }]) {
      const [caller, server] = await streamPair()
      const serving = serveMailbox(server, backend())
      caller.send(frame(MailboxRequest.encode({ op: MailboxOp.WATCH, recipient, ...extra })))
      await caller.close()
      expect(await serving).toMatchObject({ status: MailboxStatus.BAD_REQUEST, reason: 'a WATCH carries no ids, no envelope and no limit' })
    }
    const [caller, server] = await streamPair()
    const [, session] = await Promise.all([serveMailbox(server, backend({ admit: () => false })), callWatch(caller, recipient)])
    expect(session.response).toMatchObject({ status: MailboxStatus.RATE_LIMITED, reason: 'too many WATCHes from this peer; slow down' })
    expect(watchers.size).toBe(0)
  })

  it('resets a watcher that sends anything after its WATCH, and lets the watch go', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 10, ttl: 60_000 })
    for (const garbage of [frame(new Uint8Array([0xff, 0xff])), frame(MailboxRequest.encode({ op: MailboxOp.WATCH, recipient })), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff), encodeVarint(MAX_MAILBOX_FRAME_BYTES + 1)]) {
      const [caller, server] = await streamPair()
      const serving = codeOf(serveMailbox(server, backend(), { timeout: 500 }))
      const session = await callWatch(caller, recipient)
      expect(session.response.status).toBe(MailboxStatus.OK)
      caller.send(garbage)
      expect(['MALFORMED_FRAME', 'FRAME_TOO_LARGE']).toContain(await serving)
      expect(server.status).toBe('aborted')
      expect(watchers.size).toBe(0)
    }
  })

  it('a watcher whose stream breaks (its connection went) has gone away: no error, the watch let go', async () => {
    watchers = new WatcherRegistry({ perPeer: 2, total: 10, ttl: 60_000 })
    const [caller, server] = await streamPair()
    const serving = serveMailbox(server, backend())
    const session = await callWatch(caller, recipient)
    expect(session.response.status).toBe(MailboxStatus.OK)
    caller.abort(new Error('connection lost'))
    expect(await serving).toMatchObject({ op: MailboxOp.WATCH, status: MailboxStatus.OK, reason: expect.stringMatching(/went away/) })
    expect(watchers.size).toBe(0)
  })

  it('the watcher refuses garbage in place of a notify: MALFORMED_FRAME or FRAME_TOO_LARGE, stream reset', async () => {
    const answers: Array<[string, Uint8Array]> = [
      ['not a protobuf', frame(new Uint8Array([0xff, 0xff, 0xff]))],
      ['an oversized notify', frame(MailboxResponse.encode({ status: MailboxStatus.OK, reason: 'x'.repeat(100) }))],
      ['a count that is no varint', frame(new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))]
    ]
    for (const [name, garbage] of answers) {
      const [caller, server] = await streamPair()
      server.send(frame(MailboxResponse.encode({ status: MailboxStatus.OK })))
      const session = await callWatch(caller, recipient)
      server.send(garbage)
      expect(['MALFORMED_FRAME', 'FRAME_TOO_LARGE'], name).toContain(await codeOf(session.next(AbortSignal.timeout(2_000))))
      expect(caller.status, name).toBe('aborted')
    }
    // and random bytes in place of notifies: refused or read, never anything else
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), async bytes => {
      const [caller, server] = await streamPair()
      server.send(frame(MailboxResponse.encode({ status: MailboxStatus.OK })))
      const session = await callWatch(caller, recipient)
      server.send(bytes)
      await server.close().catch(() => {})
      while (true) {
        const code = await codeOf(session.next(AbortSignal.timeout(2_000)).then(count => { if (count === undefined) throw Object.assign(new Error('end'), { code: 'END' }) }))
        if (code === 'no error') continue
        expect(['END', 'MALFORMED_FRAME', 'FRAME_TOO_LARGE']).toContain(code)
        break
      }
    }), { numRuns: 100 })
  })
})

describe('NotifyWriter: notifies on a stream that does not drain', () => {
  /** A stream whose buffer is full after `room` sends until drain() is called; it records what was sent. */
  function stuckStream (room: number): { stream: Stream, sent: number[], drain: () => void, drainWaits: () => number } {
    const sent: number[] = []
    let waiting: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
    let waits = 0
    const stream = {
      status: 'open',
      send: (data: Uint8ArrayList) => {
        const bytes = data.subarray()
        sent.push(MailboxNotify.decode(bytes.subarray(1)).count)
        return sent.length < room
      },
      onDrain: async ({ signal }: { signal: AbortSignal }) => {
        waits++
        await new Promise<void>((resolve, reject) => {
          waiting.push({ resolve, reject })
          signal.addEventListener('abort', () => { reject(signal.reason as Error) }, { once: true })
        })
      }
    } as unknown as Stream
    return { stream, sent, drain: () => { for (const w of waiting) w.resolve(); waiting = [] }, drainWaits: () => waits }
  }

  it('never waits in push(); while the stream is full, notifies collapse into one with the latest count', async () => {
    const { stream, sent, drain, drainWaits } = stuckStream(1)
    const writer = new NotifyWriter(stream, 5_000)
    writer.open()
    writer.push(1)
    // the stream is full now: these wait, as one
    for (let count = 2; count <= 1000; count++) writer.push(count)
    expect(sent).toEqual([1])
    expect(drainWaits()).toBe(1)
    drain()
    await until('the coalesced notify', () => sent.length === 2)
    expect(sent).toEqual([1, 1000])
    expect(writer.failed.aborted).toBe(false)
  })

  it('fails the watch when the stream stays full past the write timeout', async () => {
    const { stream } = stuckStream(1)
    const writer = new NotifyWriter(stream, 100)
    writer.open()
    writer.push(1)
    writer.push(2)
    await until('the writer to give up', () => writer.failed.aborted, 2_000)
    expect((writer.failed.reason as { code?: string }).code).toBe('PEER_UNREACHABLE')
  })

  it('writes nothing before open(): the answer to WATCH goes first', async () => {
    const { stream, sent } = stuckStream(100)
    const writer = new NotifyWriter(stream, 5_000)
    writer.push(3)
    writer.push(4)
    expect(sent).toEqual([])
    writer.open()
    expect(sent).toEqual([4])
  })
})
