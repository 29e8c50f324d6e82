import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { encode as encodeVarint } from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { clipReason, decodeChecked } from '../wire/checked.js'
import { FrameReader, resetStream, untilClosed, writeFrames } from '../wire/framing.js'
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
  DEFAULT_FETCH_LIMIT,
  ENVELOPE_ID_BYTES,
  FETCH_PAGE_BYTES,
  MAX_DELETE_IDS,
  MAX_FETCH_LIMIT,
  MAX_MAILBOX_FRAME_BYTES,
  MAX_NOTIFY_FRAME_BYTES,
  MAX_PROOF_FRAME_BYTES,
  MAX_REASON_BYTES,
  NONCE_BYTES,
  REQUEST_TIMEOUT,
  RESPONSE_TIMEOUT,
  WRITE_TIMEOUT
} from './constants.js'
import { verifyProof, type ProofOp } from './proof.js'
import { envelopeId, type Page } from './store.js'

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
 */

type Op = 'STORE' | 'FETCH' | 'DELETE' | 'WATCH'

/** A watch as the backend registered it (see watchers.ts). */
export interface WatchHandle {
  /** fires when the mailbox ends the watch */
  signal: AbortSignal
  release: () => void
}

export type WatchRegistration =
  | { accepted: true, watch: WatchHandle, count: number }
  | { accepted: false, status: MailboxStatus, reason: string }

/** What the server side needs from the service. */
export interface MailboxBackend {
  /** this node's PeerId: the mailbox that proofs must name */
  self: string
  /** the PeerId the connection authenticated: a WATCH is for this peer's own mailbox only */
  remotePeer: string
  /** Whether the remote peer may make another request of this kind now (rate limit). */
  admit: (op: Op) => boolean
  /** `duplicate`: OK, and these bytes were held already */
  store: (recipient: string, sealed: Uint8Array) => Promise<{ status: MailboxStatus, reason?: string, count?: number, duplicate?: boolean }>
  page: (recipient: string, after: string | undefined, limit: number, maxBytes: number) => Promise<Page>
  delete: (recipient: string, ids: Uint8Array[]) => Promise<number>
  /**
   * Registers a watch: `notify` is called on every store for `recipient`
   * (synchronously, from the store path: it must not wait); `count` is
   * what is held for it now.
   */
  watch: (recipient: string, notify: (count: number) => void) => WatchRegistration
}

export interface ServeOptions {
  /** for the request and for the proof, each */
  timeout?: number
  writeTimeout?: number
}

/** How a served request ended (the stream is closed). */
export interface ServeOutcome {
  op: MailboxOp
  status: MailboxStatus
  reason: string
  /** STORE: held for the recipient; FETCH: envelopes sent; DELETE: deleted; WATCH: notifies written */
  count: number
  /** WATCH: the watch ended because a notify could not be written (the stream is reset) */
  notifyFailed?: boolean
}

/** One frame at a time from a FrameReader, which hands them over in batches. */
class Frames {
  private pending: Uint8ArrayList[] = []

  constructor (readonly reader: FrameReader) {}

  /** The next frame; undefined when the peer ended the stream. */
  async next (signal: AbortSignal): Promise<Uint8ArrayList | undefined> {
    if (this.pending.length === 0) this.pending = await this.reader.nextBatch(signal)
    return this.pending.shift()
  }
}

// ------------------------------------------------------------------ server

/**
 * Serves one inbound stream (one request). Resolves with the outcome once
 * the answer is written and the stream closed; rejects (MALFORMED_FRAME,
 * FRAME_TOO_LARGE, TIMEOUT, or the stream's error) after resetting the
 * stream when the caller misbehaves or goes away. Never leaves it open.
 */
export async function serveMailbox (stream: Stream, backend: MailboxBackend, options: ServeOptions = {}): Promise<ServeOutcome> {
  const timeout = options.timeout ?? REQUEST_TIMEOUT
  const writeTimeout = options.writeTimeout ?? WRITE_TIMEOUT
  const frames = new Frames(new FrameReader(stream, MAX_MAILBOX_FRAME_BYTES))
  const respond = async (response: Partial<MailboxResponse>): Promise<void> => {
    await writeFrames(stream, [MailboxResponse.encode(response)], AbortSignal.timeout(writeTimeout))
  }
  try {
    const request = decodeRequest(await expectFrame(frames, timeout, 'a request'))
    const outcome = await answer(request)
    try {
      await stream.close({ signal: AbortSignal.timeout(writeTimeout) })
      // the caller closed its end after its last frame; one that keeps it open is cut off
      await untilClosed(stream, AbortSignal.timeout(timeout))
    } catch (err) {
      // answered already: a caller that does not close properly only loses its stream
      stream.abort(err instanceof Error ? err : new OctetError('TIMEOUT', 'the caller kept the stream open'))
    }
    return outcome
  } catch (err) {
    throw resetStream(stream, err)
  } finally {
    frames.reader.dispose()
  }

  async function answer (request: MailboxRequest): Promise<ServeOutcome> {
    const op = request.op
    const refuse = async (status: MailboxStatus, reason: string): Promise<ServeOutcome> => {
      await respond({ status, reason })
      return { op, status, reason, count: 0 }
    }
    if (op !== MailboxOp.STORE && op !== MailboxOp.FETCH && op !== MailboxOp.DELETE && op !== MailboxOp.WATCH) {
      return await refuse(MailboxStatus.BAD_REQUEST, `unknown op ${op}`)
    }
    const admitted = backend.admit(op)
    const invalid = requestProblem(request)

    if (op === MailboxOp.STORE) {
      if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, 'too many STOREs from this peer or its network; slow down')
      if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
      // nobody would ever fetch it: a recipient asks the peers closest to it, never itself
      if (request.recipient === backend.self) return await refuse(MailboxStatus.BAD_REQUEST, 'this mailbox is the recipient; deliver to it directly')
      const result = await backend.store(request.recipient, request.sealed)
      const response = { status: result.status, reason: result.reason ?? '', count: result.count ?? 0 }
      await respond({ ...response, duplicate: result.duplicate === true })
      return { op, ...response }
    }

    if (op === MailboxOp.WATCH) {
      if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, 'too many WATCHes from this peer; slow down')
      if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
      // the Noise handshake proved who is on the other end: that peer may watch its own mailbox, no other
      if (request.recipient !== backend.remotePeer) {
        return await refuse(MailboxStatus.UNAUTHORIZED, `a peer watches its own mailbox only: the recipient must be ${backend.remotePeer}, the PeerId of this connection`)
      }
      return await holdWatch(request.recipient)
    }

    // FETCH and DELETE: the challenge always comes first, so that the caller
    // knows which message the next frame is
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES))
    await writeFrames(stream, [MailboxChallenge.encode({ nonce })], AbortSignal.timeout(writeTimeout))
    const proof = decodeProof(await expectFrame(frames, timeout, 'a proof'))
    if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, `too many ${op}s from this peer; slow down`)
    if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
    const proved = await verifyProof({ mailbox: backend.self, recipient: request.recipient, op: op as ProofOp, nonce, ids: request.ids }, proof.signature)
    if (!proved) return await refuse(MailboxStatus.UNAUTHORIZED, `the proof does not verify: it must be signed with the key of ${request.recipient} over this mailbox, op and challenge`)

    if (op === MailboxOp.DELETE) {
      const count = await backend.delete(request.recipient, request.ids)
      await respond({ status: MailboxStatus.OK, count })
      return { op, status: MailboxStatus.OK, reason: '', count }
    }

    const limit = Math.min(request.limit === 0 ? DEFAULT_FETCH_LIMIT : request.limit, MAX_FETCH_LIMIT)
    let cursor: string | undefined
    let sent = 0
    while (true) {
      const page = await backend.page(request.recipient, cursor, limit, FETCH_PAGE_BYTES)
      await respond({
        status: MailboxStatus.OK,
        envelopes: page.envelopes.map(e => ({ id: owned(e.id), sealed: owned(e.sealed), storedAt: BigInt(e.storedAt) })),
        more: page.more
      })
      sent += page.envelopes.length
      if (!page.more) return { op, status: MailboxStatus.OK, reason: '', count: sent }
      cursor = page.cursor
    }
  }

  /** WATCH accepted so far: register, answer with the count held, then notify until one side ends it. */
  async function holdWatch (recipient: string): Promise<ServeOutcome> {
    const op = MailboxOp.WATCH
    const writer = new NotifyWriter(stream, writeTimeout)
    // registered before the count is read, so that no store falls between the two
    const registration = backend.watch(recipient, count => { writer.push(count) })
    if (!registration.accepted) {
      await respond({ status: registration.status, reason: registration.reason })
      return { op, status: registration.status, reason: registration.reason, count: 0 }
    }
    const { watch } = registration
    try {
      await respond({ status: MailboxStatus.OK, count: registration.count })
      // notifies that came while the answer was written follow it, never precede it
      writer.open()
      const ended = AbortSignal.any([watch.signal, writer.failed])
      let frame: Uint8ArrayList | undefined
      try {
        frame = await frames.next(ended)
      } catch (err) {
        if (!ended.aborted) {
          // garbage from the watcher is its fault; a stream that broke (the connection went) is a watcher gone
          if (isOctetError(err)) throw err
          return { op, status: MailboxStatus.OK, reason: `the watcher went away: ${errorMessage(err)}`, count: writer.sent }
        }
        // the mailbox ended the watch (expired, displaced, stopping): close as after any answer
        if (writer.failed.aborted) {
          // a watcher that does not read its notifies loses its watch, not our time
          const reason = writer.failed.reason as Error
          stream.abort(reason)
          return { op, status: MailboxStatus.OK, reason: reason.message, count: writer.sent, notifyFailed: true }
        }
        return { op, status: MailboxStatus.OK, reason: '', count: writer.sent }
      }
      if (frame != null) throw new OctetError('MALFORMED_FRAME', 'a frame on a WATCH stream: the watcher sends nothing after its request')
      // the watcher closed its end: the watch is over
      return { op, status: MailboxStatus.OK, reason: '', count: writer.sent }
    } finally {
      watch.release()
    }
  }
}

/**
 * Writes MailboxNotify frames on a held WATCH stream without ever making the
 * store path wait: push() returns at once. While a write waits for the
 * stream to drain (a watcher that does not read), later notifies collapse
 * into one carrying the latest count; a watcher that stays stuck past the
 * write timeout fails the watch.
 */
export class NotifyWriter {
  sent = 0
  private latest: number | undefined
  private opened = false
  private draining = false
  private readonly failure = new AbortController()

  constructor (private readonly stream: Stream, private readonly writeTimeout: number) {}

  /** fires when a notify could not be written: the watch is over */
  get failed (): AbortSignal {
    return this.failure.signal
  }

  push (count: number): void {
    this.latest = count
    if (this.opened && !this.draining) this.flush()
  }

  /** after the answer to WATCH went out: writes what was pushed before */
  open (): void {
    this.opened = true
    this.flush()
  }

  private flush (): void {
    while (this.latest != null && !this.failure.signal.aborted) {
      const frame = MailboxNotify.encode({ count: this.latest })
      this.latest = undefined
      let written: boolean
      try {
        written = this.stream.send(new Uint8ArrayList(encodeVarint(frame.byteLength), frame))
      } catch (err) {
        this.fail(err)
        return
      }
      this.sent++
      if (!written) {
        this.draining = true
        this.stream.onDrain({ signal: AbortSignal.timeout(this.writeTimeout) }).then(() => {
          this.draining = false
          this.flush()
        }, (err: unknown) => { this.fail(err) })
        return
      }
    }
  }

  private fail (err: unknown): void {
    this.failure.abort(new OctetError('PEER_UNREACHABLE', `a notify could not be written: ${errorMessage(err)}`, { cause: err }))
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

// ------------------------------------------------------------------ caller

/** An envelope as a mailbox handed it over; the id is checked to be the sha-256 of `sealed`. */
export interface FetchedEnvelope {
  id: Uint8Array
  sealed: Uint8Array
  storedAt: number
}

export interface CallOptions {
  /** cancels the call (its reason is thrown) */
  signal?: AbortSignal
  /** for each frame of the answer */
  timeout?: number
  /** FETCH: stop taking pages past this many envelopes or bytes (MALFORMED_FRAME) */
  maxEnvelopes?: number
  maxBytes?: number
}

/** Signs the mailbox's challenge (see proof.ts); the caller knows which mailbox, recipient, op and ids. */
export type Prover = (nonce: Uint8Array) => Promise<Uint8Array>

export interface FetchResult {
  /** the final answer: OK, or why not */
  response: MailboxResponse
  envelopes: FetchedEnvelope[]
}

/** Sends a STORE and returns the mailbox's answer, whatever its status. */
export async function callStore (stream: Stream, recipient: string, sealed: Uint8Array, options: CallOptions = {}): Promise<MailboxResponse> {
  return await call(stream, options, async (frames, wait) => {
    await writeFrames(stream, [MailboxRequest.encode({ op: MailboxOp.STORE, recipient, sealed: owned(sealed) })], wait())
    await stream.close({ signal: wait() })
    return decodeResponse(await expectFrame(frames, wait, 'an answer'))
  })
}

/**
 * FETCH: request, challenge, proof, then every page until `more` is false.
 * A refusal (UNAUTHORIZED, RATE_LIMITED, BAD_REQUEST) is returned as the
 * response with no envelopes.
 */
export async function callFetch (stream: Stream, request: { recipient: string, limit?: number }, prove: Prover, options: CallOptions = {}): Promise<FetchResult> {
  const maxEnvelopes = options.maxEnvelopes ?? Number.POSITIVE_INFINITY
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
  return await call(stream, options, async (frames, wait) => {
    const response = await challenged(stream, frames, wait, { op: MailboxOp.FETCH, recipient: request.recipient, limit: request.limit ?? 0 }, prove)
    const envelopes: FetchedEnvelope[] = []
    let bytes = 0
    let page = response
    while (true) {
      if (page.status !== MailboxStatus.OK) return { response: page, envelopes: [] }
      for (const e of page.envelopes) {
        envelopes.push(checkEnvelope(e))
        bytes += e.sealed.byteLength
      }
      if (envelopes.length > maxEnvelopes || bytes > maxBytes) {
        throw new OctetError('MALFORMED_FRAME', `the mailbox sent more than ${maxEnvelopes} envelopes or ${maxBytes} bytes`)
      }
      if (!page.more) return { response: page, envelopes }
      page = decodeResponse(await expectFrame(frames, wait, 'the next page'))
    }
  })
}

/** DELETE: request, challenge, proof, answer (`count` deleted when OK). */
export async function callDelete (stream: Stream, request: { recipient: string, ids: Uint8Array[] }, prove: Prover, options: CallOptions = {}): Promise<MailboxResponse> {
  return await call(stream, options, async (frames, wait) => {
    return await challenged(stream, frames, wait, { op: MailboxOp.DELETE, recipient: request.recipient, ids: request.ids.map(owned) }, prove)
  })
}

async function challenged (stream: Stream, frames: Frames, wait: () => AbortSignal, request: Partial<MailboxRequest>, prove: Prover): Promise<MailboxResponse> {
  await writeFrames(stream, [MailboxRequest.encode(request)], wait())
  const challenge = decodeChallenge(await expectFrame(frames, wait, 'a challenge'))
  const signature = await prove(challenge.nonce)
  await writeFrames(stream, [MailboxProof.encode({ signature: owned(signature) })], wait())
  await stream.close({ signal: wait() })
  return decodeResponse(await expectFrame(frames, wait, 'an answer'))
}

/** A watch as the caller holds it: the mailbox's answer, then its notifies. */
export interface WatchSession {
  /** the answer to WATCH; when OK, `count` is what the mailbox holds for us now */
  response: MailboxResponse
  /**
   * The count of the next notify; undefined once the mailbox ended the watch
   * (it closed the stream). Throws the signal's reason when it fires,
   * MALFORMED_FRAME or FRAME_TOO_LARGE for anything but a notify,
   * PEER_UNREACHABLE when the stream fails. The stream is reset on any error.
   */
  next: (signal: AbortSignal) => Promise<number | undefined>
  /** ends the watch from our side (idempotent) */
  close: () => void
}

/**
 * WATCH: asks the mailbox to tell us, on this stream, whenever it stores an
 * envelope for `recipient` (our own PeerId: the mailbox refuses any other).
 * Resolves once the mailbox answered; a refusal is a session whose
 * response says why, and whose stream is closed. Errors as callStore.
 */
export async function callWatch (stream: Stream, recipient: string, options: CallOptions = {}): Promise<WatchSession> {
  const frames = new Frames(new FrameReader(stream, MAX_MAILBOX_FRAME_BYTES))
  let closed = false
  const close = (): void => {
    if (closed) return
    closed = true
    frames.reader.dispose()
    if (stream.status === 'open') stream.close({ signal: AbortSignal.timeout(options.timeout ?? RESPONSE_TIMEOUT) }).catch((err: unknown) => { resetStream(stream, err) })
  }
  const fail = (err: unknown): Error => {
    closed = true
    frames.reader.dispose()
    return resetStream(stream, err)
  }
  let response: MailboxResponse
  try {
    response = await call(stream, { ...options, keepOpen: true }, async (callFrames, wait) => {
      await writeFrames(stream, [MailboxRequest.encode({ op: MailboxOp.WATCH, recipient })], wait())
      return decodeResponse(await expectFrame(callFrames, wait, 'an answer'))
    }, frames)
  } catch (err) {
    // call() reset the stream already
    closed = true
    frames.reader.dispose()
    throw err
  }
  if (response.status !== MailboxStatus.OK) close()
  return {
    response,
    close,
    next: async (signal: AbortSignal): Promise<number | undefined> => {
      if (closed) return undefined
      let frame: Uint8ArrayList | undefined
      try {
        frame = await frames.next(signal)
      } catch (err) {
        if (signal.aborted) {
          fail(signal.reason)
          throw signal.reason
        }
        const failure = fail(err)
        if (isOctetError(failure)) throw failure
        throw new OctetError('PEER_UNREACHABLE', `the watch stream failed: ${failure.message}`, { cause: err })
      }
      if (frame == null) {
        // the mailbox ended the watch; we end our side too
        close()
        return undefined
      }
      try {
        return decodeNotify(frame).count
      } catch (err) {
        throw fail(err)
      }
    }
  }
}

/** A MailboxNotify from a mailbox: MALFORMED_FRAME, or FRAME_TOO_LARGE past MAX_NOTIFY_FRAME_BYTES. */
export function decodeNotify (frame: Uint8Array | Uint8ArrayList): MailboxNotify {
  return decodeChecked('MailboxNotify', frame, MAX_NOTIFY_FRAME_BYTES, bytes => MailboxNotify.decode(bytes))
}

/**
 * Runs the caller's side of one exchange: a fresh timeout for each wait,
 * the stream reset on any failure, and failures as OctetErrors — TIMEOUT,
 * PEER_UNREACHABLE (the stream failed or ended early), MALFORMED_FRAME or
 * FRAME_TOO_LARGE (the mailbox sent something wrong) — or the reason of
 * `options.signal`.
 */
async function call<T> (stream: Stream, options: CallOptions & { keepOpen?: boolean }, exchange: (frames: Frames, wait: () => AbortSignal) => Promise<T>, given?: Frames): Promise<T> {
  const timeout = options.timeout ?? RESPONSE_TIMEOUT
  // a WATCH goes on reading the stream after the exchange: it brings its own reader and keeps it
  const frames = given ?? new Frames(new FrameReader(stream, MAX_MAILBOX_FRAME_BYTES))
  let current: AbortSignal | undefined
  const wait = (): AbortSignal => {
    current = AbortSignal.timeout(timeout)
    return options.signal == null ? current : AbortSignal.any([options.signal, current])
  }
  try {
    const result = await exchange(frames, wait)
    if (options.keepOpen === true) return result
    // the mailbox closes after its answer; we do not wait for it, and cut it off if it lingers
    if (stream.status === 'open' || stream.status === 'closing') {
      untilClosed(stream, AbortSignal.timeout(timeout)).catch(() => { stream.abort(new OctetError('TIMEOUT', 'the mailbox kept the stream open')) })
    }
    return result
  } catch (err) {
    resetStream(stream, err)
    if (options.signal?.aborted === true) throw options.signal.reason
    if (current?.aborted === true) throw new OctetError('TIMEOUT', `the mailbox did not answer within ${timeout} ms`, { cause: err })
    if (isOctetError(err)) throw err
    throw new OctetError('PEER_UNREACHABLE', `the mailbox stream failed: ${errorMessage(err)}`, { cause: err })
  } finally {
    if (given == null) frames.reader.dispose()
  }
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

function checkEnvelope (e: { id: Uint8Array, sealed: Uint8Array, storedAt: bigint }): FetchedEnvelope {
  if (e.sealed.byteLength === 0 || e.sealed.byteLength > MAX_SEALED_BYTES) throw new OctetError('MALFORMED_FRAME', `a fetched envelope of ${e.sealed.byteLength} bytes`)
  if (!uint8ArrayEquals(e.id, envelopeId(e.sealed))) throw new OctetError('MALFORMED_FRAME', 'a fetched envelope whose id is not the sha-256 of its bytes')
  if (e.storedAt > BigInt(Number.MAX_SAFE_INTEGER)) throw new OctetError('MALFORMED_FRAME', 'a fetched envelope stored at an impossible time')
  // plain copies: the frame's buffer (often a Buffer from the socket) is not pinned by what the caller keeps
  return { id: new Uint8Array(e.id), sealed: new Uint8Array(e.sealed), storedAt: Number(e.storedAt) }
}

// ------------------------------------------------------------------ helpers

/** The next frame; TIMEOUT when none comes in time, MALFORMED_FRAME when the peer ends the stream first. */
async function expectFrame (frames: Frames, wait: number | (() => AbortSignal), what: string): Promise<Uint8ArrayList> {
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
function owned (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes)
}

function decodeOrMalformed<T> (decode: () => T, what: string): T {
  try {
    return decode()
  } catch (err) {
    if (err instanceof Error && err.name === 'MaxLengthError') throw new OctetError('FRAME_TOO_LARGE', `${what}: ${err.message}`, { cause: err })
    throw new OctetError('MALFORMED_FRAME', `not a ${what}: ${errorMessage(err)}`, { cause: err })
  }
}
