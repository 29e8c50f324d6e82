import { createHmac, timingSafeEqual } from 'node:crypto'
import { HEADER_EVENT_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SIGNATURE_TOLERANCE } from './constants.js'

/**
 * How a delivery is signed, and the check a receiver makes (the README shows the same lines).
 * Like Stripe's and Standard Webhooks' schemes: HMAC-SHA256 keyed by the webhook's secret
 * over `<timestamp>.<body>`, the timestamp (unix seconds) sent beside it in
 * X-Octet-Timestamp, the signature as `sha256=<hex>` in X-Octet-Signature. Signing the
 * timestamp lets a receiver refuse an old delivery replayed by someone who recorded it;
 * the event id (X-Octet-Event-Id, also `id` in the body) lets it drop one seen before.
 */

/** The X-Octet-Signature value for `body` sent at `timestamp` (unix seconds). */
export function signature (secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')
}

/** Why a delivery was refused; a receiver answers 2xx to REPLAYED (it already has the event) and 4xx to the rest. */
export type VerifyFailure = 'MALFORMED' | 'BAD_SIGNATURE' | 'STALE' | 'REPLAYED'

export type VerifyResult =
  | { ok: true, eventId: number }
  | { ok: false, reason: VerifyFailure }

export interface VerifyInput {
  secret: string
  /** the raw body as received, before any JSON parsing */
  body: string
  /** the request's headers (Node's lower-cased IncomingHttpHeaders will do) */
  headers: Record<string, string | string[] | undefined>
  /** the receiver's clock, ms; default Date.now() */
  now?: number
  /** how far the timestamp may be from `now`, ms; default 5 minutes */
  tolerance?: number
  /** ids of events already taken; a verified new id is added */
  seen?: { has: (id: number) => boolean, add: (id: number) => unknown }
}

function header (headers: VerifyInput['headers'], name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? undefined : value
}

/**
 * The receiver's check of one delivery: the signature recomputed and compared in constant
 * time, the timestamp within `tolerance` of the receiver's clock, the event id not seen
 * before (and the same as the body's, which the signature covers).
 */
export function verifyDelivery ({ secret, body, headers, now = Date.now(), tolerance = SIGNATURE_TOLERANCE, seen }: VerifyInput): VerifyResult {
  const timestamp = header(headers, HEADER_TIMESTAMP) ?? ''
  const given = header(headers, HEADER_SIGNATURE) ?? ''
  const id = header(headers, HEADER_EVENT_ID) ?? ''
  if (!/^\d{1,15}$/.test(timestamp) || !/^\d{1,15}$/.test(id) || !/^sha256=[0-9a-f]{64}$/.test(given)) return { ok: false, reason: 'MALFORMED' }
  const expected = Buffer.from(signature(secret, Number(timestamp), body))
  if (!timingSafeEqual(expected, Buffer.from(given))) return { ok: false, reason: 'BAD_SIGNATURE' }
  if (Math.abs(now - Number(timestamp) * 1000) > tolerance) return { ok: false, reason: 'STALE' }
  // the header is not signed, the body is: the id that counts is the body's
  let bodyId: unknown
  try {
    bodyId = (JSON.parse(body) as { id?: unknown }).id
  } catch {
    return { ok: false, reason: 'MALFORMED' }
  }
  if (bodyId !== Number(id)) return { ok: false, reason: 'MALFORMED' }
  if (seen?.has(bodyId) === true) return { ok: false, reason: 'REPLAYED' }
  seen?.add(bodyId)
  return { ok: true, eventId: bodyId }
}
