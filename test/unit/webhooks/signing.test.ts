import { describe, expect, it } from 'vitest'
import { signature, verifyDelivery } from '../../../src/webhooks/index.js'

// computed apart from octet, with OpenSSL:
//   printf '%s' '1700000000.<BODY>' | openssl dgst -sha256 -hmac 'whsec_test_secret_0123456789'
const SECRET = 'whsec_test_secret_0123456789'
const TIMESTAMP = 1_700_000_000
const BODY = '{"id":42,"type":"contact.request","at":1700000000000,"data":{"peerId":"12D3KooWExample"}}'
const EXPECTED = 'sha256=3bdf4942bedc3a9500be7b6e349aaeb5258c89e02bbf02e41fbef8cebc2656e6'

const headers = (overrides: Record<string, string> = {}): Record<string, string> => ({
  'x-octet-event-id': '42',
  'x-octet-timestamp': String(TIMESTAMP),
  'x-octet-signature': EXPECTED,
  ...overrides
})
const NOW = TIMESTAMP * 1000 + 30_000

describe('webhook signatures', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 (known answer)', () => {
    expect(signature(SECRET, TIMESTAMP, BODY)).toBe(EXPECTED)
  })

  it('accepts the genuine delivery once, then calls it replayed', () => {
    const seen = new Set<number>()
    expect(verifyDelivery({ secret: SECRET, body: BODY, headers: headers(), now: NOW, seen })).toEqual({ ok: true, eventId: 42 })
    expect(verifyDelivery({ secret: SECRET, body: BODY, headers: headers(), now: NOW, seen })).toEqual({ ok: false, reason: 'REPLAYED' })
  })

  it.each([
    ['a changed body', { body: BODY.replace('42', '43') }, 'BAD_SIGNATURE'],
    ['another secret', { secret: 'whsec_another_secret_012345' }, 'BAD_SIGNATURE'],
    ['a changed timestamp', { headers: headers({ 'x-octet-timestamp': String(TIMESTAMP + 1) }) }, 'BAD_SIGNATURE'],
    ['a timestamp over 5 minutes old', { now: TIMESTAMP * 1000 + 5 * 60_000 + 1 }, 'STALE'],
    ['a timestamp over 5 minutes ahead', { now: TIMESTAMP * 1000 - 5 * 60_000 - 1 }, 'STALE'],
    ['a header id other than the body id', { headers: headers({ 'x-octet-event-id': '41' }) }, 'MALFORMED'],
    ['no signature', { headers: headers({ 'x-octet-signature': '' }) }, 'MALFORMED'],
    ['a signature of another form', { headers: headers({ 'x-octet-signature': EXPECTED.slice(7) }) }, 'MALFORMED']
  ])('refuses %s', (_what, change, reason) => {
    expect(verifyDelivery({ secret: SECRET, body: BODY, headers: headers(), now: NOW, ...change })).toEqual({ ok: false, reason })
  })
})
