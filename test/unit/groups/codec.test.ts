import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isOctetError } from '../../../src/errors.js'
import {
  ControlType,
  decodeControl,
  decodeGroupMessage,
  decodeGroupPlaintext,
  decodeHistoryRequest,
  decodeSenderKey,
  encodeControl,
  encodeGroupMessage,
  encodeGroupPlaintext,
  encodeHistoryRequest
} from '../../../src/groups/codec.js'
import { MAX_GROUP_MESSAGE_BYTES } from '../../../src/groups/constants.js'
import { advance, groupTopic, senderKeyName } from '../../../src/groups/index.js'
import { createGenesis } from '../../../src/groups/membership.js'

const GROUP = '0123456789abcdef0123456789abcdef'

function codeOf (work: () => unknown): string {
  try {
    work()
  } catch (err) {
    return isOctetError(err) ? err.code : `not an OctetError: ${String(err)}`
  }
  return 'OK'
}

describe('group wire formats', async () => {
  const key = await generateKeyPair('Ed25519')
  const sender = peerIdFromPrivateKey(key).toString()
  const message = { groupId: GROUP, sender, seq: 3, sentAt: 1_700_000_000_000, epoch: 1, ciphertext: new Uint8Array([1, 2, 3]) }

  it('round-trips and validates group messages', () => {
    expect(decodeGroupMessage(encodeGroupMessage(message))).toEqual(message)
    const cases: Array<[string, () => unknown, string]> = [
      ['seq 0', () => encodeGroupMessage({ ...message, seq: 0 }), 'MALFORMED_FRAME'],
      ['no ciphertext', () => encodeGroupMessage({ ...message, ciphertext: new Uint8Array(0) }), 'MALFORMED_FRAME'],
      ['a sender that is no PeerId', () => encodeGroupMessage({ ...message, sender: 'someone' }), 'MALFORMED_FRAME'],
      ['an uppercase group id', () => encodeGroupMessage({ ...message, groupId: GROUP.toUpperCase() }), 'MALFORMED_FRAME'],
      ['oversized input', () => decodeGroupMessage(new Uint8Array(MAX_GROUP_MESSAGE_BYTES + 1)), 'FRAME_TOO_LARGE'],
      ['garbage', () => decodeGroupMessage(Uint8Array.from([0x0a, 0xff, 0xff])), 'MALFORMED_FRAME']
    ]
    for (const [what, work, code] of cases) expect(codeOf(work), what).toBe(code)
  })

  it('pads plaintexts to a block and reads them back', () => {
    const short = encodeGroupPlaintext({ text: 'hi', seq: 1, sentAt: 5 })
    const longer = encodeGroupPlaintext({ text: 'hello there, a little longer', seq: 1, sentAt: 5 })
    expect(short.byteLength).toBe(longer.byteLength)
    expect(short.byteLength % 160).toBe(0)
    expect(decodeGroupPlaintext(short)).toEqual({ text: 'hi', seq: 1, sentAt: 5 })
  })

  it('checks control messages: types, chains, group ids', async () => {
    const doc = await createGenesis({ groupId: GROUP, name: 'g', key, author: sender, now: 1 })
    const invite = encodeControl({ type: ControlType.INVITE, groupId: GROUP, chain: [doc] })
    expect(decodeControl(invite).chain[0]).toEqual(doc)
    expect(codeOf(() => encodeControl({ type: ControlType.ACCEPT, groupId: GROUP, chain: [doc] }))).toBe('MALFORMED_FRAME')
    expect(codeOf(() => encodeControl({ type: ControlType.INVITE, groupId: 'f'.repeat(32), chain: [doc] }))).toBe('MALFORMED_FRAME')
    expect(codeOf(() => decodeSenderKey(Uint8Array.from([0x0a, 0x01, 0x41])))).toBe('MALFORMED_FRAME')
  })

  it('never throws anything but OctetErrors on random input (fast-check)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), bytes => {
      for (const decode of [decodeGroupMessage, decodeGroupPlaintext, decodeControl, decodeSenderKey, decodeHistoryRequest]) {
        const code = codeOf(() => decode(bytes))
        expect(code.startsWith('not an OctetError')).toBe(false)
      }
    }), { numRuns: 300 })
  })

  it('history requests keep the positions and cap the limit', () => {
    const request = decodeHistoryRequest(encodeHistoryRequest({ groupId: GROUP, known: new Map([[sender, 7]]), limit: 0 }))
    expect(request.known.get(sender)).toBe(7)
    expect(request.limit).toBe(1000)
  })

  it('names topics and key epochs without revealing the group id', () => {
    expect(groupTopic(GROUP)).toMatch(/^\/octet\/group\/[0-9a-f]{64}$/)
    expect(groupTopic(GROUP)).not.toContain(GROUP)
    expect(senderKeyName(GROUP, 4)).not.toBe(senderKeyName(GROUP, 1))
  })
})

describe('sender positions', () => {
  it('advances the contiguous prefix and remembers what came early (table)', () => {
    const cases: Array<[string, { contiguous: number, ahead: number[] }, number, ReturnType<typeof advance>]> = [
      ['the next one', { contiguous: 3, ahead: [] }, 4, { track: { contiguous: 4, ahead: [] }, inOrder: true, following: [] }],
      ['one early: a gap', { contiguous: 3, ahead: [] }, 6, { track: { contiguous: 3, ahead: [6] }, inOrder: false, following: [] }],
      ['the gap filled: the early ones follow', { contiguous: 3, ahead: [5, 6] }, 4, { track: { contiguous: 6, ahead: [] }, inOrder: true, following: [5, 6] }],
      ['part of the gap filled', { contiguous: 3, ahead: [6] }, 4, { track: { contiguous: 4, ahead: [6] }, inOrder: true, following: [] }],
      ['an old one', { contiguous: 3, ahead: [6] }, 2, { track: { contiguous: 3, ahead: [6] }, inOrder: false, following: [] }]
    ]
    for (const [what, track, seq, expected] of cases) expect(advance(track, seq), what).toEqual(expected)
  })
})
