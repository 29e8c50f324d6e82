import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import fc from 'fast-check'
import { encode as encodeVarint } from 'uint8-varint'
import { beforeAll, describe, expect, it } from 'vitest'
import { HistoryStatus, encodeGroupMessage, encodeHistoryRequest } from '../../../src/groups/codec.js'
import { HISTORY_PAGE_BYTES, MAX_HISTORY_FRAME_BYTES } from '../../../src/groups/constants.js'
import { callHistory, serveHistory, type HistoryBackend } from '../../../src/groups/history.js'
import { untilClosed } from '../../../src/wire/framing.js'

const GROUP = '0123456789abcdef0123456789abcdef'

async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code ?? `not an OctetError: ${(err as Error).name}`
  }
  return 'no error'
}

function frame (bytes: Uint8Array): Uint8Array {
  const prefix = encodeVarint(bytes.byteLength)
  const out = new Uint8Array(prefix.byteLength + bytes.byteLength)
  out.set(prefix, 0)
  out.set(bytes, prefix.byteLength)
  return out
}

describe('/octet/group-history/1.0.0 between two members', () => {
  let sender: string
  let requester: string
  let messages: Uint8Array[]
  const backend = (overrides: Partial<HistoryBackend> = {}): HistoryBackend => ({
    admit: () => true,
    select: async () => ({ status: HistoryStatus.HISTORY_OK, messages }),
    ...overrides
  })

  beforeAll(async () => {
    sender = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    requester = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    // large enough that the answer takes several pages
    messages = Array.from({ length: 40 }, (_, i) => encodeGroupMessage({ groupId: GROUP, sender, seq: i + 1, sentAt: 1, epoch: 1, ciphertext: new Uint8Array(randomBytes(8 * 1024)) }))
  })

  it('answers in pages under the frame limit; the caller gets every message in order and both ends close', async () => {
    const [caller, server] = await streamPair()
    let selectedFor = ''
    const [outcome, received] = await Promise.all([
      serveHistory(server, requester, backend({ select: async peer => { selectedFor = peer; return { status: HistoryStatus.HISTORY_OK, messages } } })),
      callHistory(caller, { groupId: GROUP, known: new Map([[sender, 0]]), limit: 0 })
    ])
    expect(selectedFor).toBe(requester)
    expect(received).toEqual(messages)
    expect(outcome).toEqual({ status: HistoryStatus.HISTORY_OK, sent: messages.length })
    expect(40 * 8 * 1024).toBeGreaterThan(HISTORY_PAGE_BYTES)
    await untilClosed(server, AbortSignal.timeout(3_000))
  })

  it('cuts the answer to the limit the caller asked for', async () => {
    const [caller, server] = await streamPair()
    const [, received] = await Promise.all([serveHistory(server, requester, backend()), callHistory(caller, { groupId: GROUP, known: new Map(), limit: 5 })])
    expect(received).toEqual(messages.slice(0, 5))
  })

  it('refusals reach the caller as typed errors (table)', async () => {
    const cases: Array<[string, Partial<HistoryBackend>, string]> = [
      ['not a member', { select: async () => ({ status: HistoryStatus.HISTORY_NOT_A_MEMBER, reason: 'no', messages: [] }) }, 'NOT_A_MEMBER'],
      ['unknown group', { select: async () => ({ status: HistoryStatus.HISTORY_UNKNOWN_GROUP, messages: [] }) }, 'NOT_FOUND'],
      ['rate limited', { admit: () => false }, 'RATE_LIMITED']
    ]
    for (const [what, overrides, code] of cases) {
      const [caller, server] = await streamPair()
      const [, result] = await Promise.all([serveHistory(server, requester, backend(overrides)), codeOf(callHistory(caller, { groupId: GROUP, known: new Map(), limit: 0 }))])
      expect(result, what).toBe(code)
    }
  })

  it('resets a silent caller after the timeout, and a frame announced over the limit at once', async () => {
    const [, silentServer] = await streamPair()
    expect(await codeOf(serveHistory(silentServer, requester, backend(), 200))).toBe('TIMEOUT')

    const [caller, server] = await streamPair()
    const serving = codeOf(serveHistory(server, requester, backend(), 1_000))
    caller.send(encodeVarint(MAX_HISTORY_FRAME_BYTES + 1))
    expect(await serving).toBe('FRAME_TOO_LARGE')
  })

  it('a caller waiting on a silent member times out', async () => {
    const [caller] = await streamPair()
    expect(await codeOf(callHistory(caller, { groupId: GROUP, known: new Map(), limit: 0 }, 200))).toBe('TIMEOUT')
  })

  it('garbage requests never get an answer or crash the server (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async bytes => {
      const [caller, server] = await streamPair()
      const serving = serveHistory(server, requester, backend({ select: async () => { throw new Error('must not be reached') } }), 300)
        .then(() => 'answered', (err: { code?: string }) => err.code ?? 'other')
      caller.send(frame(bytes))
      await caller.close().catch(() => {})
      const result = await serving
      // a random frame that happens to decode as a request is answered (OK with nothing, or refused); nothing else escapes
      expect(['answered', 'MALFORMED_FRAME', 'FRAME_TOO_LARGE', 'TIMEOUT', 'other']).toContain(result)
    }), { numRuns: 30 })
    // and a well-formed request still works afterwards
    const [caller, server] = await streamPair()
    const [, received] = await Promise.all([serveHistory(server, requester, backend()), callHistory(caller, { groupId: GROUP, known: new Map(), limit: 1 })])
    expect(received).toHaveLength(1)
    expect(encodeHistoryRequest({ groupId: GROUP, known: new Map(), limit: 1 }).byteLength).toBeGreaterThan(0)
  })
})
