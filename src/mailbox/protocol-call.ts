import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { FrameReader, resetStream, untilClosed, writeFrames } from '../wire/framing.js'
import { MAX_SEALED_BYTES } from '../wire/limits.js'
import { MailboxOp, MailboxProof, MailboxRequest, MailboxStatus, type MailboxResponse } from '../wire/mailbox.pb.js'
import { MAX_MAILBOX_FRAME_BYTES, RESPONSE_TIMEOUT } from './constants.js'
import { Frames, decodeChallenge, decodeNotify, decodeResponse, expectFrame, owned } from './protocol.js'
import { envelopeId } from './store.js'

/*
 * The caller's side of /octet/mailbox/1.0.0 (the exchanges are described in
 * protocol.ts): STORE, FETCH and DELETE on a stream the caller opened, and a
 * held WATCH. Each checks what the mailbox sends (sizes, ids, statuses) and
 * says every failure with one vocabulary (see call()); who to call, and
 * with which proof, is caller.ts's business.
 */

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

function checkEnvelope (e: { id: Uint8Array, sealed: Uint8Array, storedAt: bigint }): FetchedEnvelope {
  if (e.sealed.byteLength === 0 || e.sealed.byteLength > MAX_SEALED_BYTES) throw new OctetError('MALFORMED_FRAME', `a fetched envelope of ${e.sealed.byteLength} bytes`)
  if (!uint8ArrayEquals(e.id, envelopeId(e.sealed))) throw new OctetError('MALFORMED_FRAME', 'a fetched envelope whose id is not the sha-256 of its bytes')
  if (e.storedAt > BigInt(Number.MAX_SAFE_INTEGER)) throw new OctetError('MALFORMED_FRAME', 'a fetched envelope stored at an impossible time')
  // plain copies: the frame's buffer (often a Buffer from the socket) is not pinned by what the caller keeps
  return { id: new Uint8Array(e.id), sealed: new Uint8Array(e.sealed), storedAt: Number(e.storedAt) }
}
