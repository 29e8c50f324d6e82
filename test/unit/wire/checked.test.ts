import { describe, expect, it } from 'vitest'
import { clipReason } from '../../../src/wire/checked.js'
import { MAX_REASON_BYTES } from '../../../src/mailbox/constants.js'
import { MailboxResponse, MailboxStatus } from '../../../src/wire/mailbox.pb.js'
import { decodeResponse } from '../../../src/mailbox/protocol.js'

describe('clipReason: a peer\'s reason, cut by UTF-8 bytes', () => {
  it('keeps a reason that fits, byte for byte', () => {
    expect(clipReason('quota: 3 of 3', 13)).toBe('quota: 3 of 3')
  })

  it('cuts by bytes, not characters, and never inside a character', () => {
    // 'é' is 2 bytes, '😀' 4: 300 of them are 600 and 1,200 bytes
    for (const char of ['é', '😀', 'a']) {
      const clipped = clipReason(char.repeat(300), 101)
      expect(clipped.endsWith('…')).toBe(true)
      const body = clipped.slice(0, -1)
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(101)
      expect(body).not.toContain('\uFFFD')
      expect(body).toBe(char.repeat(body.length / char.length))
    }
  })

  it('bounds what a mailbox\'s answer can carry, however it is written', () => {
    const reason = '😀'.repeat(MAX_REASON_BYTES)
    const decoded = decodeResponse(MailboxResponse.encode({ status: MailboxStatus.QUOTA_EXCEEDED, reason, envelopes: [], count: 0, duplicate: false }))
    expect(Buffer.byteLength(decoded.reason)).toBeLessThanOrEqual(MAX_REASON_BYTES + Buffer.byteLength('…'))
  })
})
