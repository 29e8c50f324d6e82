import { peerIdFromString } from '@libp2p/peer-id'
import type { Uint8ArrayList } from 'uint8arraylist'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { clipReason, decodeChecked } from '../wire/checked.js'
import type { FrameReader } from '../wire/framing.js'
import { MAX_PEER_ID_CHARS, MAX_SEALED_BYTES } from '../wire/limits.js'
import {
  MailboxChallenge,
  MailboxNotify,
  MailboxOp,
  MailboxProof,
  MailboxRequest,
  MailboxResponse,
  MailboxStatus,
  SealedEnvelope
} from '../wire/mailbox.pb.js'
import {
  ENVELOPE_ID_BYTES,
  MAX_DELETE_IDS,
  MAX_FETCH_LIMIT,
  MAX_NOTIFY_FRAME_BYTES,
  MAX_PROOF_FRAME_BYTES,
  MAX_REASON_BYTES,
  NONCE_BYTES
} from './constants.js'

/*
 * /octet/mailbox/1.0.0 — one request per stream, every frame a
 * length-prefixed protobuf of src/wire/mailbox.proto (at most
 * MAX_MAILBOX_FRAME_BYTES):
 *
 *   STORE   caller → MailboxRequest{STORE, recipient, sealed}, closes its end
 *           mailbox → MailboxResponse{OK count duplicate | QUOTA_EXCEEDED reason | RATE_LIMITED | BAD_REQUEST}, closes
 *           (BAD_REQUEST too when this mailbox is not among the peers closest to the recipient)
 *
 *   FETCH   caller → MailboxRequest{FETCH, recipient, limit}
 *   DELETE  caller → MailboxRequest{DELETE, recipient, ids}
 *           mailbox → MailboxChallenge{nonce}            (always: the caller can then tell the frames apart)
 *           caller → MailboxProof{signature}, closes its end   (see proof.ts)
 *           mailbox → MailboxResponse{UNAUTHORIZED | RATE_LIMITED | BAD_REQUEST, reason}, closes; or
 *           DELETE: MailboxResponse{OK, count}, closes; or
 *           FETCH:  MailboxResponse{OK, envelopes, more} pages, oldest first, each at most `limit`
 *                   envelopes and FETCH_PAGE_BYTES; every page but the last has more = true. One
 *                   proof covers all pages of the stream.
 *
 *   WATCH   caller → MailboxRequest{WATCH, recipient}     (recipient = the caller's own PeerId, as the
 *                                                          connection authenticated it: no other proof)
 *           mailbox → MailboxResponse{OK, count held now | UNAUTHORIZED | QUOTA_EXCEEDED | RATE_LIMITED | BAD_REQUEST}
 *           then, while the watch lasts, the stream stays open and the mailbox writes
 *           MailboxNotify{count} whenever it stores an envelope for the caller (coalesced:
 *           one frame may stand for many stores). The caller sends nothing more; either side
 *           ends the watch by closing (the mailbox after WATCH_TTL, when a newer watch of
 *           the same peer displaces it, or when it stops). The caller FETCHes on streams of
 *           its own.
 *
 * A request that does not decode, a frame over the limit, a stall past
 * REQUEST_TIMEOUT, or a frame where none belongs: the mailbox resets the
 * stream without an answer. A request that decodes but is wrong (a bad
 * PeerId, a sealed envelope that is not one, ids of the wrong size): it
 * answers BAD_REQUEST with the reason.
 *
 * This file holds what both sides share: the frame codecs (every decoder
 * checks sizes first) and the reading of one frame at a time. The mailbox's
 * side is protocol-serve.ts, the caller's protocol-call.ts.
 */

/** One frame at a time from a FrameReader, which hands them over in batches. */
export class Frames {
  private pending: Uint8ArrayList[] = []

  constructor (readonly reader: FrameReader) {}

  /** The next frame; undefined when the peer ended the stream. */
  async next (signal: AbortSignal): Promise<Uint8ArrayList | undefined> {
    if (this.pending.length === 0) this.pending = await this.reader.nextBatch(signal)
    return this.pending.shift()
  }
}

/** Decodes the first frame: MALFORMED_FRAME (FRAME_TOO_LARGE for too many ids) when it is not a MailboxRequest. */
export function decodeRequest (frame: Uint8Array | Uint8ArrayList): MailboxRequest {
  return decodeOrMalformed(() => MailboxRequest.decode(frame, { limits: { ids: MAX_DELETE_IDS } }), 'MailboxRequest')
}

/** Why a decoded request cannot be served (a BAD_REQUEST reason), or undefined. */
export function requestProblem (request: MailboxRequest): string | undefined {
  const recipientProblem = peerIdProblem(request.recipient)
  if (recipientProblem != null) return recipientProblem
  switch (request.op) {
    case MailboxOp.STORE: {
      if (request.ids.length > 0) return 'a STORE names no ids'
      return sealedProblem(request.sealed)
    }
    case MailboxOp.FETCH:
      if (request.ids.length > 0 || request.sealed.byteLength > 0) return 'a FETCH carries no ids and no envelope'
      return undefined
    case MailboxOp.WATCH:
      if (request.ids.length > 0 || request.sealed.byteLength > 0 || request.limit !== 0) return 'a WATCH carries no ids, no envelope and no limit'
      return undefined
    case MailboxOp.DELETE:
      if (request.sealed.byteLength > 0) return 'a DELETE carries no envelope'
      if (request.ids.length === 0) return 'a DELETE names at least one id'
      if (request.ids.some(id => id.byteLength !== ENVELOPE_ID_BYTES)) return `envelope ids are ${ENVELOPE_ID_BYTES} bytes (the sha-256 of the sealed envelope)`
      return undefined
    default:
      return `unknown op ${request.op}`
  }
}

/** A recipient must be an Ed25519 PeerId in its canonical string form: the key a proof is checked against. */
function peerIdProblem (text: string): string | undefined {
  if (text.length === 0) return 'no recipient'
  if (text.length > MAX_PEER_ID_CHARS) return `a recipient of ${text.length} characters is not a PeerId`
  try {
    const id = peerIdFromString(text)
    if (id.type !== 'Ed25519') return `the recipient must be an Ed25519 PeerId, not ${id.type}`
    if (id.toString() !== text) return `the recipient is not in its canonical form ${id.toString()}`
  } catch {
    return 'the recipient is not a PeerId'
  }
  return undefined
}

/**
 * The mailbox cannot open a sealed envelope, only check its shape. The seal
 * version is the recipient's business: a newer one is stored as well.
 */
function sealedProblem (sealed: Uint8Array): string | undefined {
  if (sealed.byteLength === 0) return 'a STORE carries a sealed envelope'
  if (sealed.byteLength > MAX_SEALED_BYTES) return `a sealed envelope of ${sealed.byteLength} bytes; the limit is ${MAX_SEALED_BYTES}`
  let decoded: SealedEnvelope
  try {
    decoded = SealedEnvelope.decode(sealed)
  } catch {
    return 'the sealed envelope does not decode'
  }
  if (decoded.version === 0 || decoded.ephemeralKey.byteLength === 0 || decoded.ciphertext.byteLength === 0) {
    return 'the sealed envelope lacks its version, key or ciphertext'
  }
  return undefined
}

/** A MailboxNotify from a mailbox: MALFORMED_FRAME, or FRAME_TOO_LARGE past MAX_NOTIFY_FRAME_BYTES. */
export function decodeNotify (frame: Uint8Array | Uint8ArrayList): MailboxNotify {
  return decodeChecked('MailboxNotify', frame, MAX_NOTIFY_FRAME_BYTES, bytes => MailboxNotify.decode(bytes))
}

/** A MailboxChallenge from a mailbox: MALFORMED_FRAME unless it decodes and its nonce is NONCE_BYTES long. */
export function decodeChallenge (frame: Uint8Array | Uint8ArrayList): MailboxChallenge {
  const challenge = decodeOrMalformed(() => MailboxChallenge.decode(frame), 'MailboxChallenge')
  if (challenge.nonce.byteLength !== NONCE_BYTES) throw new OctetError('MALFORMED_FRAME', `a challenge of ${challenge.nonce.byteLength} bytes; it is ${NONCE_BYTES}`)
  return challenge
}

/** A MailboxProof from a caller: FRAME_TOO_LARGE past MAX_PROOF_FRAME_BYTES, MALFORMED_FRAME when it does not decode. */
export function decodeProof (frame: Uint8Array | Uint8ArrayList): MailboxProof {
  if (frame.byteLength > MAX_PROOF_FRAME_BYTES) throw new OctetError('FRAME_TOO_LARGE', `a proof of ${frame.byteLength} bytes`)
  return decodeOrMalformed(() => MailboxProof.decode(frame), 'MailboxProof')
}

/** A MailboxResponse from a mailbox: MALFORMED_FRAME without a status; a long reason is cut. */
export function decodeResponse (frame: Uint8Array | Uint8ArrayList): MailboxResponse {
  const response = decodeOrMalformed(() => MailboxResponse.decode(frame, { limits: { envelopes: MAX_FETCH_LIMIT } }), 'MailboxResponse')
  if (response.status === MailboxStatus.STATUS_UNSPECIFIED) throw new OctetError('MALFORMED_FRAME', 'a mailbox answer without a status')
  return { ...response, reason: clipReason(response.reason, MAX_REASON_BYTES) }
}

// ------------------------------------------------------------------ helpers

/** The next frame; TIMEOUT when none comes in time, MALFORMED_FRAME when the peer ends the stream first. */
export async function expectFrame (frames: Frames, wait: number | (() => AbortSignal), what: string): Promise<Uint8ArrayList> {
  const signal = typeof wait === 'number' ? AbortSignal.timeout(wait) : wait()
  let frame: Uint8ArrayList | undefined
  try {
    frame = await frames.next(signal)
  } catch (err) {
    if (signal.aborted && !isOctetError(err)) {
      if (typeof wait === 'number') throw new OctetError('TIMEOUT', `no ${what} within ${wait} ms`, { cause: err })
      throw err
    }
    throw err
  }
  if (frame == null) throw new OctetError('MALFORMED_FRAME', `the stream ended before ${what}`)
  return frame
}

/** The same bytes, typed as protons wants them (copied in the unlikely case of a shared buffer). */
export function owned (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes)
}

export function decodeOrMalformed<T> (decode: () => T, what: string): T {
  try {
    return decode()
  } catch (err) {
    if (err instanceof Error && err.name === 'MaxLengthError') throw new OctetError('FRAME_TOO_LARGE', `${what}: ${err.message}`, { cause: err })
    throw new OctetError('MALFORMED_FRAME', `not a ${what}: ${errorMessage(err)}`, { cause: err })
  }
}
